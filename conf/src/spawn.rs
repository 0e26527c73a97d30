//! Gateway backends wickd starts itself: the hosts of fastcgi.server and
//! scgi.server that name a "bin-path", read as lighttpd's gw_backend reads them.
//! The gateway-spawner starts and supervises them ([`backends`]); the workers
//! connect to the same per-process addresses ([`unix_proc_path`],
//! [`tcp_proc_port`]); the master starts a spawner for them ([`any`]) and checks
//! at start what would make them fail ([`start_check`]).
//!
//! lighttpd's rules kept here: a host with bin-path runs `max-procs` processes
//! (default 4; `min-procs` above it is cut to it), process `i` listening on the
//! unix socket `"<socket>-<i>"` or on TCP port `port + i` (host default
//! 127.0.0.1, port default 80); the program is bin-path split on spaces and
//! tabs (for SCGI a bin-path with arguments runs as `/bin/sh -c "exec ..."`);
//! the same socket with the same bin-path in several blocks is one backend, with
//! another bin-path an error. wickd always runs `max-procs` processes, as
//! lighttpd does with server.max-worker above 0 (wickd's workers are
//! processes): `min-procs` below it, `max-load-per-proc` and `idle-timeout`
//! (lighttpd's adaptive spawning) draw a warning.

use crate::model::{Block, Config, Value};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// The two gateway keys whose hosts may name a bin-path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gateway {
    FastCgi,
    Scgi,
}

impl Gateway {
    pub fn key(self) -> &'static str {
        match self {
            Gateway::FastCgi => "fastcgi.server",
            Gateway::Scgi => "scgi.server",
        }
    }
    fn module(self) -> &'static str {
        match self {
            Gateway::FastCgi => "mod_fastcgi",
            Gateway::Scgi => "mod_scgi",
        }
    }
}

const GATEWAYS: [Gateway; 2] = [Gateway::FastCgi, Gateway::Scgi];

/// Where one process of a backend listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl Listen {
    /// For log lines: `unix:/run/php.socket-0`, `127.0.0.1:9000`.
    pub fn name(&self) -> String {
        match self {
            Listen::Unix(p) => format!("unix:{}", p.display()),
            Listen::Tcp(a) => a.to_string(),
        }
    }
}

/// Longest unix socket path (sun_path holds 108 bytes with the NUL).
pub const MAX_UNIX_PATH: usize = 107;

/// The socket of process `i` of a bin-path host on a unix socket: `"<socket>-<i>"`.
pub fn unix_proc_path(socket: &Path, i: u16) -> PathBuf {
    let mut s = socket.as_os_str().to_os_string();
    s.push(format!("-{i}"));
    PathBuf::from(s)
}

/// The port of process `i` of a bin-path host on TCP: `port + i` (None past 65535).
pub fn tcp_proc_port(port: u16, i: u16) -> Option<u16> {
    port.checked_add(i)
}

/// One backend to start: a bin-path host (or several hosts naming the same
/// socket and program).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub gateway: Gateway,
    /// `file:line` of the `*.server` setting, for messages.
    pub at: String,
    /// The block that sets it (for the identity it runs as: cgi.user there).
    pub block: usize,
    /// bin-path as written.
    pub bin_path: String,
    /// What is executed: bin-path split on spaces and tabs (SCGI with arguments:
    /// `/bin/sh -c "exec <bin-path>"`).
    pub argv: Vec<String>,
    /// The program bin-path names (its first word), checked at start.
    pub program: String,
    /// The configured address; process `i` listens on [`Backend::proc_listen`].
    pub listen: Listen,
    /// Processes to run (max-procs).
    pub procs: u16,
    /// bin-environment, in order.
    pub env: Vec<(String, String)>,
    /// bin-copy-environment: empty copies the whole environment (lighttpd's
    /// default), else only these variables.
    pub copy_env: Vec<String>,
    /// kill-signal (default SIGTERM, 15).
    pub kill_signal: i32,
    /// listen-backlog.
    pub backlog: i32,
    /// lighttpd's adaptive spawning options wickd does not act on, for the warning.
    pub adaptive: Option<String>,
}

impl Backend {
    /// Where process `i` listens.
    pub fn proc_listen(&self, i: u16) -> Option<Listen> {
        match &self.listen {
            Listen::Unix(p) => Some(Listen::Unix(unix_proc_path(p, i))),
            Listen::Tcp(a) => Some(Listen::Tcp(SocketAddr::new(
                a.ip(),
                tcp_proc_port(a.port(), i)?,
            ))),
        }
    }

