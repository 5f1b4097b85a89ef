//! `cairn version`: the version and the platform it was built for, as restic prints them.

use std::env::consts::{ARCH, OS};

use serde_json::json;

use super::output::{json_line, outln};
use crate::cli::Global;
use crate::exit::Exit;

pub fn run(global: &Global) -> Exit {
    let version = env!("CARGO_PKG_VERSION");
    if global.json {
        json_line(&json!({"message_type": "version", "version": version, "os": OS, "arch": ARCH}));
    } else {
        outln!("cairn {version} on {OS}/{ARCH}");
    }
    Exit::Ok
}
