//! The tracing subscriber: warnings by default, more with -v, nothing but errors with -q, and
//! `RUST_LOG` wins when set. Logs go to stderr so stdout stays clean for data and JSON. The FUSE
//! library's own chatter (operations the kernel probes that a read-only mount does not offer, a
//! second unmount attempt after `fusermount3 -u`) shows only from -vv on.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    let fuser = if verbose >= 2 { level } else { "error" };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},fuser={fuser}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}
