//! Parsing with evaluation, as lighttpd does it: each statement takes effect when it
//! is read, so variables, `+=`, includes and conditions resolve at parse time into
//! blocks of settings.
//!
//! Rules (lighttpd 1.4 configparser.y, configfile.c):
//! - keys compare without regard to ASCII case; a key without a dot is `var.KEY`;
//! - `=` on a key already set in the same block is an error, `:=` replaces, `+=`
//!   merges into the block's value, or into a copy of the value visible from an
//!   enclosing block, or acts as `=`;
//! - a condition with the same text at the same place reuses its block;
//! - `include` paths are relative to the main file's directory, globbed and sorted;
//!   `include_shell` runs `/bin/sh -c` there; both splice into the current block.

use crate::error::ConfError;
use crate::lexer::{op_str, tokenize, Source, Tok, Token};
use crate::model::{Cond, CondField, CondOp, Loc, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Largest config file read (lighttpd's limit).
const MAX_FILE: u64 = 32 * 1024 * 1024;
/// Includes deeper than this are a loop.
const MAX_DEPTH: u32 = 32;
/// Lists and blocks nested deeper than this are refused (bounded recursion).
const MAX_NESTING: u32 = 64;

pub(crate) struct Entry {
    pub key: String,
    pub value: Value,
    pub loc: Loc,
}

pub(crate) struct BlockState {
    pub parent: Option<usize>,
    pub cond: Option<Cond>,
    pub else_of: Option<usize>,
    /// `$HTTP["host"]` as written: for the block key and `-p`.
    pub field_text: String,
    /// lighttpd's block key: "<parent> / $HTTP[\"host\"] == \"x\"", lowercased.
    pub key: String,
    pub entries: Vec<Entry>,
    pub loc: Loc,
}

impl BlockState {
    fn find(&self, key: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.key.eq_ignore_ascii_case(key))
    }
}

pub(crate) struct Eval {
    pub blocks: Vec<BlockState>,
    by_key: HashMap<String, usize>,
    current: usize,
    stack: Vec<usize>,
    base_dir: PathBuf,
    depth: u32,
    /// Every text parsed, to quote lines in later errors.
    pub sources: Vec<Source>,
    /// Warnings met while parsing (lighttpd-tolerated mistakes).
    pub warnings: Vec<String>,
    /// Lists being parsed, one inside the other.
    list_depth: u32,
    /// List elements dropped for a missing ',' in the value being parsed.
    dropped: Vec<String>,
}

/// A token stream of one source.
struct P<'s> {
    src: &'s Source,
    toks: Vec<Token>,
    i: usize,
}

impl P<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|t| &t.tok)
    }
    fn bump(&mut self) -> usize {
        self.i += 1;
        self.i - 1
    }
    fn loc(&self, idx: usize) -> Loc {
        match self.toks.get(idx).or(self.toks.last()) {
            Some(t) => self.src.loc(t.line, t.col),
            None => self.src.loc(1, 1),
        }
    }
    fn err(&self, idx: usize, msg: impl Into<String>, hint: Option<&str>) -> ConfError {
        let (line, col) = match self.toks.get(idx).or(self.toks.last()) {
            Some(t) => (t.line, t.col),
            None => (1, 1),
        };
        self.src.error(line, col, msg, hint)
    }
    /// Error at the current token: "expected X, got Y".
    fn unexpected(&self, what: &str, hint: Option<&str>) -> ConfError {
        let got = self
            .peek()
            .map(Tok::describe)
            .unwrap_or_else(|| "end of file".into());
        self.err(self.i, format!("expected {what}, got {got}"), hint)
    }
    fn expect(&mut self, tok: &Tok, what: &str) -> Result<usize, ConfError> {
        if self.peek() == Some(tok) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(what, None))
        }
    }
}

/// `x` is `var.x`; anything with a dot is itself.
fn normalize_key(k: &str) -> String {
    if k.contains('.') {
        k.to_string()
    } else {
        format!("var.{k}")
    }
}

fn has_prefix_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// lighttpd's merge for `+` and `+=`.
/// Keys of `b` that `a` already holds with the same value (merging drops them;
/// lighttpd says so on stderr).
fn identical_dups(a: &Value, b: &Value) -> Vec<String> {
    let (Value::Array(x), Value::Array(y)) = (a, b) else {
        return Vec::new();
    };
    let index = key_index(x);
    y.iter()
        .filter_map(|(k, v)| {
            let k = k.as_ref()?;
            let i = *index.get(&k.to_ascii_lowercase())?;
            (x[i].1 == *v).then(|| k.clone())
        })
        .collect()
}

/// Lowercased key → position, for the keyed elements of a list.
fn key_index(items: &[(Option<String>, Value)]) -> HashMap<String, usize> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, (k, _))| Some((k.as_ref()?.to_ascii_lowercase(), i)))
        .collect()
}