    /// Every process's address.
    pub fn addrs(&self) -> Vec<Listen> {
        (0..self.procs)
            .filter_map(|i| self.proc_listen(i))
            .collect()
    }
}

/// A number option of a host (lighttpd's T_CONFIG_SHORT: an integer, or a string
/// holding one).
fn number(v: &Value, key: &str) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{key}: expected a number, got \"{s}\"")),
        Value::Array(_) => Err(format!("{key}: expected a number, got a list")),
    }
}

fn text(v: &Value, key: &str) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        Value::Array(_) => Err(format!("{key}: expected a string, got a list")),
    }
}

fn opt<'a>(opts: &'a [(Option<String>, Value)], key: &str) -> Option<&'a Value> {
    opts.iter()
        .rev()
        .find(|(k, _)| k.as_deref().is_some_and(|k| k.eq_ignore_ascii_case(key)))
        .map(|(_, v)| v)
}

/// The bin-path of a host's options, None when unset or blank (as lighttpd).
pub fn bin_path_of(opts: &[(Option<String>, Value)]) -> Result<Option<String>, String> {
    match opt(opts, "bin-path") {
        None => Ok(None),
        Some(v) => Ok(Some(text(v, "bin-path")?).filter(|s| !s.trim().is_empty())),
    }
}

/// Processes a bin-path host runs: max-procs (default 4), at least 1; and the
/// note for lighttpd's adaptive spawning when min-procs is below it.
fn procs_and_note(opts: &[(Option<String>, Value)]) -> Result<(u16, Option<String>), String> {
    let get = |key: &str, default: i64| -> Result<i64, String> {
        opt(opts, key).map_or(Ok(default), |v| number(v, key))
    };
    let max = get("max-procs", 4)?;
    let min = get("min-procs", 4)?.min(max);
    let max = u16::try_from(max)
        .ok()
        .filter(|&m| m > 0)
        .ok_or_else(|| format!("max-procs {max}: expected 1..65535 processes"))?;
    let note = (min < i64::from(max)).then(|| {
        let mut n = format!("min-procs {min} below max-procs {max}");
        for k in ["max-load-per-proc", "idle-timeout"] {
            if opt(opts, k).is_some() {
                n.push_str(&format!(", {k}"));
            }
        }
        n
    });
    Ok((max, note))
}

/// Processes a host runs: 0 without bin-path, else max-procs (checked).
pub fn procs_of(opts: &[(Option<String>, Value)]) -> Result<u16, String> {
    if bin_path_of(opts)?.is_none() {
        return Ok(0);
    }
    procs_and_note(opts).map(|(n, _)| n)
}

/// Split bin-path into argv as lighttpd does: on each space and tab (empty words
/// kept, as lighttpd keeps them).
fn split_bin_path(bin: &str, gateway: Gateway) -> Vec<String> {
    let words: Vec<String> = bin.split([' ', '\t']).map(str::to_string).collect();
    if gateway == Gateway::Scgi && words.len() != 1 {
        // lighttpd's mod_scgi runs a command with arguments through the shell.
        return vec!["/bin/sh".into(), "-c".into(), format!("exec {bin}")];
    }
    words
}

/// The address a bin-path host listens on, as lighttpd reads socket/host/port.
fn listen_of(opts: &[(Option<String>, Value)]) -> Result<Listen, String> {
    let socket = opt(opts, "socket")
        .map(|v| text(v, "socket"))
        .transpose()?
        .filter(|s| !s.trim().is_empty());
    let host = opt(opts, "host")
        .map(|v| text(v, "host"))
        .transpose()?
        .filter(|s| !s.trim().is_empty());
    let port = opt(opts, "port").map(|v| number(v, "port")).transpose()?;
    if socket.is_some() && (host.is_some() || port.is_some_and(|p| p != 0)) {
        return Err("either host/port or socket have to be set".into());
    }
    let socket = socket.or_else(|| host.clone().filter(|h| h.starts_with('/')));
    if let Some(s) = socket {
        return Ok(Listen::Unix(PathBuf::from(s)));
    }
    let port = match port {
        None | Some(0) => 80,
        Some(p) => u16::try_from(p).map_err(|_| format!("port {p}: expected 1..65535"))?,
    };
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| format!("host \"{host}\": expected an IP address"))?;
    Ok(Listen::Tcp(SocketAddr::new(ip, port)))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|(_, v)| text(v, key))
            .collect::<Result<_, _>>(),
        v => Ok(vec![text(v, key)?]),
    }
}

