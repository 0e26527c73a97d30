//! Load a lighttpd.conf and print its warnings and normalised form (a debugging aid:
//! `cargo run -p wick-conf --example confprint -- FILE [-tt]`).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: confprint FILE [-tt]");
        std::process::exit(2);
    };
    match wick_conf::load_file(std::path::Path::new(path)) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            print!("{}", wick_conf::print::normalized(&cfg));
            if args.get(2).map(String::as_str) == Some("-tt") {
                if let Err(e) = wick_conf::preflight::check(&cfg) {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
