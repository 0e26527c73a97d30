//! Where the config comes from (a file, or stdin read once and kept so that a
//! graceful restart can parse it again) and the checks the master makes before
//! any process sees a config.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use wick_conf::Config;

pub enum Source {
    /// Absolute, so a reload after the daemon's chdir("/") finds the same file.
    File(PathBuf),
    /// `-f -`: the text, and the directory relative includes start from.
    Stdin { text: String, base: PathBuf },
}

impl Source {
    pub fn from_arg(arg: &OsStr) -> Result<Source, String> {
        if arg == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading the configuration from stdin failed: {e}"))?;
            let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            return Ok(Source::Stdin { text, base });
        }
        let p = Path::new(arg);
        Ok(Source::File(
            std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()),
        ))
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin { .. } => "(stdin)".to_string(),
        }
    }

    /// Parse, evaluate and check as for a start (a graceful restart); an error names
    /// file:line:column and shows the line.
    pub fn load(&self) -> Result<Config, String> {
        let mut c = self.load_unchecked()?;
        validate(&c)?;
        wick_conf::support::check(&c)?;
        wick_conf::preflight::document_root(&c)?;
        wick_conf::spawn::start_check(&c)?;
        wick_conf::resolve_listeners(&mut c)?;
        Ok(c)
    }

    /// Parse and evaluate without compiling the conditions: `-p` prints a config
    /// whose regexes use a PCRE feature wickd lacks (with a warning), as lighttpd
    /// would print it.
    pub fn load_unchecked(&self) -> Result<Config, String> {
        let c = match self {
            Source::File(p) => wick_conf::load_file(p),
            Source::Stdin { text, base } => wick_conf::load_str(text, "-", base),
        };
        let mut c = c.map_err(|e| e.to_string())?;
        // lighttpd's warnings about the order of server.modules
        let order = wick_worker::mods::order_warnings(&c.server.modules);
        c.warnings.extend(order);
        Ok(c)
    }
}

/// What must hold before a config is used: every condition compiles (regexes),
/// the modules accept their settings (rewrite/redirect regexes, alias.url
/// order, expire values, extforward forwarders), and the bin-path backends are
/// well formed (sockets, processes, signals).
pub fn validate(c: &Config) -> Result<(), String> {
    wick_conf::cond::Compiled::new(c)
        .map(drop)
        .map_err(|e| e.to_string())?;
    wick_worker::mods::Mods::new(c).map(drop)?;
    wick_conf::spawn::backends(c).map(drop)
}