fn pairs(v: &Value, key: &str) -> Result<Vec<(String, String)>, String> {
    let Value::Array(items) = v else {
        return Err(format!("{key}: expected ( \"NAME\" => \"value\", ... )"));
    };
    items
        .iter()
        .map(|(k, v)| match k {
            Some(k) if !k.is_empty() => Ok((k.clone(), text(v, key)?)),
            _ => Err(format!("{key}: expected ( \"NAME\" => \"value\", ... )")),
        })
        .collect()
}

fn backend(
    gateway: Gateway,
    opts: &[(Option<String>, Value)],
    bin_path: String,
) -> Result<Backend, String> {
    let (procs, adaptive) = procs_and_note(opts)?;
    let listen = listen_of(opts)?;
    if let Listen::Unix(p) = &listen {
        let longest = unix_proc_path(p, procs - 1);
        if longest.as_os_str().len() > MAX_UNIX_PATH {
            return Err(format!(
                "unixsocket is too long: \"{}\" (with the process number, at most {MAX_UNIX_PATH} bytes)",
                p.display()
            ));
        }
    }
    if let Listen::Tcp(a) = &listen {
        if tcp_proc_port(a.port(), procs - 1).is_none() {
            return Err(format!(
                "port {} with max-procs {procs} runs past port 65535",
                a.port()
            ));
        }
    }
    let kill_signal = match opt(opts, "kill-signal") {
        None => 15,
        Some(v) => {
            let n = number(v, "kill-signal")?;
            i32::try_from(n)
                .ok()
                .filter(|s| (1..=64).contains(s))
                .ok_or_else(|| format!("kill-signal {n}: expected a signal number"))?
        }
    };
    let backlog = match opt(opts, "listen-backlog") {
        None => DEFAULT_BACKLOG,
        Some(v) => {
            let n = number(v, "listen-backlog")?;
            i32::try_from(n.max(0)).unwrap_or(i32::MAX)
        }
    };
    let env = opt(opts, "bin-environment")
        .map(|v| pairs(v, "bin-environment"))
        .transpose()?
        .unwrap_or_default();
    let copy_env = opt(opts, "bin-copy-environment")
        .map(|v| strings(v, "bin-copy-environment"))
        .transpose()?
        .unwrap_or_default();
    for (k, v) in &env {
        if k.contains(['=', '\0']) || v.contains('\0') {
            return Err(format!("bin-environment: \"{k}\": not a variable name"));
        }
    }
    let argv = split_bin_path(&bin_path, gateway);
    let program = bin_path.split([' ', '\t']).next().unwrap_or("").to_string();
    Ok(Backend {
        gateway,
        at: String::new(),
        block: 0,
        bin_path,
        argv,
        program,
        listen,
        procs,
        env,
        copy_env,
        kill_signal,
        backlog,
        adaptive,
    })
}

/// lighttpd's default listen-backlog: SOMAXCONN when above 1024 (Linux: 4096
/// since 5.4).
const DEFAULT_BACKLOG: i32 = 4096;

/// Every host's options of a `*.server` value, in the shapes lighttpd accepts:
/// `( ".php" => ( ( opts ), .. ) )`, `( "/app" => ( "name" => ( opts ) ) )` and
/// `( ".php" => ( opts ) )` (one unnamed host).
fn hosts(v: &Value) -> Vec<&[(Option<String>, Value)]> {
    let mut out = Vec::new();
    let Value::Array(items) = v else { return out };
    for (_, hosts) in items {
        let Value::Array(list) = hosts else { continue };
        let direct = !list.is_empty()
            && list
                .iter()
                .all(|(k, v)| k.is_some() && !matches!(v, Value::Array(_)));
        if direct {
            out.push(list.as_slice());
        } else {
            for (_, h) in list {
                if let Value::Array(opts) = h {
                    out.push(opts.as_slice());
                }
            }
        }
    }
    out
}