pub(crate) fn merge(a: Value, b: &Value) -> Result<Value, String> {
    match (a, b) {
        (Value::Str(mut s), Value::Str(t)) => {
            s.push_str(t);
            Ok(Value::Str(s))
        }
        (Value::Int(i), Value::Int(j)) => i
            .checked_add(*j)
            .map(Value::Int)
            .ok_or_else(|| format!("integer overflow adding {i} and {j}")),
        (Value::Str(mut s), Value::Int(j)) => {
            s.push_str(&j.to_string());
            Ok(Value::Str(s))
        }
        (Value::Int(i), Value::Str(t)) => Ok(Value::Str(format!("{i}{t}"))),
        (Value::Array(mut items), Value::Array(more)) => {
            let mut index = key_index(&items);
            for (k, v) in more {
                let lower = k.as_ref().map(|k| k.to_ascii_lowercase());
                match (k, lower.as_ref().and_then(|l| index.get(l))) {
                    (Some(k), Some(&i)) => {
                        // The same key with the same value is tolerated.
                        let old = &items[i].1;
                        let same = matches!(
                            (old, v),
                            (Value::Str(_), Value::Str(_)) | (Value::Int(_), Value::Int(_))
                        ) && old == v;
                        if !same {
                            return Err(format!(
                                "duplicate array-key '{k}' with a different value"
                            ));
                        }
                    }
                    _ => {
                        if let Some(l) = lower {
                            index.insert(l, items.len());
                        }
                        items.push((k.clone(), v.clone()));
                    }
                }
            }
            Ok(Value::Array(items))
        }
        (a, b) => Err(format!(
            "data type mismatch, cannot merge {} with {}",
            type_name(&a),
            type_name(b)
        )),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Str(_) => "a string",
        Value::Int(_) => "an integer",
        Value::Array(_) => "a list",
    }
}

/// Edit distance with transpositions (optimal string alignment), for "did you
/// mean" hints; ASCII case is ignored.
pub(crate) fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        d[i * w] = i;
    }
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1)
                .min(d[i * w + j - 1] + 1)
                .min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
        }
    }
    d[a.len() * w + b.len()]
}

/// The closest of `candidates` to `word`, if close enough to be a typo.
pub(crate) fn suggest<'c>(
    word: &str,
    candidates: impl Iterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (word.len() / 4).clamp(1, 3);
    candidates
        .filter(|c| *c != word)
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

const HTTP_FIELDS: &[&str] = &[
    "url",
    "host",
    "referer",
    "useragent",
    "user-agent",
    "language",
    "cookie",
    "remoteip",
    "remote-ip",
    "querystring",
    "query-string",
    "request-method",
    "scheme",
];

fn http_field(tag: &str) -> Option<CondField> {
    Some(match tag {
        "url" => CondField::Url,
        "host" => CondField::Host,
        "referer" => CondField::RequestHeader("Referer".into()),
        "useragent" | "user-agent" => CondField::RequestHeader("User-Agent".into()),
        "language" => CondField::RequestHeader("Accept-Language".into()),
        "cookie" => CondField::RequestHeader("Cookie".into()),
        "remoteip" | "remote-ip" => CondField::RemoteIp,
        "querystring" | "query-string" => CondField::QueryString,
        "request-method" => CondField::RequestMethod,
        "scheme" => CondField::Scheme,
        _ => return None,
    })
}

/// A host name in a condition, as lighttpd normalises it: lowercase, no trailing dot.
fn normalize_host(h: &str) -> Result<String, String> {
    let mut s = h.to_ascii_lowercase();
    // lighttpd lets a pattern starting with '/' through unchanged.
    if s.is_empty() || s.starts_with('/') {
        return Ok(h.to_string());
    }
    let ok = s
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b".-_:[]".contains(&c));
    if !ok {
        return Err(format!("invalid host name in condition: \"{h}\""));
    }
    if s.len() > 1 && s.ends_with('.') {
        s.pop();
    }
    Ok(s)
}

/// `addr` or `addr/bits`, IPv6 with or without brackets → canonical text.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, Option<u8>)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let addr = addr
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(addr);
    let ip: IpAddr = addr.parse().ok()?;
    let bits = match bits {
        None => None,
        Some(b) => {
            let n: u8 = b.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if n == 0 || n > max {
                return None;
            }
            Some(n)
        }
    };
    Some((ip, bits))
}

fn normalize_remote_ip(s: &str) -> Result<String, String> {
    if s.starts_with('/') {
        return Ok(s.to_string()); // a unix socket peer
    }
    match parse_cidr(s) {
        Some((ip, Some(b))) => Ok(format!("{ip}/{b}")),
        Some((ip, None)) => Ok(ip.to_string()),
        None => Err(format!("invalid IP addr: {s}")),
    }
}

