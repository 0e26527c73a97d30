//! wickd: the master process (command line, listeners, supervision), and the entry
//! point of every re-executed role (worker, gateway-spawner).

mod accesslog;
mod affinity;
mod cli;
mod config;
mod counters;
mod daemon;
mod errlog;
mod listen;
mod privileges;
mod sdnotify;
mod server;
mod signals;
mod spawn;
mod spawner_launch;
mod syscalls;
mod tls;

use cli::{Opt, EXIT_USAGE};
use errlog::{ErrLog, Target};
use std::ffi::OsString;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::time::Duration;
use wick_proto::{Channel, ROLE_ENV};

fn main() {
    // Children are this binary again, told their role by the environment.
    if let Some(role) = std::env::var_os(ROLE_ENV) {
        std::env::remove_var(ROLE_ENV);
        // A piped access logger has no channel: its stdin is the pipe.
        if role == accesslog::LOGGER_ROLE {
            std::process::exit(accesslog::logger_main());
        }
        // SAFETY: the master started us with our channel on fd 3 (spawn.rs), and
        // nothing in this process has touched that fd yet.
        let channel = unsafe { Channel::from_inherited() };
        let code = match role.to_str() {
            Some("worker") => wick_worker::run(channel),
            Some("gateway-spawner") => wick_gateway_spawner::run(channel),
            _ => {
                eprintln!("wickd: unknown {ROLE_ENV}={}", role.to_string_lossy());
                EXIT_USAGE
            }
        };
        std::process::exit(code);
    }
    std::process::exit(master_main());
}

/// lighttpd refuses to run set-uid; so do we.
fn setuid_refused() -> bool {
    use nix::unistd::{getegid, geteuid, getgid, getuid};
    !getuid().is_root() && (geteuid() != getuid() || getegid() != getgid())
}