/// Does any block start a backend (a bin-path host of a module in force)?
pub fn any(cfg: &Config) -> bool {
    let modules = cfg.server.effective_modules();
    GATEWAYS.iter().any(|g| {
        crate::keys::module_loaded(g.module(), &modules)
            && cfg
                .blocks
                .iter()
                .flat_map(|b| &b.settings)
                .filter(|s| s.key.eq_ignore_ascii_case(g.key()))
                .flat_map(|s| hosts(&s.value))
                .any(|h| bin_path_of(h).ok().flatten().is_some())
    })
}

/// Every backend to start, of every block, once each; errors name file:line.
pub fn backends(cfg: &Config) -> Result<Vec<Backend>, String> {
    backends_in(&cfg.blocks, &cfg.server.effective_modules())
}

/// [`backends`] over the blocks, with the modules in force.
pub fn backends_in(blocks: &[Block], modules: &[String]) -> Result<Vec<Backend>, String> {
    let mut out: Vec<Backend> = Vec::new();
    for (bi, b) in blocks.iter().enumerate() {
        for g in GATEWAYS {
            if !crate::keys::module_loaded(g.module(), modules) {
                continue;
            }
            // The value in force in this block: its last setting of the key.
            let Some(s) = b
                .settings
                .iter()
                .rev()
                .find(|s| s.key.eq_ignore_ascii_case(g.key()))
            else {
                continue;
            };
            let at = format!("{}:{}", s.loc.file, s.loc.line);
            for opts in hosts(&s.value) {
                let Some(bin) = bin_path_of(opts).map_err(|e| format!("{at}: {}: {e}", g.key()))?
                else {
                    continue;
                };
                let mut be =
                    backend(g, opts, bin).map_err(|e| format!("{at}: {}: {e}", g.key()))?;
                be.at = at.clone();
                be.block = bi;
                if let Some(same) = out.iter().find(|o| o.listen == be.listen) {
                    if same.bin_path != be.bin_path {
                        return Err(format!(
                            "{at}: {}: duplicate socket {} (bin-path \"{}\" at {} listens there)",
                            g.key(),
                            be.listen.name(),
                            same.bin_path,
                            same.at
                        ));
                    }
                    continue;
                }
                let mine = be.addrs();
                if let Some(o) = out
                    .iter()
                    .find(|o| o.addrs().iter().any(|a| mine.contains(a)))
                {
                    return Err(format!(
                        "{at}: {}: the processes of \"{}\" would listen where those of \"{}\" ({}) do",
                        g.key(),
                        be.bin_path,
                        o.bin_path,
                        o.at
                    ));
                }
                out.push(be);
            }
        }
    }
    Ok(out)
}

/// Warnings for options wickd does not act on (lighttpd's adaptive spawning).
pub fn warnings(blocks: &[Block], modules: &[String]) -> Vec<String> {
    let Ok(list) = backends_in(blocks, modules) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|b| {
            let note = b.adaptive.as_ref()?;
            Some(format!(
                "WARNING: {}: {} \"bin-path\" => \"{}\": {note}: not acted on; wickd runs max-procs ({}) processes from the start and keeps them, as lighttpd does with server.max-worker above 0",
                b.at,
                b.gateway.key(),
                b.bin_path,
                b.procs
            ))
        })
        .collect()
}

/// lighttpd's check of a bin-path program: a regular file with an x bit.
fn program_ok(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(program).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// lighttpd's words for a program that will not start (its -tt prints them and
/// goes on; the start fails).
fn invalid_program(b: &Backend) -> String {
    format!(
        "{}: {}: invalid \"bin-path\" => \"{}\" (check that file exists, is regular file, and is executable by wickd)",
        b.at,
        b.gateway.key(),
        b.bin_path
    )
}

/// What makes a start fail, checked before anything is started (start-up and
/// graceful restart): a program that is not an executable file, a unix socket
/// whose directory does not exist, server.chroot (the spawner runs outside it).
pub fn start_check(cfg: &Config) -> Result<(), String> {
    let list = backends(cfg)?;
    let chroot = cfg.server.chroot.as_deref().filter(|c| !c.is_empty());
    for b in &list {
        if let Some(c) = chroot {
            return Err(format!(
                "{}: {} \"bin-path\" with server.chroot \"{c}\": wickd starts backends outside the chroot, where the workers would not reach them; start \"{}\" by other means",
                b.at,
                b.gateway.key(),
                b.bin_path
            ));
        }
        if !program_ok(&b.program) {
            return Err(invalid_program(b));
        }
        if let Some(e) = socket_dir_problem(b) {
            return Err(e);
        }
    }
    Ok(())
}

fn socket_dir_problem(b: &Backend) -> Option<String> {
    let Listen::Unix(p) = &b.listen else {
        return None;
    };
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "{}: {} socket \"{}\": {} is not a directory",
            b.at,
            b.gateway.key(),
            p.display(),
            dir.display()
        )),
        Err(e) => Some(format!(
            "{}: {} socket \"{}\": directory {}: {e}",
            b.at,
            b.gateway.key(),
            p.display(),
            dir.display()
        )),
    }
}

