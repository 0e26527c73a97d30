//! Per-request evaluation of the condition blocks (lighttpd's config_check_cond and
//! config_patch_config).
//!
//! A worker builds one [`Compiled`] per configuration (every regex compiled once) and
//! one [`CondState`] per connection (reused for every request: no allocation per
//! condition once warm). For each request it fills a [`Facts`] and calls
//! [`Compiled::evaluate`], which decides every block in file order and returns the
//! [`View`] of the options in force:
//!
//! - the defaults, then block 0 (global), then every true block in file order: a
//!   later block wins;
//! - a nested block can be true only when its parent is true;
//! - an `else` branch only when the previous branch is definitely false;
//! - `$HTTP["host"]` compares the lowercased host; `==`/`!=` ignore a `:port` on the
//!   request side when the lengths differ;
//! - `$HTTP["remoteip"] ==`/`!=` take CIDR blocks; a v4-mapped IPv6 peer counts as
//!   its IPv4 address;
//! - a header that is absent compares as the empty string.
//!
//! After an internal rewrite the worker calls `evaluate` again with the new facts:
//! every result is recomputed.
//!
//! Shared hosting puts thousands of `$HTTP["host"] == "name"` blocks side by
//! side. When a block has [`INDEX_MIN`] or more such children (with no `else`
//! after them), they go into a map by host and evaluation walks the tree instead
//! of the list: a request tests the blocks that can match its host, and the
//! blocks beneath a block only when that block is true, so its cost does not grow
//! with the number of sites. The results are those of testing every block in
//! order (`evaluate_plain`, compared by a property test).
//!
//! Regex captures of a true `=~` block are kept in the [`CondState`] for `%0`..`%9`
//! substitution: [`CondState::capture`]. mod_rewrite and mod_redirect use the
//! captures of the block that defined the winning value; [`Compiled::winning_block`]
//! finds it.

use crate::error::ConfError;
use crate::model::{BlockId, CondField, CondOp, Config, ListenerIndex};
use crate::options::{ListenAddr, Patch, RequestOptions, View};
use crate::pattern::{Locs, Pattern};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the worker knows about one request. Strings are as received, except where
/// noted; nothing here is copied.
pub struct Facts<'r> {
    /// The Host header (or absolute-URI authority) as sent: any case, maybe with
    /// `:port`. Empty when absent.
    pub host: &'r str,
    /// The decoded, normalised path, without the query.
    pub url_path: &'r str,
    /// The query string without `?` (empty when none).
    pub query: &'r str,
    /// The peer address (for a unix-socket listener, pass 0.0.0.0).
    pub remote_ip: IpAddr,
    /// "http" or "https".
    pub scheme: &'r str,
    /// The request method as sent: "GET", "POST", ...
    pub method: &'r str,
    /// Index into [`Config::listeners`] of the socket the connection came in on.
    pub listener: ListenerIndex,
    /// Request header lookup by name (case-insensitive; the first value, or the
    /// values joined as the worker stores them).
    pub header: &'r dyn Fn(&str) -> Option<&'r str>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Res {
    /// Not applicable: parent not true, or an earlier branch of the chain taken.
    Skip,
    False,
    True,
}

#[derive(Clone, Copy)]
enum Subject {
    Host,
    Url,
    Query,
    RemoteIp,
    Scheme,
    Method,
    /// Index into [`Compiled::headers`].
    Header(u32),
    Socket,
}

/// Strings are boxed slices, patterns are held apart: a block with a condition
/// costs a few words plus its text (shared hosting has tens of thousands).
enum Test {
    /// A plain `else { }`.
    Always,
    Eq(Box<str>),
    Prefix(Box<str>),
    Suffix(Box<str>),
    /// Index into [`Compiled::regexes`] (and a [`CondState`]'s capture slots).
    Regex(u32),
    /// `$HTTP["remoteip"] == "net/bits"` (bits None: the exact address).
    Cidr(Box<(IpAddr, Option<u8>)>),
    /// `$SERVER["socket"] ==`: the listener it names (None: no listener has it).
    Socket(Option<u32>),
}

/// No block: a `parent` or `prev` of [`CBlock`].
const NONE: u32 = u32::MAX;

