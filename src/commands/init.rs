//! `cairn init`

use crate::commands::output::outln;
use anyhow::{Context, Result};
use cairn_format::chunker::ChunkerParams;
use cairn_format::config::ImageChunking;
use cairn_format::crypto::KdfParams;
use cairn_format::{InitOptions, Repository};

use super::output::json_line;
use super::{backend, cache_root, creation_stamp, hostname, open_source, password};
use crate::cli::{Global, InitArgs};
use crate::exit::Exit;

/// Chunks from a quarter to four times `average_kib`.
fn chunker_params(average_kib: u32) -> ChunkerParams {
    ChunkerParams {
        min_size: average_kib * 256,
        avg_size: average_kib * 1024,
        max_size: average_kib * 4096,
    }
}

pub fn run(global: &Global, args: &InitArgs) -> Result<Exit> {
    // The source first: its password prompt comes before the new one.
    let source =
        if args.copy_chunker_params { Some(open_source(global, &args.from)?) } else { None };
    let backend = backend(global)?;
    let location = backend.location();
    let password = crate::password::refuse_empty(password(
        global,
        &format!("new password for {location}: "),
        true,
    )?)?;
    let options = init_options(args, source.as_deref());
    let repo = Repository::init(backend, password.as_bytes(), &options, &cache_root(global)?)
        .with_context(|| format!("cannot create a repository at {location}"))?;
    if global.json {
        json_line(&serde_json::json!({
            "message_type": "initialized",
            "id": repo.config().id,
            "repository": location,
        }));
    } else if !global.quiet {
        outln!("created cairn repository {} at {location}", repo.config().id.short());
        outln!("Keep the password safe: without it the data cannot be read, by anyone.");
    }
    Ok(Exit::Ok)
}

/// The new repository's settings: chunking from the source repository when copying its
/// parameters, else from the flags.
fn init_options(args: &InitArgs, source: Option<&Repository>) -> InitOptions {
    let (now_ns, username) = creation_stamp();
    let (chunker, image_chunking) = match source {
        Some(source) => (source.config().chunker, source.config().image_chunking),
        None => (
            chunker_params(args.chunk_size),
            ImageChunking {
                chunker: chunker_params(args.image_chunk_size),
                from_size: args.image_min_size,
            },
        ),
    };
    InitOptions {
        chunker,
        image_chunking,
        pack_size: args.pack_size * 1024 * 1024,
        compression_level: args.compression,
        image_compression_level: args.image_compression,
        kdf: KdfParams {
            memory_kib: args.argon2_memory,
            iterations: args.argon2_iterations,
            parallelism: 1,
        },
        hostname: hostname(),
        username,
        now_ns,
        ids_from: source.map(|s| s.key().clone()),
    }
}
