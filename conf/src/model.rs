//! The evaluated configuration: blocks of settings, conditions, values.
//! This is what the master parses once; each worker gets [`Config::for_worker`], the
//! gateway-spawner the part its policy reads.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Where something was written: file, 1-based line and column.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loc {
    pub file: String,
    pub line: u32,
    pub col: u32,
}

/// A config value. lighttpd has strings, integers and arrays (lists, `key => value`
/// maps, or a mix of both, nested). Booleans are strings or integers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    Str(String),
    Int(i64),
    /// Elements in order; `Some(key)` for `key => value` elements.
    Array(Vec<(Option<String>, Value)>),
}

/// Values built in code, as the config language writes them (tests of every
/// key that reads a list or a key => value array build them this way).
impl Value {
    /// `"text"`.
    pub fn text(v: &str) -> Value {
        Value::Str(v.into())
    }

    /// `( "key" => value, ... )`.
    pub fn pairs(items: Vec<(&str, Value)>) -> Value {
        Value::Array(
            items
                .into_iter()
                .map(|(k, v)| (Some(k.to_string()), v))
                .collect(),
        )
    }

    /// `( value, ... )`.
    pub fn list(items: Vec<Value>) -> Value {
        Value::Array(items.into_iter().map(|v| (None, v)).collect())
    }
}

/// Index into [`Config::blocks`]; block 0 is the global scope.
pub type BlockId = usize;

/// Index into [`Config::listeners`]; 0 is server.bind/server.port.
pub type ListenerIndex = usize;

/// Condition field: `$HTTP["host"]`, `$SERVER["socket"]`, `$REQUEST_HEADER["X-Foo"]`, ...
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CondField {
    Host,
    Url,
    QueryString,
    RemoteIp,
    Scheme,
    RequestMethod,
    /// `useragent`, `referer`, `cookie`, `language` and `$REQUEST_HEADER["Name"]`:
    /// the value of that request header (name as written, compared case-insensitively).
    RequestHeader(String),
    ServerSocket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CondOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `=^`
    Prefix,
    /// `=$`
    Suffix,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cond {
    pub field: CondField,
    pub op: CondOp,
    /// The right-hand side, fully evaluated (variables and `+` resolved).
    pub pattern: String,
    pub loc: Loc,
}

/// One assignment as it stands after evaluation (`+=` already merged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Setting {
    pub key: String,
    pub value: Value,
    pub loc: Loc,
}

/// A scope: the global block (id 0) or one conditional block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Enclosing block (None only for the global block).
    pub parent: Option<BlockId>,
    /// None for the global block and for a plain `else { }` branch.
    pub cond: Option<Cond>,
    /// Previous branch of an `else` chain: this block applies only when that one
    /// (and every earlier branch) is definitely false.
    pub else_of: Option<BlockId>,
    /// Settings made in this block, in file order, `var.*` excluded.
    pub settings: Vec<Setting>,
    pub loc: Loc,
}

/// The whole evaluated configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// The `-f` file (`-` for stdin); relative includes are resolved from its directory.
    pub main_file: PathBuf,
    /// `blocks[0]` is the global scope; the others in file order.
    pub blocks: Vec<Block>,
    /// Typed server-wide options, taken from the global block.
    pub server: ServerOptionsHolder,
    /// Typed per-request patch of each block, aligned with `blocks`.
    pub patches: Vec<crate::options::Patch>,
    /// Every listener: server.bind/server.port and each `$SERVER["socket"] == ...`.
    pub listeners: Vec<crate::options::Listener>,
    /// Warnings to print at start-up (unknown keys, deprecated use).
    pub warnings: Vec<String>,
}

impl Config {
    /// A worker's copy: all of it but `warnings`, which the master printed. The
    /// worker evaluates every block (conditions and patches), its modules and
    /// sandbox plan read raw settings of the blocks, `$SERVER["socket"]`
    /// conditions and its listener fds follow `listeners`, and its limits, user and
    /// chroot are server options. (The spawner's cut is `policy::slice` in
    /// gateway-spawner, next to the code that reads it.)
    pub fn for_worker(&self) -> Config {
        Config {
            main_file: self.main_file.clone(),
            blocks: self.blocks.clone(),
            server: self.server.clone(),
            patches: self.patches.clone(),
            listeners: self.listeners.clone(),
            warnings: Vec::new(),
        }
    }
}

/// Alias kept so the struct above reads as the data it holds.
pub type ServerOptionsHolder = crate::options::ServerOptions;
