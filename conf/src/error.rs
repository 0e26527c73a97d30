//! Configuration errors: file:line:column, the offending line and a caret.

use crate::model::Loc;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfError {
    pub loc: Loc,
    pub message: String,
    /// The source line the error is on (without its newline), if known.
    pub line_text: Option<String>,
    /// A hint such as "strings may be combined with '+'".
    pub hint: Option<String>,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loc.line == 0 {
            // Not about a place in the text (a file that cannot be read).
            write!(f, "{}: {}", self.loc.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.loc.file, self.loc.line, self.loc.col, self.message
            )?;
        }
        if let Some(line) = &self.line_text {
            // Under the line, keep its tabs so that the caret lands on the column.
            let pad: String = line
                .chars()
                .take(self.loc.col.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n  {line}\n  {pad}^")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfError {}