struct CBlock {
    parent: u32,
    prev: u32,
    subject: Subject,
    /// `!=` and `!~`.
    negate: bool,
    test: Test,
}

impl CBlock {
    fn parent(&self) -> Option<BlockId> {
        (self.parent != NONE).then_some(self.parent as usize)
    }
    fn prev(&self) -> Option<BlockId> {
        (self.prev != NONE).then_some(self.prev as usize)
    }
}

/// Sibling blocks of one indexable kind are indexed from this many on.
pub const INDEX_MIN: usize = 8;

/// The tree walk used when some block's children are indexed.
struct Tree {
    /// Children tested one by one (or a chain's entry), in file order: those of
    /// block `p` are `steps[at[p]..at[p + 1]]`.
    at: Box<[u32]>,
    steps: Box<[Step]>,
    /// Indexed sibling groups, by parent.
    groups: Box<[Group]>,
    chains: Box<[Chain]>,
}

#[derive(Clone, Copy)]
enum Step {
    Block(u32),
    /// Index into [`Tree::chains`].
    Chain(u32),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// `$HTTP["host"] == "literal"`: keyed by the host up to a ':', lower case.
    Host,
    /// `$HTTP["url"] =^ "literal"`: keyed by the pattern; a request is looked up
    /// by its path's first `len` bytes, for each pattern length there is.
    UrlPrefix,
}

/// The indexable children of one block that no `else` touches, by key.
struct Group {
    parent: u32,
    kind: Kind,
    /// The pattern lengths (UrlPrefix only), ascending.
    lens: Box<[u32]>,
    keys: Keys,
}

/// An `else` chain whose first `links` are `$HTTP["host"] == "literal"`: the
/// first link that matches is true, the earlier ones false, the later skipped.
struct Chain {
    /// The last indexed link: false when none matched, so that what follows it
    /// in the chain is tested.
    last: u32,
    keys: Keys,
}

/// (hash of the key, block), sorted: the blocks whose key hashes alike, in file
/// order. A hash shared by two keys only costs a test, as every candidate is
/// tested; no key text is kept. `dir` maps the hash's top `bits` to the range of
/// entries that start with them (about one entry each), so that a lookup among
/// 100,000 sites touches two cache lines, not a binary search's seventeen.
struct Keys {
    entries: Box<[(u64, u32)]>,
    dir: Box<[u32]>,
    bits: u32,
}

impl Keys {
    fn new(mut v: Vec<(u64, u32)>) -> Keys {
        v.sort_unstable();
        let bits = v.len().next_power_of_two().trailing_zeros().min(24);
        let mut dir = Vec::with_capacity((1usize << bits) + 1);
        let mut at = 0;
        for bucket in 0..(1u64 << bits) {
            while at < v.len() && Self::bucket(v[at].0, bits) < bucket {
                at += 1;
            }
            dir.push(at as u32);
        }
        dir.push(v.len() as u32);
        Keys {
            entries: v.into_boxed_slice(),
            dir: dir.into_boxed_slice(),
            bits,
        }
    }

    fn bucket(hash: u64, bits: u32) -> u64 {
        hash.checked_shr(64 - bits).unwrap_or(0)
    }

    fn get(&self, hash: u64) -> impl Iterator<Item = BlockId> + '_ {
        let b = Self::bucket(hash, self.bits) as usize;
        let (from, to) = (self.dir[b] as usize, self.dir[b + 1] as usize);
        self.entries[from..to]
            .iter()
            .skip_while(move |&&(h, _)| h < hash)
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, id)| id as usize)
    }
}

