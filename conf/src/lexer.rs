//! Tokens of lighttpd.conf, with the line and column of each.
//!
//! The language is context sensitive in a few places, as in lighttpd: after `$` the
//! lexer is in a condition (a bare word is a field name such as `HTTP`, and `==`,
//! `!=`, `=~`, `!~`, `=^`, `=$` are operators) until the operator; inside `( … )`
//! newlines are plain whitespace and `=` must be `=>`; a `}` followed by more text on
//! the same line ends a statement as a newline would.

use crate::error::ConfError;
use crate::model::{CondOp, Loc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A key or variable name: `server.port`, `var.x`, `x`, `env.HOME`.
    Key(String),
    Str(String),
    /// Decimal digits, as written.
    Int(String),
    /// `=`
    Assign,
    /// `:=`
    ForceAssign,
    /// `+=`
    Append,
    Plus,
    Comma,
    /// `=>`
    Arrow,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Dollar,
    /// The word after `$`: `HTTP`, `SERVER`, `REQUEST_HEADER`.
    Name(String),
    Op(CondOp),
    Eol,
    /// `else`, and later lighttpd's `elif`, `elsif`, `elseif` (`else if` is `else`
    /// then a skipped `if`), each of those with a warning.
    Else,
    Include,
    IncludeShell,
    Global,
}

impl Tok {
    /// How the token reads in an error message.
    /// As written in a config file.
    pub fn spelled(&self) -> String {
        match self {
            Tok::Key(k) | Tok::Name(k) => k.clone(),
            Tok::Str(s) => format!("\"{s}\""),
            Tok::Int(i) => i.to_string(),
            t => t.describe().trim_matches('\'').to_string(),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Tok::Key(k) => format!("'{k}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Int(i) => format!("number {i}"),
            Tok::Assign => "'='".into(),
            Tok::ForceAssign => "':='".into(),
            Tok::Append => "'+='".into(),
            Tok::Plus => "'+'".into(),
            Tok::Comma => "','".into(),
            Tok::Arrow => "'=>'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Dollar => "'$'".into(),
            Tok::Name(n) => format!("'{n}'"),
            Tok::Op(op) => format!("'{}'", op_str(*op)),
            Tok::Eol => "end of line".into(),
            Tok::Else => "'else'".into(),
            Tok::Include => "'include'".into(),
            Tok::IncludeShell => "'include_shell'".into(),
            Tok::Global => "'global'".into(),
        }
    }
}

/// The operator as written in a config file.
pub fn op_str(op: CondOp) -> &'static str {
    match op {
        CondOp::Eq => "==",
        CondOp::Ne => "!=",
        CondOp::Match => "=~",
        CondOp::NotMatch => "!~",
        CondOp::Prefix => "=^",
        CondOp::Suffix => "=$",
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    pub line: u32,
    pub col: u32,
}

/// One config text (a file, stdin, or the output of an include_shell command).
#[derive(Clone, Debug)]
pub struct Source {
    pub name: String,
    pub text: String,
}

impl Source {
    pub fn loc(&self, line: u32, col: u32) -> Loc {
        Loc {
            file: self.name.clone(),
            line,
            col,
        }
    }

    /// The text of 1-based `line`, without its line ending.
    pub fn line_text(&self, line: u32) -> Option<String> {
        let idx = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text
            .split('\n')
            .nth(idx)
            .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
    }

    pub fn error(
        &self,
        line: u32,
        col: u32,
        msg: impl Into<String>,
        hint: Option<&str>,
    ) -> ConfError {
        ConfError {
            loc: self.loc(line, col),
            message: msg.into(),
            line_text: self.line_text(line),
            hint: hint.map(str::to_string),
        }
    }
}

fn is_key_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-'
}

struct Lexer<'a> {
    src: &'a Source,
    s: &'a [u8],
    pos: usize,
    line: u32,
    line_start: usize,
    parens: u32,
    in_cond: bool,
    toks: Vec<Token>,
    warnings: Vec<String>,
    /// (line start, byte, column) of the last column computed.
    col_cache: std::cell::Cell<(usize, usize, u32)>,
}

impl<'a> Lexer<'a> {
    /// 1-based column (in characters) of byte `pos` on the current line; counted
    /// on from the last answer, so that long lines stay linear.
    fn col_at(&self, pos: usize) -> u32 {
        let start = self.line_start.min(pos);
        let (c_start, c_pos, c_col) = self.col_cache.get();
        let (from, base) = if c_start == start && c_pos <= pos {
            (c_pos, c_col)
        } else {
            (start, 1)
        };
        // The text is UTF-8: count the bytes that start a character.
        let n = self.s[from..pos]
            .iter()
            .filter(|&&b| b & 0xc0 != 0x80)
            .count();
        let col = base.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        self.col_cache.set((start, pos, col));
        col
    }

