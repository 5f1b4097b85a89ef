//! cairn-fuse: the read-only FUSE view of a repository.
//!
//! This crate is the home of `cairn mount`. It is deliberately empty until the mount is built
//! (see docs/architecture.md): the filesystem core will live in `fs.rs` with no fuser types,
//! and `adapter.rs` will be the only `impl fuser::Filesystem`. Nothing in cairn depends on it
//! yet, and no feature is advertised for it.