/// FNV-1a, then a final mix (the directory takes the top bits): index keys are
/// short and the config's; a request's host only picks which blocks get tested.
fn key_hash(b: &[u8]) -> u64 {
    mix(b.iter().fold(FNV_START, |h, &c| fnv(h, c)))
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(h: u64, c: u8) -> u64 {
    (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3)
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The conditions of one configuration, ready to evaluate; owns a copy of the
/// defaults and patches so that a [`View`] can borrow from it.
pub struct Compiled {
    defaults: RequestOptions,
    patches: Vec<Patch>,
    blocks: Vec<CBlock>,
    /// The `=~`/`!~` patterns, by [`Test::Regex`] index.
    regexes: Vec<Pattern>,
    /// The request headers conditions name, by [`Subject::Header`] index.
    headers: Vec<String>,
    /// Set when some block has INDEX_MIN indexable children or more.
    tree: Option<Tree>,
    /// Each listener's `$SERVER["socket"]` text, for regex/prefix/suffix tests.
    specs: Vec<String>,
    /// Tells the CondStates made for this Compiled from others (after a reload).
    serial: u64,
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

/// Per-connection scratch space: each block's result and regex captures. Made for
/// one [`Compiled`]; given to another (a new configuration), it is rebuilt.
pub struct CondState {
    serial: u64,
    res: Vec<Res>,
    /// The true blocks of the last evaluation, in file order (0 first).
    trues: Vec<BlockId>,
    /// Blocks given a result by the last tree walk (reset before the next).
    touched: Vec<BlockId>,
    /// Per regex (by [`Test::Regex`] index): its capture locations, and the text
    /// it matched against when it matched.
    locs: Vec<Option<Locs>>,
    subject: Vec<String>,
    /// The `=~` blocks that matched in the last evaluation, with their regex.
    captured: Vec<(BlockId, u32)>,
    host: String,
    ip: String,
}

/// Compile a condition regex (see [`crate::pattern`]), or explain why not
/// (message, hint).
pub fn compile_regex(pattern: &str) -> Result<Pattern, (String, Option<String>)> {
    let re = Pattern::new(pattern).map_err(|e| match e {
        crate::pattern::Error::Unsupported(_) => (
            format!("regex \"{pattern}\" {e}"),
            Some(
                "express the condition without it, for example with nested conditions or !~".into(),
            ),
        ),
        crate::pattern::Error::Invalid(m) => (format!("invalid regex \"{pattern}\": {m}"), None),
    })?;
    if re.captures_len() > 10 {
        return Err((
            format!("Too many captures in regex \"{pattern}\" (at most 9)"),
            Some("use (?:...) instead of (...) for groups you do not need as %1..%9".into()),
        ));
    }
    Ok(re)
}

/// The text of the line at `loc`, read again from its file (error path only).
fn quote_line(loc: &crate::model::Loc) -> Option<String> {
    let text = std::fs::read_to_string(&loc.file).ok()?;
    let line = text.split('\n').nth((loc.line as usize).checked_sub(1)?)?;
    Some(line.strip_suffix('\r').unwrap_or(line).to_string())
}

impl Compiled {
    /// Compile every condition of `config`. Fails, naming the block's file:line, on a
    /// regex the engine cannot express.
    pub fn new(config: &Config) -> Result<Compiled, ConfError> {
        Self::with_index_min(config, INDEX_MIN)
    }

    /// As [`Compiled::new`], indexing host children from `index_min` siblings on
    /// (`usize::MAX`: never; tests compare both ways).
    pub fn with_index_min(config: &Config, index_min: usize) -> Result<Compiled, ConfError> {
        let mut blocks = Vec::with_capacity(config.blocks.len());
        let mut regexes = Vec::new();
        let mut headers: Vec<String> = Vec::new();
        let id32 = |id: Option<BlockId>| id.and_then(|i| u32::try_from(i).ok()).unwrap_or(NONE);
        for (id, b) in config.blocks.iter().enumerate() {
            let (subject, test, negate) = match &b.cond {
                None => (Subject::Url, Test::Always, false),
                Some(c) => {
                    let subject = match &c.field {
                        CondField::Host => Subject::Host,
                        CondField::Url => Subject::Url,
                        CondField::QueryString => Subject::Query,
                        CondField::RemoteIp => Subject::RemoteIp,
                        CondField::Scheme => Subject::Scheme,
                        CondField::RequestMethod => Subject::Method,
                        CondField::RequestHeader(h) => {
                            let at = match headers.iter().position(|x| x == h) {
                                Some(i) => i,
                                None => {
                                    headers.push(h.clone());
                                    headers.len() - 1
                                }
                            };
                            Subject::Header(at as u32)
                        }
                        CondField::ServerSocket => Subject::Socket,
                    };
                    let negate = matches!(c.op, CondOp::Ne | CondOp::NotMatch);
                    let err = |m: String, h: Option<String>| ConfError {
                        loc: c.loc.clone(),
                        message: m,
                        line_text: quote_line(&c.loc),
                        hint: h,
                    };
                    let test = match c.op {
                        CondOp::Match | CondOp::NotMatch => {
                            regexes.push(compile_regex(&c.pattern).map_err(|(m, h)| err(m, h))?);
                            Test::Regex(regexes.len() as u32 - 1)
                        }
                        CondOp::Prefix => Test::Prefix(c.pattern.as_str().into()),
                        CondOp::Suffix => Test::Suffix(c.pattern.as_str().into()),
                        CondOp::Eq | CondOp::Ne => match &c.field {
                            CondField::RemoteIp if !c.pattern.starts_with('/') => {
                                match crate::eval::parse_cidr(&c.pattern) {
                                    Some(net) => Test::Cidr(Box::new(net)),
                                    None => {
                                        return Err(err(
                                            format!("invalid IP addr: {}", c.pattern),
                                            None,
                                        ))
                                    }
                                }
                            }
                            CondField::ServerSocket => {
                                Test::Socket(socket_index(config, id, &c.pattern).map(|i| i as u32))
                            }
                            _ => Test::Eq(c.pattern.as_str().into()),
                        },
                    };
                    (subject, test, negate)
                }
            };
            blocks.push(CBlock {
                parent: id32(b.parent),
                prev: id32(b.else_of),
                subject,
                negate,
                test,
            });
        }
        let mut patches = config.patches.clone();
        patches.resize_with(config.blocks.len(), Patch::default);
        let tree = Tree::new(&blocks, index_min);
        Ok(Compiled {
            defaults: RequestOptions::default(),
            patches,
            blocks,
            regexes,
            headers,
            tree,
            specs: config.listeners.iter().map(|l| l.spec.clone()).collect(),
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// Number of blocks (block 0 is the global scope).
    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    /// The built-in defaults, before any block.
    pub fn defaults(&self) -> &RequestOptions {
        &self.defaults
    }

    /// The patch of block `id`.
    pub fn patch(&self, id: BlockId) -> &Patch {
        &self.patches[id]
    }

    /// Decide every block for this request and return the options in force. `state`
    /// then tells which blocks matched and holds their regex captures.
    pub fn evaluate<'a>(&'a self, facts: &Facts, state: &mut CondState) -> View<'a> {
        match &self.tree {
            Some(tree) => self.evaluate_tree(tree, facts, state),
            None => self.evaluate_plain(facts, state),
        }
    }

    /// Every block tested in file order (what the tree walk must equal).
    pub fn evaluate_plain<'a>(&'a self, facts: &Facts, state: &mut CondState) -> View<'a> {
        if state.serial != self.serial {
            *state = CondState::new(self);
        }
        state.prepare();
        let mut view = self.defaults.view();
        view.apply(&self.patches[0]);
        state.res[0] = Res::True;
        state.trues.push(0);
        for id in 1..self.blocks.len() {
            let b = &self.blocks[id];
            let r = if b
                .parent()
                .is_some_and(|p| p != 0 && state.res[p] != Res::True)
                || b.prev().is_some_and(|q| state.res[q] != Res::False)
            {
                Res::Skip
            } else {
                self.test(id, facts, state)
            };
            state.res[id] = r;
            if r == Res::True {
                state.trues.push(id);
                view.apply(&self.patches[id]);
            }
        }
        view
    }

    /// The tree walk: the blocks beneath a true block, the indexed host children
    /// by the request's host only; then the true ones applied in file order.
    fn evaluate_tree<'a>(&'a self, tree: &Tree, facts: &Facts, state: &mut CondState) -> View<'a> {
        if state.serial != self.serial {
            *state = CondState::new(self);
        }
        for &id in &state.touched {
            state.res[id] = Res::Skip;
        }
        state.touched.clear();
        state.trues.clear();
        state.captured.clear();
        state.host.clear();
        state.ip.clear();
        state.res[0] = Res::True;
        state.touched.push(0);
        state.trues.push(0);
        self.walk(tree, 0, facts, state);
        state.trues.sort_unstable();
        let mut view = self.defaults.view();
        for &id in &state.trues {
            view.apply(&self.patches[id]);
        }
        view
    }

    fn walk(&self, tree: &Tree, parent: BlockId, facts: &Facts, state: &mut CondState) {
        let (from, to) = (tree.at[parent] as usize, tree.at[parent + 1] as usize);
        for &step in &tree.steps[from..to] {
            match step {
                Step::Block(id) => {
                    let id = id as usize;
                    let prev_open = self.blocks[id]
                        .prev()
                        .is_some_and(|q| state.res[q] != Res::False);
                    let r = if prev_open {
                        Res::Skip
                    } else {
                        self.test(id, facts, state)
                    };
                    self.decided(tree, id, r, facts, state);
                }
                Step::Chain(c) => {
                    let chain = &tree.chains[c as usize];
                    let hash = key_hash(host_key(state.lower_host(facts)).as_bytes());
                    // Candidates in file order: the first true one ends the chain.
                    let hit = chain
                        .keys
                        .get(hash)
                        .find(|&id| self.test(id, facts, state) == Res::True);
                    match hit {
                        Some(id) => self.decided(tree, id, Res::True, facts, state),
                        None => self.decided(tree, chain.last as usize, Res::False, facts, state),
                    }
                }
            }
        }
        let groups = &tree.groups;
        let first = groups.partition_point(|g| (g.parent as usize) < parent);
        for g in groups[first..]
            .iter()
            .take_while(|g| g.parent as usize == parent)
        {
            match g.kind {
                Kind::Host => {
                    let hash = key_hash(host_key(state.lower_host(facts)).as_bytes());
                    for id in g.keys.get(hash) {
                        let r = self.test(id, facts, state);
                        self.decided(tree, id, r, facts, state);
                    }
                }
                Kind::UrlPrefix => {
                    // The path's prefixes hashed in one pass (FNV is
                    // incremental), looked up at each pattern length.
                    let url = facts.url_path.as_bytes();
                    let (mut h, mut at) = (FNV_START, 0usize);
                    for &len in g.lens.iter().take_while(|&&l| l as usize <= url.len()) {
                        h = url[at..len as usize].iter().fold(h, |h, &c| fnv(h, c));
                        at = len as usize;
                        for id in g.keys.get(mix(h)) {
                            // (a hash shared across lengths must not test a block twice)
                            if !matches!(&self.blocks[id].test, Test::Prefix(p) if p.len() == len as usize)
                            {
                                continue;
                            }
                            let r = self.test(id, facts, state);
                            self.decided(tree, id, r, facts, state);
                        }
                    }
                }
            }
        }
    }

    fn decided(&self, tree: &Tree, id: BlockId, r: Res, facts: &Facts, state: &mut CondState) {
        state.res[id] = r;
        state.touched.push(id);
        if r == Res::True {
            state.trues.push(id);
            self.walk(tree, id, facts, state);
        }
    }

    /// The last true block (in file order) whose patch satisfies `sets`, e.g.
    /// `|p| p.url_rewrite().is_some()`: the block whose captures `%N` refers to.
    /// 0 (global) when no conditional block sets it.
    pub fn winning_block(&self, state: &CondState, sets: impl Fn(&Patch) -> bool) -> BlockId {
        state
            .trues
            .iter()
            .rev()
            .copied()
            .find(|&id| id != 0 && id < self.patches.len() && sets(&self.patches[id]))
            .unwrap_or(0)
    }

    fn test(&self, id: BlockId, f: &Facts, st: &mut CondState) -> Res {
        let b = &self.blocks[id];
        if let Test::Always = b.test {
            return Res::True;
        }
        let CondState {
            locs,
            subject,
            captured,
            host,
            ip,
            ..
        } = st;
        let text: &str = match b.subject {
            Subject::Host => lower_host(host, f),
            Subject::Url => f.url_path,
            Subject::Query => f.query,
            Subject::RemoteIp => {
                if ip.is_empty() {
                    let _ = write!(ip, "{}", canonical_ip(f.remote_ip));
                }
                ip
            }
            Subject::Scheme => f.scheme,
            Subject::Method => f.method,
            Subject::Header(h) => self
                .headers
                .get(h as usize)
                .and_then(|h| (f.header)(h))
                .unwrap_or(""),
            Subject::Socket => self.specs.get(f.listener).map(String::as_str).unwrap_or(""),
        };
        let hit = match &b.test {
            Test::Always => true,
            Test::Eq(p) => match b.subject {
                Subject::Host if !p.starts_with('/') => host_eq(text, p),
                _ => text == &**p,
            },
            Test::Prefix(p) => text.starts_with(&**p),
            Test::Suffix(p) => text.ends_with(&**p),
            Test::Cidr(net) => in_net(canonical_ip(f.remote_ip), net.0, net.1),
            Test::Socket(idx) => *idx == u32::try_from(f.listener).ok(),
            Test::Regex(r) => {
                let re = &self.regexes[*r as usize];
                match locs[*r as usize].as_mut() {
                    Some(l) => {
                        let m = re.captures_read(l, text.as_bytes());
                        if m && !b.negate {
                            let s = &mut subject[*r as usize];
                            s.clear();
                            s.push_str(text);
                            captured.push((id, *r));
                        }
                        m
                    }
                    None => re.is_match(text.as_bytes()),
                }
            }
        };
        if hit != b.negate {
            Res::True
        } else {
            Res::False
        }
    }
}