fn master_main() -> i32 {
    if setuid_refused() {
        eprintln!("Are you nuts ? Don't apply a SUID bit to this binary");
        return EXIT_USAGE;
    }
    let args: Vec<OsString> = std::env::args_os().collect();
    let opts = match cli::parse(args.get(1..).unwrap_or(&[])) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("wickd: {}", e.0);
            eprint!("{}", cli::usage());
            return EXIT_USAGE;
        }
    };
    if cli::serves(&opts) {
        spawn::resolve_exe();
        spawn::retitle_master(&args);
    }

    // Options take effect in order, as with lighttpd: `-f` reads the config at once.
    let mut source = None;
    let mut config = None;
    let (mut tests, mut print, mut foreground, mut oneshot, mut idle) =
        (0, false, false, false, None);
    for o in opts {
        match o {
            Opt::File(f) => {
                if source.is_some() {
                    eprintln!(
                        "Can only read one config file. Use the include command to use multiple config files."
                    );
                    return EXIT_USAGE;
                }
                let s = match config::Source::from_arg(&f) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                };
                match s.load_unchecked() {
                    Ok(c) => config = Some(c),
                    Err(e) => {
                        eprintln!("{e}");
                        return 1;
                    }
                }
                source = Some(s);
            }
            Opt::ModuleDir(_) => {}
            Opt::Idle(v) => match cli::parse_idle(&v) {
                Ok(n) => idle = Some(n),
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_USAGE;
                }
            },
            Opt::Help => {
                print!("{}", cli::usage());
                return 0;
            }
            Opt::Version => {
                print!("{}", cli::version_line());
                return 0;
            }
            Opt::Features => {
                print!("{}", cli::features());
                return 0;
            }
            Opt::Foreground => foreground = true,
            Opt::OneShot => oneshot = true,
            Opt::Print => print = true,
            Opt::Test => tests += 1,
        }
    }
    let (Some(source), Some(mut config)) = (source, config) else {
        eprintln!("No configuration available. Try using -f option.");
        return EXIT_USAGE;
    };
    if print {
        for w in &config.warnings {
            eprintln!("{w}");
        }
        // -p prints what lighttpd accepts; what start-up would refuse is only said.
        for r in wick_conf::support::refusals(&config) {
            eprintln!("WARNING: {r}; wickd will not start with this");
        }
        println!("{}", wick_conf::print::normalized(&config));
        let _ = std::io::stdout().flush();
        return 0;
    }
    if let Err(e) = config::validate(&config) {
        eprintln!("{e}");
        return 1;
    }
    // -t checks the syntax only; -tt and a start refuse what would open access.
    if tests != 1 {
        if tests >= 2 {
            for w in &config.warnings {
                eprintln!("{w}");
            }
        }
        if let Err(e) = wick_conf::support::check(&config)
            .and_then(|()| wick_conf::preflight::document_root(&config))
        {
            eprintln!("{e}");
            return 1;
        }
        // Host names in server.bind / $SERVER["socket"]: resolved for binding (and
        // by -tt, as lighttpd's), never for -p or -t.
        if let Err(e) = wick_conf::resolve_listeners(&mut config) {
            eprintln!("{e}");
            return 1;
        }
    }
    if tests >= 2 {
        for w in wick_conf::preflight::warnings(&config)
            .into_iter()
            .chain(wick_conf::preflight::start_failures(&config))
            .chain(wick_conf::spawn::preflight_notes(&config))
        {
            eprintln!("{w}");
        }
        if let Err(e) = wick_conf::preflight::check(&config) {
            eprintln!("{e}");
            return 1;
        }
        // The TLS files, read and checked as a start would.
        match tls::load(&config) {
            Ok(t) => {
                for w in t.map(|t| t.warnings).unwrap_or_default() {
                    eprintln!("{w}");
                }
            }
            Err(e) => {
                eprintln!("TLS: {e}");
                return 1;
            }
        }
    } else if tests == 1 {
        println!("Syntax OK");
    }
    if tests > 0 || print {
        let _ = std::io::stdout().flush();
        return 0;
    }
    // bin-path backends: programs that will not run, socket directories that do
    // not exist (the start would fail in the gateway-spawner; say it here).
    if let Err(e) = wick_conf::spawn::start_check(&config) {
        eprintln!("{e}");
        return 1;
    }
    let idle = idle.filter(|&n| n > 0).map(Duration::from_secs);
    // The TLS files are read and checked before anything is bound.
    let tls = match tls::load(&config) {
        Ok(Some(t)) => {
            config.warnings.extend(t.warnings);
            Some(t.files)
        }
        Ok(None) => None,
        Err(e) => {
            eprintln!("TLS: {e}");
            return 1;
        }
    };
    serve(source, config, tls, foreground || oneshot, oneshot, idle)
}