fn negate(op: CondOp) -> CondOp {
    match op {
        CondOp::Eq => CondOp::Ne,
        CondOp::Ne => CondOp::Eq,
        CondOp::Match => CondOp::NotMatch,
        CondOp::NotMatch => CondOp::Match,
        // lighttpd writes "!^" and "!$" into the key; only the key text matters here.
        CondOp::Prefix | CondOp::Suffix => CondOp::Ne,
    }
}

impl Eval {
    pub fn new(base_dir: PathBuf) -> Eval {
        let mut global = BlockState {
            parent: None,
            cond: None,
            else_of: None,
            field_text: String::new(),
            key: "global".into(),
            entries: Vec::new(),
            loc: Loc::default(),
        };
        let builtin = Loc {
            file: "(builtin)".into(),
            line: 0,
            col: 0,
        };
        if let Ok(cwd) = std::env::current_dir() {
            global.entries.push(Entry {
                key: "var.CWD".into(),
                value: Value::Str(cwd.to_string_lossy().into_owned()),
                loc: builtin.clone(),
            });
        }
        global.entries.push(Entry {
            key: "var.PID".into(),
            value: Value::Int(i64::from(std::process::id())),
            loc: builtin,
        });
        let mut by_key = HashMap::new();
        by_key.insert("global".to_string(), 0);
        Eval {
            blocks: vec![global],
            by_key,
            current: 0,
            stack: Vec::new(),
            base_dir,
            depth: 0,
            sources: Vec::new(),
            warnings: Vec::new(),
            list_depth: 0,
            dropped: Vec::new(),
        }
    }

    /// Parse one whole source into the current block.
    pub fn parse_source(&mut self, src: &Source) -> Result<(), ConfError> {
        let (toks, warnings) = tokenize(src)?;
        self.warnings.extend(warnings);
        let mut p = P { src, toks, i: 0 };
        let r = self.metalines(&mut p, None);
        self.sources.push(src.clone());
        r
    }

    /// An error at `loc`, quoting the line when its text is known.
    pub fn error_at(&self, loc: &Loc, msg: impl Into<String>, hint: Option<&str>) -> ConfError {
        let line_text = self
            .sources
            .iter()
            .find(|s| s.name == loc.file)
            .and_then(|s| s.line_text(loc.line));
        ConfError {
            loc: loc.clone(),
            message: msg.into(),
            line_text,
            hint: hint.map(str::to_string),
        }
    }

    /// Statements until the end of the source, or until the `}` closing the block
    /// opened by token `open`.
    fn metalines(&mut self, p: &mut P, open: Option<usize>) -> Result<(), ConfError> {
        loop {
            let Some(tok) = p.peek() else {
                return match open {
                    None => Ok(()),
                    Some(o) => {
                        Err(p.err(o, "this '{' is never closed", Some("add the missing '}'")))
                    }
                };
            };
            match tok {
                Tok::Eol => {
                    p.bump();
                }
                Tok::Key(_) => self.varline(p)?,
                Tok::Global => self.global(p)?,
                Tok::Dollar => {
                    self.condlines(p)?;
                    if p.peek() == Some(&Tok::Eol) {
                        p.bump();
                    } else if p.peek() != Some(&Tok::RBrace) || open.is_none() {
                        return Err(p.unexpected("a new line after '}'", None));
                    }
                }
                Tok::Include | Tok::IncludeShell => self.include(p)?,
                Tok::RBrace if open.is_some() => return Ok(()),
                Tok::RBrace => return Err(p.err(p.i, "'}' without a matching '{'", None)),
                Tok::Else => {
                    return Err(p.err(p.i, "'else' without a condition before it", None));
                }
                Tok::Str(_) => {
                    return Err(p.unexpected(
                        "a key, a condition or include",
                        Some("strings may only follow '=', '+' or '=>'"),
                    ));
                }
                _ => return Err(p.unexpected("a key, a condition or include", None)),
            }
        }
    }

    fn block_desc(&self, id: usize) -> String {
        let b = &self.blocks[id];
        match &b.cond {
            None if id == 0 => "global".into(),
            None => "else".into(),
            Some(c) => format!("{} {} \"{}\"", b.field_text, op_str(c.op), c.pattern),
        }
    }

