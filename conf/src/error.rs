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
        write!(
            f,
            "{}:{}:{}: {}",
            self.loc.file, self.loc.line, self.loc.col, self.message
        )?;
        if let Some(line) = &self.line_text {
            write!(
                f,
                "\n  {line}\n  {:>width$}",
                "^",
                width = self.loc.col.max(1) as usize
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfError {}
