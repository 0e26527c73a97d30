//! A `fastcgi.server` (or scgi/proxy) tree as lighttpd reads it:
//! `( ".php" => ( ( "host" => "127.0.0.1", "port" => 9000 ), .. ),
//!    "/app" => ( "name" => ( "socket" => "/run/app.sock", .. ) ) )`:
//! each key is a file suffix or, starting with '/', a URL prefix; its value a list
//! of hosts, each a list of options, unnamed or named.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use wick_conf::Value;

/// Where a backend listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// One backend and its per-host options.
#[derive(Clone, Debug)]
pub struct Host {
    /// For log lines: `127.0.0.1:9000` or `unix:/run/php.sock`.
    pub name: String,
    pub addr: Addr,
    /// check-local (default on): the file must exist under the document root.
    pub check_local: bool,
    /// docroot: DOCUMENT_ROOT and SCRIPT_FILENAME's base instead of the request's.
    pub docroot: String,
    /// strip-request-uri: a prefix cut from REQUEST_URI.
    pub strip_request_uri: String,
    /// fix-root-scriptname: a "/" prefix gives an empty SCRIPT_NAME and the whole
    /// path as PATH_INFO.
    pub fix_root_scriptname: bool,
    /// broken-scriptfilename: SCRIPT_FILENAME with PATH_INFO appended (PHP's
    /// cgi.fix_pathinfo).
    pub broken_scriptfilename: bool,
    pub xsendfile: bool,
    pub xsendfile_docroot: Vec<String>,
    /// Seconds; 0: no limit.
    pub connect_timeout: u64,
    pub read_timeout: u64,
    pub write_timeout: u64,
    /// Seconds a host is skipped after a failed connect.
    pub disable_time: u64,
    /// bin-path: the program the gateway-spawner runs for this host
    /// (`wick_conf::spawn`); this host is then one of its processes.
    pub bin_path: String,
    /// mode "authorizer": an access check asked before the request is served.
    pub authorizer: bool,
}

/// One key of the tree and the hosts that serve it (indexes into `Table::hosts`).
#[derive(Clone, Debug)]
pub struct Ext {
    pub key: String,
    pub hosts: Vec<usize>,
    /// Its hosts are authorizers (lighttpd keeps them in a list of their own,
    /// searched first; a key with hosts of both modes is two `Ext`s).
    pub authorizer: bool,
}

impl Ext {
    /// A URL prefix ("/app") rather than a file suffix (".php").
    pub fn is_prefix(&self) -> bool {
        self.key.starts_with('/')
    }
}

/// A parsed `*.server` value.
#[derive(Clone, Debug, Default)]
pub struct Table {
    pub exts: Vec<Ext>,
    pub hosts: Vec<Host>,
}

/// Options lighttpd's gw_backend knows that change nothing for the worker: those
/// of a bin-path backend (the gateway-spawner acts on them, `wick_conf::spawn`,
/// which also checks them) and tuning ones: accepted.
const SPAWN_OPTIONS: &[&str] = &[
    "bin-environment",
    "bin-copy-environment",
    "max-procs",
    "min-procs",
    "max-load-per-proc",
    "idle-timeout",
    "kill-signal",
    "listen-backlog",
    "tcp-fin-propagate",
    "allow-x-send-file",
    "upgrade",
];

/// Parse a tree; `what` names the key for errors ("fastcgi.server").
pub fn parse(v: &Value, what: &str) -> Result<Table, String> {
    let mut t = Table::default();
    let Value::Array(items) = v else {
        return Err(format!(
            "{what}: expected a list of \"suffix\" => ( hosts )"
        ));
    };
    for (key, hosts) in items {
        // "" is a suffix every path has (lighttpd: proxy.server = ( "" => ... )).
        let Some(key) = key.as_deref() else {
            return Err(format!(
                "{what}: every entry needs a key (\".php\" => ... or \"/prefix\" => ...)"
            ));
        };
        let Value::Array(list) = hosts else {
            return Err(format!("{what}: \"{key}\": expected a list of hosts"));
        };
        // `( "host" => .., "port" => .. )` directly: one unnamed host.
        let direct = list
            .iter()
            .all(|(k, v)| k.is_some() && !matches!(v, Value::Array(_)));
        let mut ext = Ext {
            key: key.to_string(),
            hosts: Vec::new(),
            authorizer: false,
        };
        if direct && !list.is_empty() {
            push_procs(&mut t, &mut ext, host(list, what, key)?, list, what, key)?;
        } else {
            for (_, h) in list {
                let Value::Array(opts) = h else {
                    return Err(format!(
                        "{what}: \"{key}\": a host must be a list of options"
                    ));
                };
                push_procs(&mut t, &mut ext, host(opts, what, key)?, opts, what, key)?;
            }
        }
        if ext.hosts.is_empty() {
            return Err(format!("{what}: \"{key}\": no host"));
        }
        // Authorizers and responders of one key: one `Ext` for each mode.
        let (auth, resp): (Vec<usize>, Vec<usize>) =
            ext.hosts.iter().partition(|&&h| t.hosts[h].authorizer);
        if !auth.is_empty() {
            if what != "fastcgi.server" {
                // SCGI has no role to say that no body follows: its backend
                // would wait for the CONTENT_LENGTH bytes.
                return Err(format!(
                    "{what}: \"{key}\": mode \"authorizer\" is FastCGI's (fastcgi.server)"
                ));
            }
            t.exts.push(Ext {
                key: ext.key.clone(),
                hosts: auth,
                authorizer: true,
            });
        }
        if !resp.is_empty() {
            ext.hosts = resp;
            t.exts.push(ext);
        }
    }
    Ok(t)
}