    fn varline(&mut self, p: &mut P) -> Result<(), ConfError> {
        let kidx = p.bump();
        let Some(Tok::Key(raw)) = p.toks.get(kidx).map(|t| t.tok.clone()) else {
            return Err(p.unexpected("a key", None));
        };
        let key = normalize_key(&raw);
        let oidx = p.i;
        let op = match p.peek() {
            Some(Tok::Assign | Tok::ForceAssign | Tok::Append) => p.peek().cloned(),
            _ => None,
        };
        let Some(op) = op else {
            let hint = if p.peek() == Some(&Tok::LBrace) {
                Some("a condition starts with '$', as in $HTTP[\"host\"] == \"example.org\" {")
            } else {
                None
            };
            return Err(p.unexpected(&format!("'=', ':=' or '+=' after {raw}"), hint));
        };
        p.bump();
        self.dropped.clear();
        let value = self.expression(p)?;
        if !self.dropped.is_empty() && DROP_OPENS.iter().any(|k| key.eq_ignore_ascii_case(k)) {
            return Err(p.err(
                kidx,
                format!(
                    "{key}: a list element after a missing ',' ({}) is dropped by lighttpd 1.4.69; here that would serve what the element restricts",
                    self.dropped.join("; ")
                ),
                Some("add the ','"),
            ));
        }
        if has_prefix_ci(&key, "env.") {
            return Err(p.err(
                kidx,
                format!("cannot set environment variable {key}"),
                Some("env.* only reads the environment"),
            ));
        }
        let loc = p.loc(kidx);
        let cur = self.current;
        match op {
            Tok::Assign => {
                if let Some(i) = self.blocks[cur].find(&key) {
                    let prev = &self.blocks[cur].entries[i].loc;
                    let msg = format!(
                        "Duplicate config variable in conditional {cur} {}: {key} (first set at {}:{})",
                        self.block_desc(cur),
                        prev.file,
                        prev.line
                    );
                    return Err(p.err(
                        kidx,
                        msg,
                        Some("use ':=' to replace the value or '+=' to add to it"),
                    ));
                }
                self.blocks[cur].entries.push(Entry { key, value, loc });
            }
            Tok::ForceAssign => match self.blocks[cur].find(&key) {
                Some(i) => {
                    let e = &mut self.blocks[cur].entries[i];
                    e.value = value;
                    e.loc = loc;
                }
                None => self.blocks[cur].entries.push(Entry { key, value, loc }),
            },
            _ => {
                if let Some(i) = self.blocks[cur].find(&key) {
                    let old =
                        std::mem::replace(&mut self.blocks[cur].entries[i].value, Value::Int(0));
                    let merged = self
                        .merge_at(p, oidx, old, &value)
                        .map_err(|m| p.err(oidx, format!("{key}: {m}"), None))?;
                    self.blocks[cur].entries[i].value = merged;
                } else if let Some(old) = self.lookup_parents(&key) {
                    // Copy the outer value into this block; the outer one is untouched.
                    let merged = self
                        .merge_at(p, oidx, old, &value)
                        .map_err(|m| p.err(oidx, format!("{key}: {m}"), None))?;
                    self.blocks[cur].entries.push(Entry {
                        key,
                        value: merged,
                        loc,
                    });
                } else {
                    self.blocks[cur].entries.push(Entry { key, value, loc });
                }
            }
        }
        Ok(())
    }

    /// [`merge`], warning about duplicate keys it drops.
    fn merge_at(&mut self, p: &P, at: usize, a: Value, b: &Value) -> Result<Value, String> {
        for k in identical_dups(&a, b) {
            let l = p.loc(at);
            self.warnings.push(format!(
                "WARNING: {}:{}:{}: duplicate array-key '{k}' with the same value (ignored)",
                l.file, l.line, l.col
            ));
        }
        merge(a, b)
    }

    /// A copy of `key` as visible from the current block (it, then its parents).
    fn lookup(&self, key: &str) -> Option<Value> {
        let mut b = Some(self.current);
        while let Some(id) = b {
            if let Some(i) = self.blocks[id].find(key) {
                return Some(self.blocks[id].entries[i].value.clone());
            }
            b = self.blocks[id].parent;
        }
        None
    }

    fn lookup_parents(&self, key: &str) -> Option<Value> {
        let mut b = self.blocks[self.current].parent;
        while let Some(id) = b {
            if let Some(i) = self.blocks[id].find(key) {
                return Some(self.blocks[id].entries[i].value.clone());
            }
            b = self.blocks[id].parent;
        }
        None
    }