/// Start-up, in steps; each failure is printed on stderr (the terminal is still
/// there: the daemon forks only after the sockets are bound) and ends wickd.
fn serve(
    source: config::Source,
    mut config: wick_conf::Config,
    tls: Option<Vec<wick_proto::tls::TlsFile>>,
    foreground: bool,
    oneshot: bool,
    idle: Option<Duration>,
) -> i32 {
    let mut boot = ErrLog::stderr();
    wick_proto::log::init_timezone();
    macro_rules! fail {
        ($($a:tt)*) => {{
            elog!(boot, $($a)*);
            return 1;
        }};
    }

    // Step 1: what the environment hands us (systemd, inetd).
    let notify = sdnotify::Notify::from_env();
    let inherited = listen::inherited_fds();
    let oneshot_fds = if oneshot {
        match oneshot_connection() {
            Ok(f) => Some(f),
            Err(e) => fail!("{e}"),
        }
    } else {
        // As lighttpd: stdin and stdout are not used; stderr stays until the
        // error log is open (and for messages on the terminal in the foreground).
        if let Err(e) = null_stdin_stdout() {
            fail!("{e}");
        }
        None
    };

    // Step 2: the pid file, before anything is bound (a live owner stops us here).
    let mut pidfile = None;
    if let (Some(p), false) = (
        config.server.pid_file.as_deref().filter(|p| !p.is_empty()),
        oneshot,
    ) {
        match daemon::PidFile::create(std::path::Path::new(p)) {
            Ok(f) => pidfile = Some(f),
            Err(e) => fail!("{e}"),
        }
    }

    // Step 3: listening sockets (inherited from systemd, or bound here; privileged
    // ports too, while the master has the right to).
    let mut listeners = listen::ListenerSet::default();
    if !oneshot {
        if config.server.systemd_socket_activation && !inherited.is_empty() {
            if let Err(e) = listeners.adopt_inherited(inherited) {
                cleanup_failed(&pidfile);
                fail!("{e}");
            }
        }
        listeners.apply_inherited(&mut config);
        if let Err(e) = listeners.ensure(&config) {
            cleanup_failed(&pidfile);
            fail!("{e}");
        }
    }

    // Step 4: the error log.
    let log = match ErrLog::open(Target::of(&config.server)) {
        Ok(l) => l,
        Err(e) => {
            cleanup_failed(&pidfile);
            fail!("{e}")
        }
    };

    // Step 5: from here on the master keeps only what it still needs (privileges.rs).
    if let Err(e) = privileges::trim() {
        cleanup_failed(&pidfile);
        fail!("{e}");
    }

    // Step 6: become a daemon; the parent waits until the workers are ready.
    let readiness = if foreground {
        None
    } else {
        match daemon::daemonize() {
            Ok(r) => Some(r),
            Err(e) => {
                cleanup_failed(&pidfile);
                fail!("daemonizing failed: {e}");
            }
        }
    };
    if let Some(p) = pidfile.as_mut() {
        if let Err(e) = p.write_pid() {
            let reason = format!("Couldn't write pid file: {e}");
            if let Some(r) = readiness {
                r.failed(&reason);
            }
            cleanup_failed(&pidfile);
            fail!("{reason}");
        }
    }

    // Step 7: supervise.
    let mut log = log;
    for w in config
        .warnings
        .iter()
        .cloned()
        .chain(wick_conf::preflight::warnings(&config))
    {
        elog!(log, "{w}");
    }
    let setup = server::Setup {
        source,
        listeners,
        log,
        readiness,
        pidfile,
        notify,
        idle,
        oneshot: oneshot_fds,
        foreground,
    };
    let master = match server::Master::new(setup) {
        Ok(m) => m,
        Err(e) => fail!("setting up the event loop failed: {e}"),
    };
    master.run(config, tls)
}

fn cleanup_failed(pidfile: &Option<daemon::PidFile>) {
    if let Some(p) = pidfile {
        p.remove();
    }
}

fn null_stdin_stdout() -> Result<(), String> {
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("opening /dev/null failed: {e}"))?;
    nix::unistd::dup2_stdin(&null).map_err(|e| format!("dup2: {e}"))?;
    nix::unistd::dup2_stdout(&null).map_err(|e| format!("dup2: {e}"))?;
    Ok(())
}

/// `-1`: stdin is the connection (a socket), or with inetd's pipe pair stdin is
/// read from and stdout written to. Taken out of fds 0/1, which become /dev/null.
fn oneshot_connection() -> Result<Vec<OwnedFd>, String> {
    use nix::sys::stat::{fstat, SFlag};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let st = fstat(stdin.as_fd()).map_err(|e| format!("fstat(stdin): {e}"))?;
    let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
    let dup =
        |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map_err(|e| format!("dup: {e}"));
    let fds = if kind == SFlag::S_IFSOCK {
        vec![dup(stdin.as_fd())?]
    } else if kind == SFlag::S_IFIFO {
        vec![dup(stdin.as_fd())?, dup(stdout.as_fd())?]
    } else {
        return Err("wickd -1 stdin is not a socket".into());
    };
    null_stdin_stdout()?;
    Ok(fds)
}
