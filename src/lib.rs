//! cairn: the backup engine and its command line.
//!
//! The engine functions ([`backup::backup`], [`restore::restore`], [`dump::dump`]) take an
//! open [`cairn_format::Repository`], an options struct and a progress sink, so another
//! program can embed cairn without the CLI. `cli` and `commands` are the command line on top.

pub mod allocator;
pub mod backup;
pub mod check;
pub mod cli;
pub mod commands;
pub mod copy;
pub mod dump;
pub mod exit;
pub mod forget;
pub mod lock;
pub mod logging;
pub mod metadata;
pub mod outcome;
pub mod password;
pub mod pattern;
pub mod progress;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod select;
pub mod size;
pub mod stats;
pub mod walk;