    /// Every key visible from the current block, for hints.
    fn visible_keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut b = Some(self.current);
        while let Some(id) = b {
            out.extend(self.blocks[id].entries.iter().map(|e| e.key.clone()));
            b = self.blocks[id].parent;
        }
        out
    }

    fn expression(&mut self, p: &mut P) -> Result<Value, ConfError> {
        let mut v = self.value(p)?;
        while p.peek() == Some(&Tok::Plus) {
            let pidx = p.bump();
            let w = self.value(p)?;
            v = self
                .merge_at(p, pidx, v, &w)
                .map_err(|m| p.err(pidx, m, None))?;
        }
        Ok(v)
    }

    fn value(&mut self, p: &mut P) -> Result<Value, ConfError> {
        let idx = p.i;
        match p.peek().cloned() {
            Some(Tok::Str(s)) => {
                p.bump();
                Ok(Value::Str(s))
            }
            Some(Tok::Int(d)) => {
                p.bump();
                d.parse::<i64>()
                    .map(Value::Int)
                    .map_err(|_| p.err(idx, format!("error parsing number: '{d}'"), None))
            }
            Some(Tok::LParen) => self.array(p),
            Some(Tok::Key(raw)) => {
                p.bump();
                let key = normalize_key(&raw);
                if has_prefix_ci(&key, "env.") {
                    let name = &key[4..];
                    return match std::env::var_os(name) {
                        Some(v) => Ok(Value::Str(v.to_string_lossy().into_owned())),
                        None => Err(p.err(idx, format!("Undefined env variable: {name}"), None)),
                    };
                }
                match self.lookup(&key) {
                    Some(v) => Ok(v),
                    None => {
                        let visible = self.visible_keys();
                        let hint = suggest(&key, visible.iter().map(String::as_str))
                            .map(|s| format!("did you mean {s}?"))
                            .unwrap_or_else(|| "a variable must be set before it is used".into());
                        Err(p.err(
                            idx,
                            format!("Undefined config variable: {key}"),
                            Some(&hint),
                        ))
                    }
                }
            }
            _ => Err(p.unexpected(
                "a value (a \"string\", a number, a ( list ) or a variable)",
                None,
            )),
        }
    }

    fn array(&mut self, p: &mut P) -> Result<Value, ConfError> {
        if self.list_depth >= MAX_NESTING {
            return Err(p.err(
                p.i,
                format!("lists nested more than {MAX_NESTING} deep"),
                None,
            ));
        }
        self.list_depth += 1;
        let r = self.array_body(p);
        self.list_depth -= 1;
        r
    }

    fn array_body(&mut self, p: &mut P) -> Result<Value, ConfError> {
        p.bump(); // (
        let mut items: Vec<(Option<String>, Value)> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        if p.peek() == Some(&Tok::RParen) {
            p.bump();
            return Ok(Value::Array(items));
        }
        loop {
            let eidx = p.i;
            let first = self.expression(p)?;
            let elem = if p.peek() == Some(&Tok::Arrow) {
                p.bump();
                let k = stringop(first).map_err(|m| p.err(eidx, m, None))?;
                let v = self.expression(p)?;
                if !seen.insert(k.to_ascii_lowercase()) {
                    return Err(p.err(
                        eidx,
                        format!("duplicate array-key: {k}"),
                        Some("please get rid of the duplicate entry"),
                    ));
                }
                (Some(k), v)
            } else {
                (None, first)
            };
            items.push(elem);
            if !matches!(p.peek(), Some(Tok::Comma | Tok::RParen)) {
                self.skip_uncommaed(p)?;
            }
            match p.peek() {
                Some(Tok::Comma) => {
                    while p.peek() == Some(&Tok::Comma) {
                        p.bump();
                    }
                    if p.peek() == Some(&Tok::RParen) {
                        p.bump();
                        break;
                    }
                }
                Some(Tok::RParen) => {
                    p.bump();
                    break;
                }
                _ => return Err(p.unexpected("',' or ')' in a list", None)),
            }
        }
        Ok(Value::Array(items))
    }

    /// After a list element, lighttpd 1.4.69's parser discards whatever is not a
    /// ',' or a ')' (its error recovery, silent): `("a" "b", "c")` is `("a", "c")`,
    /// and an element on the next line without a ',' before it is dropped. The same
    /// here, with a warning naming what is dropped. A run that opens a list or a
    /// block is refused: lighttpd then ends the list at the inner ')' and reads
    /// the rest as something else.
    fn skip_uncommaed(&mut self, p: &mut P) -> Result<(), ConfError> {
        let start = p.i;
        let mut text: Vec<String> = Vec::new();
        loop {
            match p.peek() {
                Some(Tok::Comma | Tok::RParen) => break,
                Some(Tok::LParen | Tok::LBrace | Tok::Eol) | None => {
                    return Err(p.err(
                        start,
                        "missing ',' between list elements",
                        Some("add the ','"),
                    ));
                }
                Some(t) => {
                    text.push(t.spelled());
                    p.bump();
                }
            }
        }
        let dropped = text.join(" ");
        let l = p.loc(start);
        self.warnings.push(format!(
            "WARNING: {}:{}:{}: missing ',' before {dropped}: dropped up to the next ',' or ')', as lighttpd 1.4.69 drops it (add the ',' to keep it)",
            l.file, l.line, l.col
        ));
        self.dropped.push(dropped);
        Ok(())
    }

    fn global(&mut self, p: &mut P) -> Result<(), ConfError> {
        let gidx = p.bump();
        let open = p.expect(&Tok::LBrace, "'{' after global")?;
        if !self.stack.is_empty() && self.current == 0 {
            return Err(p.err(gidx, "global { } cannot be nested inside global { }", None));
        }
        self.stack.push(self.current);
        self.current = 0;
        self.metalines(p, Some(open))?;
        p.bump(); // }
        self.current = self.stack.pop().unwrap_or(0);
        Ok(())
    }

    /// `cond { … } [else cond { … }]… [else { … }]`
    fn condlines(&mut self, p: &mut P) -> Result<(), ConfError> {
        let mut prev = self.condline(p, None)?;
        loop {
            let save = p.i;
            if p.peek() == Some(&Tok::Eol) {
                p.bump();
            }
            if p.peek() != Some(&Tok::Else) {
                p.i = save;
                return Ok(());
            }
            let eidx = p.bump();
            if self.blocks[prev].cond.is_none() {
                return Err(p.err(eidx, "unreachable condition following else catch-all", None));
            }
            prev = match p.peek() {
                Some(Tok::Dollar) => self.condline(p, Some((prev, eidx)))?,
                Some(Tok::LBrace) => self.else_block(p, prev, eidx)?,
                _ => return Err(p.unexpected("a condition or '{' after else", None)),
            };
        }
    }

    fn push_block(&mut self, p: &P, at: usize, id: usize) -> Result<(), ConfError> {
        if self.stack.len() >= MAX_NESTING as usize {
            return Err(p.err(
                at,
                format!("conditions nested more than {MAX_NESTING} deep"),
                None,
            ));
        }
        if !self.stack.is_empty() && self.current == 0 {
            return Err(p.err(
                at,
                "Cannot use conditionals inside a global { ... } block",
                None,
            ));
        }
        self.stack.push(self.current);
        self.current = id;
        Ok(())
    }

    fn block_body(&mut self, p: &mut P) -> Result<(), ConfError> {
        if p.peek() == Some(&Tok::Eol) {
            return Err(p.unexpected(
                "'{'",
                Some("the '{' must be on the same line as the condition"),
            ));
        }
        let open = p.expect(&Tok::LBrace, "'{'")?;
        self.metalines(p, Some(open))?;
        p.bump(); // }
        self.current = self.stack.pop().unwrap_or(0);
        Ok(())
    }

    fn condline(&mut self, p: &mut P, else_of: Option<(usize, usize)>) -> Result<usize, ConfError> {
        let didx = p.expect(&Tok::Dollar, "'$'")?;
        let nidx = p.i;
        let obj = match p.peek().cloned() {
            Some(Tok::Name(n)) => {
                p.bump();
                n
            }
            _ => return Err(p.unexpected("HTTP, SERVER or REQUEST_HEADER after '$'", None)),
        };
        p.expect(&Tok::LBracket, "'['")?;
        let tidx = p.i;
        let tag_v = self.expression(p)?;
        let tag = stringop(tag_v).map_err(|m| p.err(tidx, m, None))?;
        p.expect(&Tok::RBracket, "']'")?;
        let op = match p.peek() {
            Some(Tok::Op(op)) => *op,
            Some(Tok::Assign) => {
                return Err(p.unexpected("a comparison", Some("compare with '==', not '='")))
            }
            _ => return Err(p.unexpected("==, !=, =~, !~, =^ or =$", None)),
        };
        p.bump();
        let vidx = p.i;
        let rvalue = match self.expression(p)? {
            Value::Str(s) => s,
            other => {
                return Err(p.err(
                    vidx,
                    format!("rvalue must be string, got {}", type_name(&other)),
                    Some("quote the value: \"...\""),
                ))
            }
        };
        let field = match obj.as_str() {
            "HTTP" => http_field(&tag).ok_or_else(|| {
                let hint = suggest(&tag, HTTP_FIELDS.iter().copied())
                    .map(|s| format!("did you mean $HTTP[\"{s}\"]?"))
                    .unwrap_or_else(|| format!("known fields: {}", HTTP_FIELDS.join(", ")));
                p.err(
                    tidx,
                    format!("error comp_key: unknown condition field $HTTP[\"{tag}\"]"),
                    Some(&hint),
                )
            })?,
            "SERVER" if tag == "socket" => CondField::ServerSocket,
            "SERVER" => {
                return Err(p.err(
                    tidx,
                    format!("error comp_key: unknown condition field $SERVER[\"{tag}\"]"),
                    Some("only $SERVER[\"socket\"] exists"),
                ))
            }
            "REQUEST_HEADER" => CondField::RequestHeader(tag.clone()),
            _ => {
                let hint = suggest(&obj, ["HTTP", "SERVER", "REQUEST_HEADER"].into_iter())
                    .map(|s| format!("did you mean ${s}?"));
                return Err(p.err(
                    nidx,
                    format!("error comp_key: unknown condition ${obj}"),
                    Some(hint.as_deref().unwrap_or(
                        "conditions are $HTTP[\"...\"], $REQUEST_HEADER[\"...\"] or $SERVER[\"socket\"]",
                    )),
                ));
            }
        };
        let pattern = match (&field, op) {
            (CondField::Host, CondOp::Eq | CondOp::Ne | CondOp::Prefix | CondOp::Suffix) => {
                normalize_host(&rvalue).map_err(|m| p.err(vidx, m, None))?
            }
            (CondField::RemoteIp, CondOp::Eq | CondOp::Ne) => normalize_remote_ip(&rvalue)
                .map_err(|m| {
                    p.err(
                        vidx,
                        m,
                        Some("write an address or a CIDR block such as \"10.0.0.0/8\""),
                    )
                })?,
            (CondField::ServerSocket, _) => rvalue.clone(),
            _ => rvalue.clone(),
        };
        let field_text = format!("${obj}[\"{tag}\"]");
        let parent_key = self.blocks[self.current].key.clone();
        let key = format!("{parent_key} / {field_text} {} \"{pattern}\"", op_str(op))
            .to_ascii_lowercase();
        let loc = p.loc(didx);
        let id = match self.by_key.get(&key) {
            Some(&id) => id,
            None => {
                let id = self.blocks.len();
                self.blocks.push(BlockState {
                    parent: Some(self.current),
                    cond: Some(Cond {
                        field,
                        op,
                        pattern,
                        loc: loc.clone(),
                    }),
                    else_of: else_of.map(|(b, _)| b),
                    field_text,
                    key: key.clone(),
                    entries: Vec::new(),
                    loc,
                });
                self.by_key.insert(key, id);
                id
            }
        };
        if let Some((prev, eidx)) = else_of {
            if id <= prev {
                return Err(p.err(
                    eidx,
                    "unreachable else condition",
                    Some("this condition is already used earlier at the same level"),
                ));
            }
        }
        self.push_block(p, didx, id)?;
        self.block_body(p)?;
        Ok(id)
    }

    fn else_block(&mut self, p: &mut P, prev: usize, eidx: usize) -> Result<usize, ConfError> {
        let (field_text, op, pattern) = match &self.blocks[prev].cond {
            Some(c) => (
                self.blocks[prev].field_text.clone(),
                c.op,
                c.pattern.clone(),
            ),
            None => {
                return Err(p.err(eidx, "unreachable condition following else catch-all", None))
            }
        };
        let parent_key = self.blocks[self.current].key.clone();
        let key = format!(
            "{parent_key} / {field_text} {} \"{pattern}\"",
            op_str(negate(op))
        )
        .to_ascii_lowercase();
        if self.by_key.contains_key(&key) {
            return Err(p.err(eidx, "unreachable else condition", None));
        }
        let id = self.blocks.len();
        let loc = p.loc(eidx);
        self.blocks.push(BlockState {
            parent: Some(self.current),
            cond: None,
            else_of: Some(prev),
            field_text: String::new(),
            key: key.clone(),
            entries: Vec::new(),
            loc,
        });
        self.by_key.insert(key, id);
        self.push_block(p, eidx, id)?;
        self.block_body(p)?;
        Ok(id)
    }

    fn include(&mut self, p: &mut P) -> Result<(), ConfError> {
        let kidx = p.bump();
        let shell = p.toks.get(kidx).map(|t| &t.tok) == Some(&Tok::IncludeShell);
        let aidx = p.i;
        let arg = self.expression(p)?;
        let arg = stringop(arg).map_err(|m| p.err(aidx, m, None))?;
        if self.depth >= MAX_DEPTH {
            return Err(p.err(
                kidx,
                format!("includes nested more than {MAX_DEPTH} deep (an include loop?)"),
                None,
            ));
        }
        self.depth += 1;
        let r = if shell {
            self.include_shell(p, kidx, &arg)
        } else {
            self.include_files(p, kidx, &arg)
        };
        self.depth -= 1;
        r
    }

    fn include_files(&mut self, p: &P, kidx: usize, arg: &str) -> Result<(), ConfError> {
        let literal = arg.starts_with('/') || arg.starts_with("./") || arg.starts_with("../");
        let path = if literal || self.base_dir.as_os_str().is_empty() {
            PathBuf::from(arg)
        } else {
            self.base_dir.join(arg)
        };
        let pattern = path.to_string_lossy().into_owned();
        let has_meta = pattern.contains(['*', '?', '[', ']', '{', '}']);
        let mut files = Vec::new();
        for pat in expand_braces(&pattern) {
            let paths = glob::glob(&pat)
                .map_err(|e| p.err(kidx, format!("bad include pattern {pat}: {e}"), None))?;
            let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
            found.sort();
            files.extend(found);
        }
        if files.is_empty() && !has_meta {
            return Err(p.err(kidx, format!("include file not found: {pattern}"), None));
        }
        for f in files {
            let src = read_source(&f).map_err(|e| {
                let mut e2 = p.err(kidx, e.message.clone(), None);
                e2.hint = e.hint;
                e2
            })?;
            self.parse_source(&src)?;
        }
        Ok(())
    }

    fn include_shell(&mut self, p: &P, kidx: usize, cmd: &str) -> Result<(), ConfError> {
        let mut c = std::process::Command::new("/bin/sh");
        c.arg("-c")
            .arg(cmd)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        if !self.base_dir.as_os_str().is_empty() {
            c.current_dir(&self.base_dir);
        }
        let out = c.output().map_err(|e| {
            p.err(
                kidx,
                format!("cannot run include_shell \"{cmd}\": {e}"),
                None,
            )
        })?;
        if !out.status.success() {
            let code = out
                .status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "killed by a signal".into());
            return Err(p.err(
                kidx,
                format!("command \"{cmd}\" exited non-zero: {code}"),
                None,
            ));
        }
        let src = Source {
            name: cmd.to_string(),
            text: String::from_utf8_lossy(&out.stdout).into_owned(),
        };
        self.parse_source(&src)
    }
}

