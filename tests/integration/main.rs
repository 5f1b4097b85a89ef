//! Integration tests: the built `cairn` binary against real repositories in temporary
//! directories, plus library-level tests that need fault injection. Regression tests name the
//! issue they guard.

mod bench_smoke;
mod check;
mod cli;
mod crash;
mod dedup;
mod deep;
mod engine;
mod forget;
mod image;
mod mount;
mod output;
mod prune;
mod remote;
mod roundtrip;
mod security;
mod servers;
mod trust;
mod util;
