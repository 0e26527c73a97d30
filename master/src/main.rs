//! wickd: the master process (command line, listeners, supervision), and the entry
//! point of every re-executed role (worker, gateway-spawner).

fn main() {
    std::process::exit(0);
}