/// Keys whose list, one element short, would serve what the element restricts:
/// a missing ',' in them is refused rather than dropped as lighttpd drops it.
const DROP_OPENS: &[&str] = &[
    "url.access-deny",
    "static-file.exclude-extensions",
    "auth.require",
    "cgi.assign",
    "fastcgi.server",
    "scgi.server",
    "ajp13.server",
];

/// A string (or integer, as decimal) where lighttpd wants a string.
fn stringop(v: Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::Int(i) => Ok(i.to_string()),
        Value::Array(_) => Err("operand must be string, got a list".into()),
    }
}

/// Read a config file (at most 32 MiB).
pub(crate) fn read_source(path: &Path) -> Result<Source, ConfError> {
    let name = path.to_string_lossy().into_owned();
    let fail = |m: String| ConfError {
        loc: Loc {
            file: name.clone(),
            line: 0,
            col: 0,
        },
        message: m,
        line_text: None,
        hint: None,
    };
    let meta = std::fs::metadata(path)
        .map_err(|e| fail(format!("opening configfile {name} failed: {e}")))?;
    if meta.is_dir() {
        return Err(fail(format!(
            "opening configfile {name} failed: it is a directory"
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(fail(format!("configfile {name} is larger than 32 MB")));
    }
    let bytes =
        std::fs::read(path).map_err(|e| fail(format!("opening configfile {name} failed: {e}")))?;
    Ok(Source {
        name,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `{a,b}` alternatives, expanded in order (glob(3)'s GLOB_BRACE).
pub(crate) fn expand_braces(pat: &str) -> Vec<String> {
    let bytes = pat.as_bytes();
    let Some(open) = pat.find('{') else {
        return vec![pat.to_string()];
    };
    let mut depth = 0;
    let mut close = None;
    let mut commas = Vec::new();
    for (i, &c) in bytes.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(i);
                    break;
                }
            }
            b',' if depth == 1 => commas.push(i),
            _ => {}
        }
    }
    let Some(close) = close else {
        return vec![pat.to_string()];
    };
    let (pre, post) = (&pat[..open], &pat[close + 1..]);
    let mut bounds = vec![open];
    bounds.extend(commas);
    bounds.push(close);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let alt = &pat[w[0] + 1..w[1]];
        out.extend(expand_braces(&format!("{pre}{alt}{post}")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(expand_braces("{x,y{1,2}}"), ["x", "y1", "y2"]);
        assert_eq!(expand_braces("plain"), ["plain"]);
    }

    #[test]
    fn merge_rules() {
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(merge(s("a"), &s("b")), Ok(s("ab")));
        assert_eq!(merge(Value::Int(2), &Value::Int(3)), Ok(Value::Int(5)));
        assert_eq!(merge(s("p"), &Value::Int(8)), Ok(s("p8")));
        assert_eq!(merge(Value::Int(8), &s("p")), Ok(s("8p")));
        assert!(merge(s("a"), &Value::Array(vec![])).is_err());
        let a = Value::Array(vec![(Some("k".into()), s("v"))]);
        assert_eq!(
            merge(a.clone(), &a),
            Ok(a.clone()),
            "identical duplicate tolerated"
        );
        assert!(merge(a.clone(), &Value::Array(vec![(Some("K".into()), s("w"))])).is_err());
        let b = merge(a, &Value::Array(vec![(None, s("x"))])).expect("append");
        assert_eq!(
            b,
            Value::Array(vec![(Some("k".into()), s("v")), (None, s("x"))])
        );
    }

    #[test]
    fn cidr() {
        assert_eq!(
            normalize_remote_ip("10.0.0.0/8").as_deref(),
            Ok("10.0.0.0/8")
        );
        assert_eq!(normalize_remote_ip("[::1]").as_deref(), Ok("::1"));
        assert_eq!(
            normalize_remote_ip("2001:db8::/32").as_deref(),
            Ok("2001:db8::/32")
        );
        assert!(normalize_remote_ip("10.0.0.0/33").is_err());
        assert!(normalize_remote_ip("10.0.0.0/0").is_err());
        assert!(normalize_remote_ip("nope").is_err());
    }

    #[test]
    fn suggestions() {
        let keys = ["server.document-root", "server.port"];
        assert_eq!(
            suggest("server.documentroot", keys.iter().copied()),
            Some("server.document-root")
        );
        assert_eq!(suggest("zzz", keys.iter().copied()), None);
    }
}
