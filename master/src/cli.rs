//! The command line, as lighttpd parses it: getopt "f:m:i:hvVD1pt", options acted
//! on in the order given, usage on stderr and status 255 for a bad option.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Exit status for command-line errors (lighttpd returns -1 from main).
pub const EXIT_USAGE: i32 = 255;

/// One option as it appeared on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    /// `-f FILE` (`-` = stdin)
    File(OsString),
    /// `-m DIR`: module directory; modules are compiled in, so it is accepted and unused.
    ModuleDir(OsString),
    /// `-i SECS`
    Idle(OsString),
    Help,
    Version,
    Features,
    Foreground,
    OneShot,
    Print,
    Test,
}

/// A malformed command line: the message getopt would print.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

/// Parse like GNU getopt with the string "f:m:i:hvVD1pt": clustered flags (`-Dtt`),
/// attached or separate arguments (`-fFILE`, `-f FILE`), options after operands
/// (operands are ignored, as lighttpd does), `--` ends the options.
pub fn parse(args: &[OsString]) -> Result<Vec<Opt>, UsageError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        i += 1;
        if a == b"--" {
            break;
        }
        if a.len() < 2 || a[0] != b'-' {
            continue; // operand: ignored
        }
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            match c {
                b'f' | b'm' | b'i' => {
                    let val = if j < a.len() {
                        let v = OsStr::from_bytes(&a[j..]).to_os_string();
                        j = a.len();
                        v
                    } else if i < args.len() {
                        i += 1;
                        args[i - 1].clone()
                    } else {
                        return Err(UsageError(format!(
                            "option requires an argument -- '{}'",
                            c as char
                        )));
                    };
                    out.push(match c {
                        b'f' => Opt::File(val),
                        b'm' => Opt::ModuleDir(val),
                        _ => Opt::Idle(val),
                    });
                }
                b'h' => out.push(Opt::Help),
                b'v' => out.push(Opt::Version),
                b'V' => out.push(Opt::Features),
                b'D' => out.push(Opt::Foreground),
                b'1' => out.push(Opt::OneShot),
                b'p' => out.push(Opt::Print),
                b't' => out.push(Opt::Test),
                other => {
                    let shown = if other.is_ascii_graphic() {
                        format!("'{}'", other as char)
                    } else {
                        format!("0x{other:02x}")
                    };
                    return Err(UsageError(format!("invalid option -- {shown}")));
                }
            }
        }
    }
    Ok(out)
}

/// True when these options make wickd serve (rather than print something and exit).
pub fn serves(opts: &[Opt]) -> bool {
    !opts.iter().any(|o| {
        matches!(
            o,
            Opt::Help | Opt::Version | Opt::Features | Opt::Print | Opt::Test
        )
    })
}

/// `-i SECS`: a non-negative integer (strtol base 0: decimal, 0x hex, 0 octal).
pub fn parse_idle(v: &OsStr) -> Result<u64, String> {
    let s = v.to_string_lossy();
    let t = s.trim();
    let parsed = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u64::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse::<u64>().ok()
    };
    match parsed {
        Some(n) if !t.is_empty() && t == s => Ok(n),
        _ => Err(format!("Invalid idle timeout value: {s}")),
    }
}

pub const VERSION: &str = concat!("wickd/", env!("CARGO_PKG_VERSION"));

pub fn version_line() -> String {
    format!("{VERSION} - a privilege-separated web server for lighttpd configurations\n")
}

/// `-V`: the version, then lighttpd's sections. Tools grep the `Features:` lines
/// ("\t+ NAME support"), so names are lighttpd's. Keep this table true: flip a `-`
/// to `+` in the same change that makes the feature work.
pub fn features() -> String {
    const FEATURES: &[(bool, &str)] = &[
        (true, "IPv6"),
        (false, "zlib"),
        (false, "zstd"),
        (false, "bzip2"),
        (false, "brotli"),
        (false, "crypt"),
        (false, "OpenSSL"),
        (false, "mbedTLS"),
        (false, "NSS crypto"),
        (false, "GnuTLS"),
        (false, "WolfSSL"),
        (false, "Nettle"),
        // Config regexes have PCRE2's meaning (conf/src/pattern.rs: regex crate,
        // fancy-regex for look-around and back-references).
        (true, "PCRE"),
        (false, "MySQL"),
        (false, "PgSQL"),
        (false, "DBI"),
        (false, "Kerberos"),
        (false, "LDAP"),
        (false, "PAM"),
        (false, "memcached"),
        (false, "FAM"),
        (false, "LUA"),
        (false, "xml"),
        (false, "SQLite"),
        (false, "GDBM"),
    ];
    let mut s = version_line();
    s.push_str("\nEvent Handlers:\n\n\t+ epoll (Linux)\n");
    s.push_str("\nNetwork handler:\n\n\t+ linux-sendfile\n\t+ writev\n");
    s.push_str("\nFeatures:\n\n");
    for (on, name) in FEATURES {
        s.push_str(&format!(
            "\t{} {name} support\n",
            if *on { '+' } else { '-' }
        ));
    }
    s.push('\n');
    s
}

pub fn usage() -> String {
    let mut s = version_line();
    s.push_str(concat!(
        "usage:\n",
        " -f <name>  read the configuration from file <name> (\"-\": from stdin)\n",
        " -m <name>  module directory (accepted; wickd's modules are built in)\n",
        " -i <secs>  shut down gracefully after <secs> without a request\n",
        " -1         serve the one connection on stdin, then exit (inetd style)\n",
        " -p         print the parsed configuration in normalised form, then exit\n",
        " -t         check the configuration syntax, then exit\n",
        " -tt        check the configuration as for a start (modules, options), then exit\n",
        " -D         stay in the foreground (default: become a daemon)\n",
        " -v         print the version\n",
        " -V         print the version and the compiled-in features\n",
        " -h         print this help\n",
        "\n",
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Vec<Opt>, UsageError> {
        let v: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse(&v)
    }

    #[test]
    fn getopt_forms() {
        assert_eq!(
            p(&["-Df", "x.conf", "-tt"]).expect("ok"),
            vec![
                Opt::Foreground,
                Opt::File("x.conf".into()),
                Opt::Test,
                Opt::Test
            ]
        );
        assert_eq!(p(&["-fx"]).expect("ok"), vec![Opt::File("x".into())]);
        assert_eq!(p(&["op", "-v"]).expect("ok"), vec![Opt::Version]);
        assert_eq!(p(&["--", "-v"]).expect("ok"), vec![]);
        assert!(p(&["-x"]).is_err());
        assert!(p(&["-f"]).is_err());
        assert!(!serves(&p(&["-t", "-f", "a"]).expect("ok")));
        assert!(serves(&p(&["-D", "-f", "a"]).expect("ok")));
    }

    #[test]
    fn idle_values() {
        assert_eq!(parse_idle(OsStr::new("30")), Ok(30));
        assert_eq!(parse_idle(OsStr::new("0x10")), Ok(16));
        assert!(parse_idle(OsStr::new("-1")).is_err());
        assert!(parse_idle(OsStr::new("3s")).is_err());
        assert!(parse_idle(OsStr::new("")).is_err());
    }

    #[test]
    fn feature_lines() {
        let f = features();
        assert!(f.contains("\n\t+ PCRE support\n"));
        assert!(f.contains("\n\t+ IPv6 support\n"));
    }
}
