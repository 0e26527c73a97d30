//! The backend side of the gateway modules (mod_fastcgi, mod_scgi, mod_proxy,
//! mod_wstunnel): the
//! `*.server` tree parsed as lighttpd's gw_backend reads it (`config.rs`), the
//! hosts of one worker with their load and disable times and the balancing
//! between them (`pool.rs`), the non-blocking socket to one (`socket.rs`), the
//! module that claims requests for them (`module.rs`), the handler that carries
//! one request in the backend's wire format (`job.rs`), mod_proxy's HTTP
//! exchange (`proxy/`), mod_wstunnel's WebSocket frames (`wstunnel.rs`), FastCGI
//! authorizers (`authorizer.rs`).

mod authorizer;
mod config;
mod job;
mod module;
mod pool;
mod proxy;
mod socket;
mod wstunnel;

pub use authorizer::Grant;
pub use config::{parse, parse_lenient, Addr, Ext, Host, Table};
pub use job::{GatewayJob, Wire};
pub use module::{GatewayModule, Kind};
pub use pool::{Balance, Pick, Pool};
pub use socket::{Backend, Idle};