/// The index key of a host or a host pattern: lower case, up to a ':' (so that
/// [`host_eq`]'s `:port` allowance never separates a host from its pattern).
fn host_key(h: &str) -> &str {
    h.split(':').next().unwrap_or("")
}

/// The request's host in lower case, made once per evaluation.
fn lower_host<'s>(host: &'s mut String, f: &Facts) -> &'s str {
    if host.is_empty() && !f.host.is_empty() {
        host.push_str(f.host);
        host.make_ascii_lowercase();
    }
    host
}

impl Tree {
    /// None when no block has `index_min` indexable children of one kind, nor an
    /// else chain that starts with `index_min` host links.
    fn new(blocks: &[CBlock], index_min: usize) -> Option<Tree> {
        let n = blocks.len();
        // An `else` follows a block: that block keeps its place in the order.
        // (Equal conditions are one block, so a block may have two else branches:
        // `branching`; a chain passes only through blocks with one.)
        let mut next = vec![NONE; n];
        let mut branching = vec![false; n];
        for (id, b) in blocks.iter().enumerate() {
            if let Some(q) = b.prev().filter(|&q| q < n) {
                branching[q] |= next[q] != NONE;
                next[q] = id as u32;
            }
        }
        let parent_of = |b: &CBlock| b.parent().unwrap_or(0);
        let host_literal = |b: &CBlock| {
            !b.negate
                && matches!(b.subject, Subject::Host)
                && matches!(&b.test, Test::Eq(p) if !p.starts_with('/'))
        };
        let kind = |id: BlockId, b: &CBlock| -> Option<Kind> {
            if id == 0 || b.prev != NONE || next[id] != NONE || b.negate {
                return None;
            }
            match (&b.subject, &b.test) {
                _ if host_literal(b) => Some(Kind::Host),
                (Subject::Url, Test::Prefix(_)) => Some(Kind::UrlPrefix),
                _ => None,
            }
        };
        // Chains: from a first link (no prev, followed by an else), the run of
        // host links.
        let mut chain_of = vec![NONE; n]; // first link -> chain index
        let mut in_chain = vec![false; n];
        let mut chains = Vec::new();
        for (id, b) in blocks.iter().enumerate().skip(1) {
            if b.prev != NONE || next[id] == NONE || !host_literal(b) {
                continue;
            }
            let mut run = vec![id];
            let mut at = next[id];
            while at != NONE && !branching[run[run.len() - 1]] && host_literal(&blocks[at as usize])
            {
                run.push(at as usize);
                at = next[at as usize];
            }
            if run.len() < index_min.max(2) {
                continue;
            }
            let keys = run
                .iter()
                .map(|&l| (host_hash(&blocks[l].test), l as u32))
                .collect();
            for &l in &run {
                in_chain[l] = true;
            }
            chain_of[id] = chains.len() as u32;
            chains.push(Chain {
                last: *run.last().unwrap_or(&id) as u32,
                keys: Keys::new(keys),
            });
        }
        let mut count: HashMap<(BlockId, Kind), usize> = HashMap::new();
        for (id, b) in blocks.iter().enumerate() {
            if let Some(k) = kind(id, b) {
                *count.entry((parent_of(b), k)).or_default() += 1;
            }
        }
        if chains.is_empty() && !count.values().any(|&c| c >= index_min) {
            return None;
        }
        let mut steps: Vec<Vec<Step>> = vec![Vec::new(); n];
        let mut grouped: HashMap<(BlockId, Kind), Vec<(u64, u32)>> = HashMap::new();
        for (id, b) in blocks.iter().enumerate().skip(1) {
            let p = parent_of(b);
            if chain_of[id] != NONE {
                steps[p].push(Step::Chain(chain_of[id]));
                continue;
            }
            if in_chain[id] {
                continue;
            }
            match kind(id, b) {
                Some(k) if count[&(p, k)] >= index_min => {
                    let key = match &b.test {
                        Test::Prefix(pat) => key_hash(pat.as_bytes()),
                        t => host_hash(t),
                    };
                    grouped.entry((p, k)).or_default().push((key, id as u32));
                }
                _ => steps[p].push(Step::Block(id as u32)),
            }
        }
        let mut groups: Vec<Group> = grouped
            .into_iter()
            .map(|((p, kind), keys)| {
                let mut lens: Vec<u32> = match kind {
                    Kind::Host => Vec::new(),
                    Kind::UrlPrefix => keys
                        .iter()
                        .filter_map(|&(_, id)| match &blocks[id as usize].test {
                            Test::Prefix(pat) => Some(pat.len() as u32),
                            _ => None,
                        })
                        .collect(),
                };
                lens.sort_unstable();
                lens.dedup();
                Group {
                    parent: p as u32,
                    kind,
                    lens: lens.into_boxed_slice(),
                    keys: Keys::new(keys),
                }
            })
            .collect();
        groups.sort_by_key(|g| (g.parent, g.kind));
        let mut at = Vec::with_capacity(n + 1);
        let mut flat = Vec::new();
        for s in steps {
            at.push(flat.len() as u32);
            flat.extend(s);
        }
        at.push(flat.len() as u32);
        Some(Tree {
            at: at.into_boxed_slice(),
            steps: flat.into_boxed_slice(),
            groups: groups.into_boxed_slice(),
            chains: chains.into_boxed_slice(),
        })
    }
}

