//! The backend side of the gateway modules (mod_fastcgi now; mod_scgi and mod_proxy
//! read the same `*.server` trees): the tree parsed as lighttpd's gw_backend reads
//! it (`config.rs`), the hosts of one worker with their load and disable times and
//! the balancing between them (`pool.rs`), and the non-blocking socket to one
//! (`socket.rs`). A protocol module owns the bytes on that socket.

mod config;
mod pool;
mod socket;

pub use config::{parse, Addr, Ext, Host, Mode, Table};
pub use pool::{Balance, Pick, Pool};
pub use socket::Backend;