/// Add a host to the table and to `ext`: a bin-path host as its processes, one
/// host each on the address the gateway-spawner gives process i ("-i" after
/// the socket path, port + i).
fn push_procs(
    t: &mut Table,
    ext: &mut Ext,
    h: Host,
    opts: &[(Option<String>, Value)],
    what: &str,
    key: &str,
) -> Result<(), String> {
    let procs = wick_conf::spawn::procs_of(opts).map_err(|e| format!("{what}: \"{key}\": {e}"))?;
    if procs == 0 {
        ext.hosts.push(t.hosts.len());
        t.hosts.push(h);
        return Ok(());
    }
    for i in 0..procs {
        let mut p = h.clone();
        p.addr = match &h.addr {
            Addr::Unix(path) => Addr::Unix(wick_conf::spawn::unix_proc_path(path, i)),
            Addr::Tcp(a) => {
                let port = wick_conf::spawn::tcp_proc_port(a.port(), i)
                    .ok_or_else(|| format!("{what}: \"{key}\": port past 65535"))?;
                Addr::Tcp(SocketAddr::new(a.ip(), port))
            }
        };
        p.name = match &p.addr {
            Addr::Unix(path) => format!("unix:{}", path.display()),
            Addr::Tcp(a) => a.to_string(),
        };
        ext.hosts.push(t.hosts.len());
        t.hosts.push(p);
    }
    Ok(())
}

/// `parse` for mod_proxy, whose hosts may carry options gw_backend does not
/// know (lighttpd accepts them without a word; configs carry some from other
/// servers): those are left out (support.rs warns of them).
pub fn parse_lenient(v: &Value, what: &str) -> Result<Table, String> {
    parse(&known_options(v), what)
}

