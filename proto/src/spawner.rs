//! What the workers and the gateway-spawner say to each other about CGI.
//!
//! Channels: master ⇄ spawner is the spawner's fd 3 and speaks the children's control
//! protocol ([`crate::ToWorker`] / [`crate::FromWorker`]); worker ⇄ spawner is one
//! socketpair per worker, made by the master, one end to each side with
//! [`crate::ToWorker::SpawnerChannel`], carrying the messages below.
//!
//! A worker's [`CgiRequest`] carries facts, not decisions: the spawner re-derives the
//! document root, the script, the interpreter, the user and the environment from its own
//! copy of the config, so a compromised worker can ask for nothing the config does not
//! already allow. Enums here are append-only (postcard is positional).

use serde::{Deserialize, Serialize};

/// HTTP version of the request, for SERVER_PROTOCOL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpVersion {
    Http10,
    Http11,
    Http2,
}

impl HttpVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http10 => "HTTP/1.0",
            HttpVersion::Http11 => "HTTP/1.1",
            HttpVersion::Http2 => "HTTP/2.0",
        }
    }
}

/// "Run the CGI for this request": the request's facts as the worker saw them.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CgiRequest {
    /// The worker's handle for this CGI, echoed in every answer.
    pub id: u64,
    pub method: String,
    pub version: Option<HttpVersion>,
    /// The request-target as the client sent it (REQUEST_URI).
    pub target: String,
    /// The target after internal rewrites/redirects, when it differs (REDIRECT_URI).
    pub redirect_uri: Option<String>,
    /// The decoded, normalised URL path after rewrites, as `$HTTP["url"]` sees it:
    /// SCRIPT_NAME followed by PATH_INFO.
    pub path: String,
    /// Length of SCRIPT_NAME within `path` (the rest is PATH_INFO, empty or from a '/').
    pub script_name_len: u32,
    /// QUERY_STRING (without '?').
    pub query: String,
    /// Host as sent (Host header or HTTP/2 :authority), without normalisation.
    pub host: Option<String>,
    /// Index into `Config::listeners` of the socket the connection came in on.
    pub listener: u32,
    /// The connection's local address (SERVER_ADDR on a wildcard listener).
    pub local_addr: Option<std::net::SocketAddr>,
    /// REMOTE_ADDR / REMOTE_PORT (as mod_extforward left them).
    pub remote_addr: Option<std::net::IpAddr>,
    pub remote_port: u16,
    /// TLS connection: REQUEST_SCHEME https, HTTPS=on.
    pub tls: bool,
    /// Request header fields in arrival order (duplicates already merged as the worker
    /// stores them). Becomes HTTP_* (Content-Type: CONTENT_TYPE; never HTTP_PROXY).
    pub headers: Vec<(String, String)>,
    /// Bytes of request body the worker will stream to stdin (CONTENT_LENGTH).
    pub content_length: u64,
    /// (REMOTE_USER, AUTH_TYPE) when mod_auth authenticated the request.
    pub auth: Option<(String, String)>,
    /// Set when running as server.error-handler: the original status (REDIRECT_STATUS).
    pub error_status: Option<u16>,
    /// The condition blocks the worker found true; only compared with the spawner's own
    /// evaluation and logged when they differ.
    pub blocks: Vec<u32>,
    /// TLS facts for the script (SSL_PROTOCOL, SSL_CIPHER, SSL_CLIENT_*, and
    /// REMOTE_USER/AUTH_TYPE from ssl.verifyclient.username). The spawner passes
    /// only SSL_* names and those two.
    pub tls_env: Vec<(String, String)>,
}

/// Why a worker is finished with a CGI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FinishReason {
    /// The response is complete: like lighttpd, SIGTERM the script if it still runs,
    /// leave anything it started in the background alone.
    Done,
    /// The client went away: kill the whole process group.
    ClientGone,
    /// cgi.limits read-timeout or write-timeout expired: kill the whole process group.
    Timeout,
    /// The worker gave up on the response (malformed headers, I/O error): kill the group.
    Error,
}

/// Worker → spawner.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum FromWorkerToSpawner {
    Run(Box<CgiRequest>),
    /// The worker is done with CGI `id` (see [`FinishReason`]).
    Finish {
        id: u64,
        reason: FinishReason,
    },
    /// cgi.limits tcp-fin-propagate: send this signal to the script (pid only).
    Signal {
        id: u64,
        signal: i32,
    },
}