    fn err(&self, pos: usize, msg: &str, hint: Option<&str>) -> ConfError {
        self.src.error(self.line, self.col_at(pos), msg, hint)
    }

    fn push(&mut self, tok: Tok, pos: usize) {
        let col = self.col_at(pos);
        self.toks.push(Token {
            tok,
            line: self.line,
            col,
        });
    }

    /// A keyword of later lighttpd releases that lighttpd 1.4.69 reads otherwise.
    fn newer_keyword(&mut self, p: usize, how: &str) {
        let col = self.col_at(p);
        self.warnings.push(format!(
            "WARNING: {}:{}:{col}: {how}",
            self.src.name, self.line
        ));
    }

    fn prev(&self) -> Option<&Tok> {
        self.toks.last().map(|t| &t.tok)
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    /// Skip one newline (`\n`, `\r\n` or `\r`) at `pos`.
    fn newline(&mut self) {
        if self.at(self.pos) == b'\r' && self.at(self.pos + 1) == b'\n' {
            self.pos += 2;
        } else {
            self.pos += 1;
        }
        self.line += 1;
        self.line_start = self.pos;
    }

    fn skip_comment(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos] != b'\n' && self.s[self.pos] != b'\r' {
            self.pos += 1;
        }
    }

    fn run(mut self) -> Result<(Vec<Token>, Vec<String>), ConfError> {
        while self.pos < self.s.len() {
            let p = self.pos;
            let c = self.s[p];
            match c {
                b' ' | b'\t' => self.pos += 1,
                b'\n' | b'\r' => {
                    let (line, col) = (self.line, self.col_at(p));
                    // Blank lines and comment lines fold into one end of line.
                    loop {
                        match self.at(self.pos) {
                            b'\n' | b'\r' => self.newline(),
                            b'#' => self.skip_comment(),
                            b' ' | b'\t' => self.pos += 1,
                            _ => break,
                        }
                    }
                    if self.parens == 0 {
                        self.toks.push(Token {
                            tok: Tok::Eol,
                            line,
                            col,
                        });
                    }
                }
                b'#' => self.skip_comment(),
                b',' => {
                    self.pos += 1;
                    // Outside a list lighttpd ignores a comma.
                    if self.parens > 0 {
                        self.push(Tok::Comma, p);
                    }
                }
                b'"' => self.string(p)?,
                b'(' => {
                    self.pos += 1;
                    self.parens += 1;
                    self.push(Tok::LParen, p);
                }
                b')' => {
                    if self.parens == 0 {
                        return Err(self.err(p, "close-parens without open-parens", None));
                    }
                    self.pos += 1;
                    self.parens -= 1;
                    self.push(Tok::RParen, p);
                }
                b'$' => {
                    self.pos += 1;
                    self.in_cond = true;
                    self.push(Tok::Dollar, p);
                }
                b'+' => {
                    if self.at(p + 1) == b'=' {
                        self.pos += 2;
                        self.push(Tok::Append, p);
                    } else {
                        self.pos += 1;
                        self.push(Tok::Plus, p);
                    }
                }
                b':' => {
                    if self.at(p + 1) != b'=' {
                        return Err(self.err(
                            p,
                            "unexpected character ':'",
                            Some("did you mean ':='?"),
                        ));
                    }
                    self.pos += 2;
                    self.push(Tok::ForceAssign, p);
                }
                b'{' => {
                    self.pos += 1;
                    self.push(Tok::LBrace, p);
                }
                b'}' => {
                    self.pos += 1;
                    self.push(Tok::RBrace, p);
                    // More text on the same line: the '}' ends the statement.
                    let mut q = self.pos;
                    while matches!(self.at(q), b' ' | b'\t') {
                        q += 1;
                    }
                    if q < self.s.len()
                        && !matches!(self.at(q), b'\n' | b'\r' | b'#')
                        && self.parens == 0
                    {
                        self.push(Tok::Eol, q);
                    }
                }
                b'[' => {
                    self.pos += 1;
                    self.push(Tok::LBracket, p);
                }
                b']' => {
                    self.pos += 1;
                    self.push(Tok::RBracket, p);
                }
                b'=' => self.equals(p)?,
                b'!' => {
                    if !self.in_cond {
                        return Err(self.err(p, "unexpected exclamation mark: !", None));
                    }
                    let op = match self.at(p + 1) {
                        b'=' => CondOp::Ne,
                        b'~' => CondOp::NotMatch,
                        _ => {
                            return Err(self.err(
                                p,
                                "only != and !~ are allowed in a condition",
                                None,
                            ));
                        }
                    };
                    self.pos += 2;
                    self.in_cond = false;
                    self.push(Tok::Op(op), p);
                }
                0 => return Err(self.err(p, "stray NUL byte", None)),
                _ => self.word(p)?,
            }
        }
        let (line, col) = (self.line, self.col_at(self.pos));
        self.toks.push(Token {
            tok: Tok::Eol,
            line,
            col,
        });
        Ok((self.toks, self.warnings))
    }

