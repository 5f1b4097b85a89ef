//! The tracing subscriber: warnings by default, more with -v, nothing but errors with -q, and
//! `RUST_LOG` wins when set. Logs go to stderr so stdout stays clean for data and JSON.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}