/// How a CGI process ended (waitpid).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
}

/// Spawner → worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SpawnerToWorker {
    /// The script runs. Three fds ride along, in this order: the write end of its stdin,
    /// the read end of its stdout, the read end of its stderr.
    Started { id: u64, pid: u32 },
    /// Not run. `status` is what lighttpd would answer (403 for a policy refusal, 404 when
    /// there is no such script, 500 when it could not be started, 503 when draining);
    /// the reason is already in the error log.
    Refused {
        id: u64,
        status: u16,
        reason: String,
    },
    /// The script's process exited (its output may still be in the pipe).
    Exited { id: u64, status: ExitStatus },
}

/// `cgi.limits` (lighttpd's keys): read-timeout, write-timeout (seconds, 0 = none) and
/// tcp-fin-propagate (signal sent to the script when the client half-closes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgiLimits {
    pub read_timeout: u64,
    pub write_timeout: u64,
    pub signal_fin: i32,
}

impl CgiLimits {
    /// Parse the `cgi.limits` array; unknown keys are returned for a warning, as lighttpd
    /// logs "unrecognized cgi.limits param".
    pub fn parse(v: &wick_conf::Value) -> (CgiLimits, Vec<String>) {
        use wick_conf::Value;
        let mut out = CgiLimits::default();
        let mut unknown = Vec::new();
        let Value::Array(items) = v else {
            return (
                out,
                vec!["cgi.limits must be an array of \"key\" => value".into()],
            );
        };
        for (k, v) in items {
            let key = k.as_deref().unwrap_or("").to_ascii_lowercase();
            let int = match v {
                Value::Int(i) => Some(*i),
                Value::Str(s) => s.trim().parse::<i64>().ok(),
                Value::Array(_) => None,
            };
            match key.as_str() {
                "read-timeout" => out.read_timeout = int.unwrap_or(0).max(0) as u64,
                "write-timeout" => out.write_timeout = int.unwrap_or(0).max(0) as u64,
                "tcp-fin-propagate" => {
                    out.signal_fin = match (int, v) {
                        (Some(i), _) => i32::try_from(i).unwrap_or(0),
                        (None, Value::Str(s)) => signal_by_name(s).unwrap_or(libc::SIGTERM),
                        _ => libc::SIGTERM,
                    }
                }
                _ => unknown.push(format!("unrecognized cgi.limits param: {key}")),
            }
        }
        (out, unknown)
    }
}

/// "TERM", "SIGTERM", "hup", ... → signal number.
pub fn signal_by_name(s: &str) -> Option<i32> {
    let up = s.trim().to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CHLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wick_conf::Value;

    #[test]
    fn limits_parse_lighttpd_keys() {
        let v = Value::Array(vec![
            (Some("read-timeout".into()), Value::Int(5)),
            (Some("Write-Timeout".into()), Value::Str("7".into())),
            (
                Some("tcp-fin-propagate".into()),
                Value::Str("SIGUSR1".into()),
            ),
            (Some("bogus".into()), Value::Int(1)),
        ]);
        let (l, unknown) = CgiLimits::parse(&v);
        assert_eq!(
            l,
            CgiLimits {
                read_timeout: 5,
                write_timeout: 7,
                signal_fin: libc::SIGUSR1
            }
        );
        assert_eq!(unknown.len(), 1);
        let v = Value::Array(vec![(
            Some("tcp-fin-propagate".into()),
            Value::Str("enable".into()),
        )]);
        assert_eq!(CgiLimits::parse(&v).0.signal_fin, libc::SIGTERM);
    }

    #[test]
    fn request_roundtrip() {
        let r = CgiRequest {
            id: 7,
            method: "GET".into(),
            path: "/cgi-bin/x.cgi/extra".into(),
            script_name_len: 14,
            headers: vec![("Host".into(), "a".into())],
            ..Default::default()
        };
        let m = FromWorkerToSpawner::Run(Box::new(r));
        let bytes = postcard::to_stdvec(&m).expect("encode");
        let back: FromWorkerToSpawner = postcard::from_bytes(&bytes).expect("decode");
        match back {
            FromWorkerToSpawner::Run(r) => assert_eq!(r.script_name_len, 14),
            _ => panic!("wrong variant"),
        }
    }
}