/// `v` without the keyed scalar entries that are not host options (ext keys and
/// named hosts have lists as values, options scalars).
fn known_options(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|(k, v)| match (k, v) {
                    (Some(k), Value::Str(_) | Value::Int(_)) => wick_conf::keys::GW_HOST_OPTIONS
                        .iter()
                        .any(|o| o.eq_ignore_ascii_case(k)),
                    _ => true,
                })
                .map(|(k, v)| (k.clone(), known_options(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn host(opts: &[(Option<String>, Value)], what: &str, key: &str) -> Result<Host, String> {
    let err = |m: String| format!("{what}: \"{key}\": {m}");
    let mut h = Host {
        name: String::new(),
        addr: Addr::Unix(PathBuf::new()),
        check_local: true,
        docroot: String::new(),
        strip_request_uri: String::new(),
        fix_root_scriptname: false,
        broken_scriptfilename: false,
        xsendfile: false,
        xsendfile_docroot: Vec::new(),
        connect_timeout: 8,
        read_timeout: 0,
        write_timeout: 0,
        disable_time: 1,
        bin_path: String::new(),
        authorizer: false,
    };
    let (mut host, mut port, mut socket) = (String::new(), None::<u16>, String::new());
    for (k, v) in opts {
        let k = k.as_deref().unwrap_or("").to_ascii_lowercase();
        let s = || match v {
            Value::Str(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            Value::Array(_) => Err(err(format!("{k}: expected a value, not a list"))),
        };
        let b = || wick_conf::options::parse_bool(v).map_err(|e| err(format!("{k}: {e}")));
        let n = || -> Result<u64, String> {
            s()?.trim()
                .parse::<u64>()
                .map_err(|_| err(format!("{k}: expected a number of seconds")))
        };
        match k.as_str() {
            "host" => host = s()?,
            "port" => {
                port = Some(
                    s()?.trim()
                        .parse::<u16>()
                        .map_err(|_| err("port: expected 1..65535".into()))?,
                )
            }
            "socket" => socket = s()?,
            "bin-path" => h.bin_path = s()?,
            "mode" => match s()?.as_str() {
                "responder" => h.authorizer = false,
                "authorizer" => h.authorizer = true,
                m => {
                    return Err(err(format!(
                        "mode \"{m}\": expected responder or authorizer"
                    )))
                }
            },
            "check-local" => h.check_local = b()?,
            "docroot" => h.docroot = s()?.trim_end_matches('/').to_string(),
            "strip-request-uri" => h.strip_request_uri = s()?,
            "fix-root-scriptname" => h.fix_root_scriptname = b()?,
            "broken-scriptfilename" => h.broken_scriptfilename = b()?,
            "x-sendfile" => h.xsendfile = b()?,
            "x-sendfile-docroot" => {
                h.xsendfile_docroot = <Vec<String> as wick_conf::options::FromValue>::from_value(v)
                    .map_err(|e| err(format!("{k}: {e}")))?
            }
            "connect-timeout" => h.connect_timeout = n()?,
            "read-timeout" => h.read_timeout = n()?,
            "write-timeout" => h.write_timeout = n()?,
            "disable-time" => h.disable_time = n()?,
            o if SPAWN_OPTIONS.contains(&o) => {}
            o => return Err(err(format!("unknown option \"{o}\""))),
        }
    }
    // lighttpd's gw_backend: a socket, or a host and port, not both; a TCP host
    // without a port is on 80; without a host, 127.0.0.1.
    if !socket.is_empty() && (!host.is_empty() || port.is_some()) {
        return Err(err("either host/port or socket have to be set".into()));
    }
    if !socket.is_empty() {
        h.name = format!("unix:{socket}");
        h.addr = Addr::Unix(PathBuf::from(socket));
    } else if host.starts_with('/') {
        h.name = format!("unix:{host}");
        h.addr = Addr::Unix(PathBuf::from(host));
    } else {
        // (wickd also takes a port alone as 127.0.0.1, where lighttpd wants a host.)
        if host.is_empty() && port.is_none() && h.bin_path.trim().is_empty() {
            return Err(err(
                "needs \"socket\", or \"host\" (and \"port\", 80 if not given), or \"bin-path\""
                    .into(),
            ));
        }
        let port = port.unwrap_or(80);
        let host = if host.is_empty() {
            "127.0.0.1".to_string()
        } else {
            host
        };
        let ip: IpAddr = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| err(format!("host \"{host}\": expected an IP address")))?;
        let sa = SocketAddr::new(ip, port);
        h.name = sa.to_string();
        h.addr = Addr::Tcp(sa);
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lighttpd_forms() {
        let v = Value::pairs(vec![
            (
                ".php",
                Value::list(vec![
                    Value::pairs(vec![
                        ("host", Value::text("127.0.0.1")),
                        ("port", Value::Int(9000)),
                    ]),
                    Value::pairs(vec![
                        ("host", Value::text("::1")),
                        ("port", Value::text("9001")),
                    ]),
                ]),
            ),
            (
                "/app",
                Value::pairs(vec![(
                    "name",
                    Value::pairs(vec![
                        ("socket", Value::text("/run/php.sock")),
                        ("check-local", Value::text("disable")),
                    ]),
                )]),
            ),
            ("/direct", Value::pairs(vec![("port", Value::Int(9002))])),
        ]);
        let t = parse(&v, "fastcgi.server").expect("ok");
        assert_eq!(t.exts.len(), 3);
        assert_eq!(t.exts[0].hosts, vec![0, 1]);
        assert_eq!(t.hosts[0].name, "127.0.0.1:9000");
        assert_eq!(t.hosts[1].name, "[::1]:9001");
        assert!(t.exts[1].is_prefix());
        assert_eq!(t.hosts[2].addr, Addr::Unix("/run/php.sock".into()));
        assert!(!t.hosts[2].check_local);
        assert!(t.hosts[0].check_local);
        assert_eq!(t.hosts[3].name, "127.0.0.1:9002");
    }

    /// A bin-path host is its processes, each on its own address.
    #[test]
    fn bin_path_hosts_are_their_processes() {
        let v = Value::pairs(vec![(
            ".php",
            Value::list(vec![
                Value::pairs(vec![
                    ("bin-path", Value::text("/usr/bin/php-cgi")),
                    ("socket", Value::text("/run/php.socket")),
                    ("max-procs", Value::Int(2)),
                ]),
                Value::pairs(vec![
                    ("bin-path", Value::text("/bin/b")),
                    ("max-procs", Value::Int(1)),
                ]),
            ]),
        )]);
        let t = parse(&v, "fastcgi.server").expect("ok");
        assert_eq!(t.exts[0].hosts, vec![0, 1, 2]);
        assert_eq!(t.hosts[0].addr, Addr::Unix("/run/php.socket-0".into()));
        assert_eq!(t.hosts[1].name, "unix:/run/php.socket-1");
        assert_eq!(t.hosts[2].name, "127.0.0.1:80");
    }

    /// lighttpd's gw_backend: a socket or a host/port, not both; no port is 80.
    #[test]
    fn socket_or_host_and_port_80() {
        let one = |opts: Vec<(&str, Value)>| {
            Value::pairs(vec![(".php", Value::list(vec![Value::pairs(opts)]))])
        };
        let both = one(vec![
            ("socket", Value::text("/run/a.sock")),
            ("host", Value::text("127.0.0.1")),
        ]);
        assert!(parse(&both, "fastcgi.server")
            .expect_err("refused")
            .contains("either host/port or socket"));
        let t = parse(
            &one(vec![("host", Value::text("127.0.0.2"))]),
            "fastcgi.server",
        )
        .expect("ok");
        assert_eq!(t.hosts[0].name, "127.0.0.2:80");
    }

    #[test]
    fn errors() {
        let bad = Value::pairs(vec![(
            ".php",
            Value::list(vec![Value::pairs(vec![("host", Value::text("localhost"))])]),
        )]);
        assert!(parse(&bad, "fastcgi.server").is_err());
        let bad = Value::pairs(vec![(
            ".php",
            Value::list(vec![Value::pairs(vec![("port", Value::text("x"))])]),
        )]);
        assert!(parse(&bad, "fastcgi.server").is_err());
        let bad = Value::pairs(vec![(
            ".php",
            Value::list(vec![Value::pairs(vec![
                ("bin-path", Value::text("/usr/bin/php-cgi")),
                ("max-procs", Value::text("x")),
            ])]),
        )]);
        assert!(parse(&bad, "fastcgi.server")
            .expect_err("an error")
            .contains("max-procs"));
        let bad = Value::pairs(vec![(
            ".php",
            Value::list(vec![Value::pairs(vec![
                ("nonsense", Value::text("1")),
                ("port", Value::Int(1)),
            ])]),
        )]);
        assert!(parse(&bad, "fastcgi.server").is_err());
        let auth = |mode: &str| {
            Value::pairs(vec![(
                "/private",
                Value::list(vec![Value::pairs(vec![
                    ("port", Value::Int(9000)),
                    ("mode", Value::text(mode)),
                ])]),
            )])
        };
        assert!(parse(&auth("bouncer"), "fastcgi.server").is_err());
        // SCGI has no authorizer role.
        assert!(parse(&auth("authorizer"), "scgi.server")
            .expect_err("refused")
            .contains("mode \"authorizer\""));
    }

    /// mod_proxy's trees: an option lighttpd does not read is left out (it
    /// ignores it too); "" is a key.
    #[test]
    fn lenient_for_unknown_options() {
        let v = Value::pairs(vec![(
            "",
            Value::pairs(vec![(
                "tomcat",
                Value::pairs(vec![
                    ("host", Value::text("127.0.0.1")),
                    ("port", Value::Int(80)),
                    ("fix-redirects", Value::Int(1)),
                ]),
            )]),
        )]);
        assert!(parse(&v, "proxy.server")
            .expect_err("strict")
            .contains("fix-redirects"));
        let t = parse_lenient(&v, "proxy.server").expect("lenient");
        assert_eq!(t.exts[0].key, "");
        assert_eq!(t.hosts[0].name, "127.0.0.1:80");
    }

    /// Authorizer hosts make an `Ext` of their own, responders of the same key
    /// another.
    #[test]
    fn authorizers_apart() {
        let v = Value::pairs(vec![(
            "/",
            Value::list(vec![
                Value::pairs(vec![
                    ("port", Value::Int(9000)),
                    ("mode", Value::text("authorizer")),
                ]),
                Value::pairs(vec![
                    ("port", Value::Int(9001)),
                    ("mode", Value::text("responder")),
                ]),
                Value::pairs(vec![("port", Value::Int(9002))]),
            ]),
        )]);
        let t = parse(&v, "fastcgi.server").expect("ok");
        assert_eq!(t.exts.len(), 2);
        assert!(t.exts[0].authorizer);
        assert_eq!(t.exts[0].hosts, vec![0]);
        assert!(!t.exts[1].authorizer);
        assert_eq!(t.exts[1].hosts, vec![1, 2]);
        assert!(t.hosts[0].authorizer && !t.hosts[2].authorizer);
    }
}