    fn string(&mut self, p: usize) -> Result<(), ConfError> {
        match self.prev() {
            // A list element that follows another without a ',': the parser drops
            // it as lighttpd 1.4.69 does (eval.rs, `Eval::skip_uncommaed`).
            Some(Tok::Str(_)) if self.parens > 0 => {}
            Some(Tok::Str(_)) => {
                return Err(self.err(
                    p,
                    "two strings in a row",
                    Some("strings may be combined with '+' or separated with ',' or '=>' in lists"),
                ));
            }
            Some(Tok::Key(_)) => {
                return Err(self.err(
                    p,
                    "a string follows a name",
                    Some("missing assignment operator ('=')?"),
                ));
            }
            _ => {}
        }
        let (line, col) = (self.line, self.col_at(p));
        let mut out = Vec::new();
        let mut i = p + 1;
        loop {
            match self.s.get(i) {
                None => return Err(self.src.error(line, col, "missing closing quote", None)),
                Some(b'"') => break,
                Some(b'\\') if self.at(i + 1) == b'"' => {
                    out.push(b'"');
                    i += 2;
                }
                Some(&c) => {
                    if c == b'\n' {
                        self.line += 1;
                        self.line_start = i + 1;
                    }
                    out.push(c);
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        let text = String::from_utf8_lossy(&out).into_owned();
        self.toks.push(Token {
            tok: Tok::Str(text),
            line,
            col,
        });
        Ok(())
    }

    fn equals(&mut self, p: usize) -> Result<(), ConfError> {
        if self.parens > 0 {
            if self.at(p + 1) != b'>' {
                return Err(self.err(p, "use => for assignments in lists", None));
            }
            self.pos += 2;
            self.push(Tok::Arrow, p);
        } else if self.in_cond {
            let op = match self.at(p + 1) {
                b'=' => CondOp::Eq,
                b'~' => CondOp::Match,
                b'^' => CondOp::Prefix,
                b'$' => CondOp::Suffix,
                _ => {
                    return Err(self.err(
                        p,
                        "only == =~ =^ =$ != !~ are allowed in a condition",
                        None,
                    ));
                }
            };
            self.pos += 2;
            self.in_cond = false;
            self.push(Tok::Op(op), p);
        } else {
            self.pos += 1;
            self.push(Tok::Assign, p);
        }
        Ok(())
    }

    fn word(&mut self, p: usize) -> Result<(), ConfError> {
        if self.in_cond {
            let mut i = p;
            while self.at(i).is_ascii_alphabetic() || self.at(i) == b'_' {
                i += 1;
            }
            if i == p {
                return Err(self.err(p, "invalid character in condition", None));
            }
            self.pos = i;
            let name = String::from_utf8_lossy(&self.s[p..i]).into_owned();
            self.push(Tok::Name(name), p);
            return Ok(());
        }
        if self.at(p).is_ascii_digit() {
            let mut i = p;
            while self.at(i).is_ascii_digit() {
                i += 1;
            }
            self.pos = i;
            let digits = String::from_utf8_lossy(&self.s[p..i]).into_owned();
            self.push(Tok::Int(digits), p);
            return Ok(());
        }
        let mut i = p;
        while is_key_char(self.at(i)) {
            i += 1;
        }
        if i == p {
            // U+00A0 NO-BREAK SPACE (pasted from web pages) is whitespace.
            if self.at(p) == 0xc2 && self.at(p + 1) == 0xa0 {
                self.pos += 2;
                return Ok(());
            }
            let ch = String::from_utf8_lossy(&self.s[p..(p + 4).min(self.s.len())])
                .chars()
                .next()
                .unwrap_or('?');
            let hint = match ch {
                ';' => Some("statements end at the end of the line; remove the ';'"),
                '\'' => Some("strings are written in double quotes"),
                _ => None,
            };
            return Err(self.err(p, &format!("invalid character '{ch}' in a name"), hint));
        }
        self.pos = i;
        let word = String::from_utf8_lossy(&self.s[p..i]).into_owned();
        let tok = match word.as_str() {
            "include" => Tok::Include,
            "include_shell" => Tok::IncludeShell,
            "global" => Tok::Global,
            "else" => Tok::Else,
            "elif" | "elsif" | "elseif" => {
                self.newer_keyword(p, &format!("'{word}' is read as 'else', as later lighttpd releases read it; lighttpd 1.4.69 reads it as a variable name and the block's settings as set outside any condition"));
                Tok::Else
            }
            "if" => {
                // `if $HTTP[...]` and `else if $HTTP[...]`: the `if` is decoration.
                let mut j = i;
                while matches!(self.at(j), b' ' | b'\t') {
                    j += 1;
                }
                if self.at(j) == b'$' {
                    let how = if self.prev() == Some(&Tok::Else) {
                        "'else if' is read as 'else' with the condition, as later lighttpd releases read it; lighttpd 1.4.69 reads it as a plain 'else' (the condition dropped)"
                    } else {
                        "'if' before a condition is read as the condition, as later lighttpd releases read it; lighttpd 1.4.69 reads it as a variable name and the block's settings as set outside any condition"
                    };
                    self.newer_keyword(p, how);
                    return Ok(());
                }
                Tok::Key(word)
            }
            _ => {
                if let Some(Tok::Key(_)) = self.prev() {
                    return Err(self.err(
                        p,
                        &format!("unexpected name '{word}'"),
                        Some("missing assignment operator ('=') or string concat operator ('+')?"),
                    ));
                }
                Tok::Key(word)
            }
        };
        self.push(tok, p);
        Ok(())
    }
}

/// Split `src` into tokens (the last is always an end of line), and warnings.
pub fn tokenize(src: &Source) -> Result<(Vec<Token>, Vec<String>), ConfError> {
    Lexer {
        src,
        s: src.text.as_bytes(),
        pos: 0,
        line: 1,
        line_start: 0,
        parens: 0,
        in_cond: false,
        toks: Vec::new(),
        warnings: Vec::new(),
        col_cache: std::cell::Cell::new((0, 0, 1)),
    }
    .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(text: &str) -> Vec<Tok> {
        let src = Source {
            name: "t".into(),
            text: text.into(),
        };
        tokenize(&src)
            .expect("lex")
            .0
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn lex_err(text: &str) -> ConfError {
        let src = Source {
            name: "t".into(),
            text: text.into(),
        };
        tokenize(&src).expect_err("should fail")
    }

    #[test]
    fn only_backslash_quote_is_an_escape() {
        assert_eq!(
            toks(r#"a = "x\"y\n\\z""#)[2],
            Tok::Str(r#"x"y\n\\z"#.into())
        );
        // `\"` is a backslash then an escaped quote, as in lighttpd: unterminated.
        assert!(lex_err(r#"a = "x\\""#).message.contains("closing quote"));
    }

    #[test]
    fn two_strings_hint() {
        let e = lex_err("a = \"x\" \"y\"");
        assert_eq!(e.loc.col, 9);
        assert!(e
            .hint
            .as_deref()
            .unwrap_or("")
            .contains("strings may be combined with '+'"));
    }

    #[test]
    fn newlines_inside_parens_are_whitespace() {
        let t = toks("a = (\n \"x\",\n \"y\"\n)\n");
        assert!(!t[..t.len() - 2].contains(&Tok::Eol));
    }

    #[test]
    fn blank_and_comment_lines_fold() {
        assert_eq!(toks("a = 1\n\n# c\n\nb = 2"), toks("a = 1\nb = 2"));
    }

    #[test]
    fn brace_then_text_ends_statement() {
        let t = toks("$HTTP[\"host\"] == \"x\" { a = 1 } b = 2");
        let rb = t.iter().position(|x| *x == Tok::RBrace).expect("}");
        assert_eq!(t[rb + 1], Tok::Eol);
    }

    #[test]
    fn operators_and_keywords() {
        let t = toks("else if $HTTP[\"url\"] =^ \"/a\" {}");
        assert_eq!(t[0], Tok::Else);
        assert_eq!(t[1], Tok::Dollar);
        assert_eq!(t[2], Tok::Name("HTTP".into()));
        assert_eq!(t[6], Tok::Op(CondOp::Prefix));
        for (w, k) in [
            ("elif", Tok::Else),
            ("elsif", Tok::Else),
            ("elseif", Tok::Else),
            ("global", Tok::Global),
        ] {
            assert_eq!(toks(w)[0], k);
        }
        assert_eq!(toks("a += 1")[1], Tok::Append);
        assert_eq!(toks("a := 1")[1], Tok::ForceAssign);
    }

    #[test]
    fn crlf_and_nbsp() {
        assert_eq!(toks("a = 1\r\nb\u{a0}= 2"), toks("a = 1\nb = 2"));
    }

    #[test]
    fn nul_is_an_error() {
        assert!(lex_err("a = 1\0").message.contains("NUL"));
    }

    #[test]
    fn error_position() {
        let e = lex_err("a = 1\nb = 2;\n");
        assert_eq!((e.loc.line, e.loc.col), (2, 6));
        assert_eq!(e.line_text.as_deref(), Some("b = 2;"));
    }
}