/// The index key of a host literal's test.
fn host_hash(t: &Test) -> u64 {
    match t {
        Test::Eq(p) => key_hash(host_key(&p.to_ascii_lowercase()).as_bytes()),
        _ => 0,
    }
}

/// lighttpd's host `==`: equal, or equal up to a `:port` on either side when the
/// lengths differ (case-insensitive; the pattern is lowercase).
fn host_eq(host: &str, pat: &str) -> bool {
    let (h, p) = (host.as_bytes(), pat.as_bytes());
    if h.is_empty() || h.len() == p.len() {
        return h.eq_ignore_ascii_case(p);
    }
    if h.len() > p.len() {
        h[p.len()] == b':' && h.len() - p.len() <= 6 && h[..p.len()].eq_ignore_ascii_case(p)
    } else {
        p[h.len()] == b':' && h.eq_ignore_ascii_case(&p[..h.len()])
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: Option<u8>) -> bool {
    let net = canonical_ip(net);
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let b = u32::from(bits.unwrap_or(32).min(32));
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let b = u32::from(bits.unwrap_or(128).min(128));
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The listener a `$SERVER["socket"] == "..."` / `!=` block names.
fn socket_index(config: &Config, id: BlockId, pattern: &str) -> Option<ListenerIndex> {
    if let Some(i) = config.listeners.iter().position(|l| l.block == Some(id)) {
        return Some(i);
    }
    if let Some(i) = config.listeners.iter().position(|l| l.spec == pattern) {
        return Some(i);
    }
    let addr: ListenAddr = crate::load::socket_addr(pattern, config.server.port, false).ok()?;
    config.listeners.iter().position(|l| l.addr == addr)
}

impl CondState {
    /// Scratch space sized for `compiled` (allocates once; reuse it per connection).
    pub fn new(compiled: &Compiled) -> CondState {
        let n = compiled.blocks.len();
        let mut locs: Vec<Option<Locs>> = compiled.regexes.iter().map(|_| None).collect();
        for b in &compiled.blocks {
            if let (Test::Regex(r), false) = (&b.test, b.negate) {
                locs[*r as usize] = Some(compiled.regexes[*r as usize].locations());
            }
        }
        CondState {
            serial: compiled.serial,
            res: vec![Res::Skip; n],
            trues: Vec::new(),
            touched: Vec::new(),
            subject: vec![String::new(); locs.len()],
            locs,
            captured: Vec::new(),
            host: String::new(),
            ip: String::new(),
        }
    }

    fn prepare(&mut self) {
        self.res.iter_mut().for_each(|r| *r = Res::Skip);
        self.trues.clear();
        self.captured.clear();
        self.host.clear();
        self.ip.clear();
    }

    /// The request's host in lower case (made once per evaluation).
    fn lower_host(&mut self, f: &Facts) -> &str {
        lower_host(&mut self.host, f)
    }

    /// How many blocks the last evaluation decided through the index (0 when
    /// the configuration has none and every block was tested in order): with an
    /// index, the request's own candidates and the blocks beneath true ones.
    pub fn decided(&self) -> usize {
        self.touched.len()
    }

    /// Did block `id` apply to the last evaluated request?
    pub fn is_true(&self, id: BlockId) -> bool {
        self.res.get(id) == Some(&Res::True)
    }

    /// The blocks that applied, in file order (0 first).
    pub fn matched(&self) -> impl Iterator<Item = BlockId> + '_ {
        self.trues.iter().copied()
    }

    /// `%n` (0..=9) of block `id`: the text of capture group `n` of its `=~` regex
    /// when the block matched; None when the block has no such capture (or when
    /// the group ends inside a multi-byte character: see [`Self::capture_bytes`]).
    pub fn capture(&self, id: BlockId, n: usize) -> Option<&str> {
        let (s, e) = self.capture_range(id, n)?;
        self.subject[self.slot(id)?].get(s..e)
    }

    /// `%n` as bytes: regexes match bytes, as lighttpd's do, so a group may cut a
    /// UTF-8 character.
    pub fn capture_bytes(&self, id: BlockId, n: usize) -> Option<&[u8]> {
        let (s, e) = self.capture_range(id, n)?;
        self.subject[self.slot(id)?].as_bytes().get(s..e)
    }

    fn slot(&self, id: BlockId) -> Option<usize> {
        let &(_, r) = self.captured.iter().find(|&&(b, _)| b == id)?;
        Some(r as usize)
    }

    fn capture_range(&self, id: BlockId, n: usize) -> Option<(usize, usize)> {
        let &(_, r) = self.captured.iter().find(|&&(b, _)| b == id)?;
        self.locs.get(r as usize)?.as_ref()?.get(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn host_port_rules() {
        assert!(host_eq("example.org", "example.org"));
        assert!(host_eq("example.org:8080", "example.org"));
        assert!(host_eq("EXAMPLE.org:80", "example.org"));
        assert!(!host_eq("example.org.evil", "example.org"));
        assert!(!host_eq("example.org:1234567", "example.org"));
        assert!(host_eq("example.org", "example.org:80"));
        assert!(!host_eq("example.org:81", "example.org:80"));
    }

    #[test]
    fn cidr_match() {
        let n: IpAddr = "10.0.0.0"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert!(in_net("10.1.2.3".parse().unwrap_or(n), n, Some(8)));
        assert!(!in_net("11.1.2.3".parse().unwrap_or(n), n, Some(8)));
        let mapped: IpAddr = "::ffff:10.9.9.9".parse().unwrap_or(n);
        assert!(in_net(canonical_ip(mapped), n, Some(8)));
    }

    #[test]
    fn pcre_patterns_compile() {
        for p in ["^/(?!admin)", "(?<=x)y", "(a)\\1", "a*+", "^/(.*?)/"] {
            assert!(compile_regex(p).is_ok(), "{p}");
        }
        let e = compile_regex("(?|(a)|(b))").expect_err("branch reset");
        assert!(
            e.0.contains("a PCRE feature") && e.0.contains("(?|(a)|(b))"),
            "{}",
            e.0
        );
        assert!(compile_regex("^/a\\++$").is_ok());
        assert!(compile_regex("[]+]+").is_ok());
        assert!(compile_regex("(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)").is_err());
        assert!(compile_regex("^/(a|b)$").is_ok());
    }
}