/// `wickd -tt`'s lines: lighttpd's "invalid bin-path" error (its -tt prints it
/// and succeeds), and a socket directory that is missing (the start fails;
/// lighttpd's -tt does not look).
pub fn preflight_notes(cfg: &Config) -> Vec<String> {
    let Ok(list) = backends(cfg) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in &list {
        if !program_ok(&b.program) {
            out.push(invalid_program(b));
        }
        if let Some(e) = socket_dir_problem(b) {
            out.push(format!(
                "WARNING: {e}; start-up will fail binding it (lighttpd's -tt does not check it either)"
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg_of(key: &str, v: Value, module: &str) -> (Vec<Block>, Vec<String>) {
        let block = Block {
            parent: None,
            cond: None,
            else_of: None,
            settings: vec![crate::model::Setting {
                key: key.into(),
                value: v,
                loc: crate::model::Loc {
                    file: "t.conf".into(),
                    line: 3,
                    col: 1,
                },
            }],
            loc: Default::default(),
        };
        (vec![block], vec![module.to_string()])
    }
    fn host_opts(items: Vec<(&str, Value)>) -> Vec<(Option<String>, Value)> {
        items
            .into_iter()
            .map(|(k, v)| (Some(k.to_string()), v))
            .collect()
    }

    #[test]
    fn debian_php_host() {
        let v = Value::pairs(vec![(
            ".php",
            Value::list(vec![Value::pairs(vec![
                ("bin-path", Value::text("/usr/bin/php-cgi")),
                ("socket", Value::text("/run/lighttpd/php.socket")),
                ("max-procs", Value::Int(1)),
                (
                    "bin-environment",
                    Value::pairs(vec![("PHP_FCGI_CHILDREN", Value::text("4"))]),
                ),
                (
                    "bin-copy-environment",
                    Value::list(vec![Value::text("PATH"), Value::text("USER")]),
                ),
            ])]),
        )]);
        let (blocks, m) = cfg_of("fastcgi.server", v, "mod_fastcgi");
        let b = backends_in(&blocks, &m).expect("ok");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].procs, 1);
        assert_eq!(
            b[0].addrs(),
            vec![Listen::Unix("/run/lighttpd/php.socket-0".into())]
        );
        assert_eq!(b[0].argv, vec!["/usr/bin/php-cgi"]);
        assert_eq!(b[0].copy_env, vec!["PATH", "USER"]);
        assert_eq!(b[0].kill_signal, 15);
        assert_eq!(b[0].at, "t.conf:3");
        assert!(b[0].adaptive.is_none());
        // Without the module nothing is started.
        let (blocks, _) = cfg_of("fastcgi.server", Value::Int(0), "mod_fastcgi");
        assert!(backends_in(&blocks, &[]).expect("ok").is_empty());
    }

    #[test]
    fn procs_ports_and_defaults() {
        let h = host_opts(vec![
            ("bin-path", Value::text("/bin/x a  b")),
            ("port", Value::Int(9000)),
        ]);
        let b = backend(Gateway::FastCgi, &h, "/bin/x a  b".into()).expect("ok");
        assert_eq!(b.procs, 4, "lighttpd's default max-procs");
        assert_eq!(b.argv, vec!["/bin/x", "a", "", "b"]);
        assert_eq!(b.program, "/bin/x");
        let ports: Vec<_> = b.addrs().iter().map(Listen::name).collect();
        assert_eq!(
            ports,
            vec![
                "127.0.0.1:9000",
                "127.0.0.1:9001",
                "127.0.0.1:9002",
                "127.0.0.1:9003"
            ]
        );
        let h = host_opts(vec![("bin-path", Value::text("/bin/x"))]);
        let b = backend(Gateway::FastCgi, &h, "/bin/x".into()).expect("ok");
        assert_eq!(b.listen, Listen::Tcp("127.0.0.1:80".parse().expect("addr")));
        // SCGI with arguments: through the shell, as lighttpd.
        let b = backend(Gateway::Scgi, &h, "/bin/x --y".into()).expect("ok");
        assert_eq!(b.argv, vec!["/bin/sh", "-c", "exec /bin/x --y"]);
        // min-procs below max-procs: lighttpd's adaptive spawning, warned about.
        let h = host_opts(vec![
            ("bin-path", Value::text("/bin/x")),
            ("socket", Value::text("/tmp/s")),
            ("min-procs", Value::Int(1)),
            ("max-procs", Value::text("3")),
            ("idle-timeout", Value::Int(20)),
        ]);
        let b = backend(Gateway::FastCgi, &h, "/bin/x".into()).expect("ok");
        assert_eq!(b.procs, 3);
        let note = b.adaptive.expect("note");
        assert!(
            note.contains("min-procs 1") && note.contains("idle-timeout"),
            "{note}"
        );
        assert_eq!(procs_of(&h), Ok(3));
        assert_eq!(
            procs_of(&host_opts(vec![("socket", Value::text("/x"))])),
            Ok(0)
        );
    }

    #[test]
    fn refusals() {
        let bad = |items: Vec<(&str, Value)>| {
            let h = host_opts(items);
            backend(Gateway::FastCgi, &h, "/bin/x".into()).expect_err("refused")
        };
        assert!(
            bad(vec![("socket", Value::text("/a")), ("port", Value::Int(1))]).contains("either")
        );
        assert!(bad(vec![("max-procs", Value::Int(0))]).contains("max-procs"));
        assert!(bad(vec![("max-procs", Value::text("many"))]).contains("max-procs"));
        assert!(bad(vec![("kill-signal", Value::Int(99))]).contains("kill-signal"));
        assert!(bad(vec![
            ("host", Value::text("localhost")),
            ("port", Value::Int(1))
        ])
        .contains("IP"));
        assert!(bad(vec![(
            "socket",
            Value::text(&format!("/{}", "x".repeat(106)))
        )])
        .contains("too long"));
        assert!(bad(vec![
            ("port", Value::Int(65535)),
            ("max-procs", Value::Int(2))
        ])
        .contains("65535"));
        // The same socket with two programs.
        let two = Value::pairs(vec![
            (
                ".a",
                Value::list(vec![Value::pairs(vec![
                    ("bin-path", Value::text("/bin/a")),
                    ("socket", Value::text("/s")),
                ])]),
            ),
            (
                ".b",
                Value::list(vec![Value::pairs(vec![
                    ("bin-path", Value::text("/bin/b")),
                    ("socket", Value::text("/s")),
                ])]),
            ),
        ]);
        let (blocks, m) = cfg_of("fastcgi.server", two, "mod_fastcgi");
        let e = backends_in(&blocks, &m).expect_err("duplicate");
        assert!(
            e.contains("t.conf:3") && e.contains("duplicate socket"),
            "{e}"
        );
        // The same socket and program twice: one backend.
        let same = Value::pairs(vec![
            (
                ".a",
                Value::list(vec![Value::pairs(vec![
                    ("bin-path", Value::text("/bin/a")),
                    ("socket", Value::text("/s")),
                ])]),
            ),
            (
                ".b",
                Value::list(vec![Value::pairs(vec![
                    ("bin-path", Value::text("/bin/a")),
                    ("socket", Value::text("/s")),
                ])]),
            ),
        ]);
        let (blocks, m) = cfg_of("fastcgi.server", same, "mod_fastcgi");
        assert_eq!(backends_in(&blocks, &m).expect("ok").len(), 1);
        // Overlapping port ranges.
        let overlap = Value::pairs(vec![(
            ".a",
            Value::list(vec![
                Value::pairs(vec![
                    ("bin-path", Value::text("/bin/a")),
                    ("port", Value::Int(9000)),
                ]),
                Value::pairs(vec![
                    ("bin-path", Value::text("/bin/b")),
                    ("port", Value::Int(9002)),
                ]),
            ]),
        )]);
        let (blocks, m) = cfg_of("fastcgi.server", overlap, "mod_fastcgi");
        assert!(backends_in(&blocks, &m).is_err());
    }
}
