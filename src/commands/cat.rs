//! `cairn cat`: decoded repository objects as JSON (a blob as its raw bytes), for debugging
//! and for scripts that want to look inside.

use std::io::Write;

use anyhow::{Context, Result, bail};
use cairn_format::{BlobId, IndexId, PackId};

use super::open;
use super::output::json::snapshot as snapshot_json;
use super::output::json_line;
use crate::cli::{CatArgs, CatKind, Global};
use crate::exit::Exit;
use crate::select::{SnapshotFilter, resolve};

pub fn run(global: &Global, args: &CatArgs) -> Result<Exit> {
    let repo = open(global)?;
    let id = || args.id.as_deref().context("this object kind needs an id");
    match args.kind {
        CatKind::Config => json_line(repo.config()),
        CatKind::Snapshot => {
            let (id, snapshot) = resolve(&repo, id()?, &SnapshotFilter::default())?;
            json_line(&snapshot_json(&id, &snapshot));
        }
        CatKind::Index => {
            let id: IndexId = id()?.parse()?;
            json_line(&repo.load_segment(&id)?);
        }
        CatKind::Pack => {
            let id: PackId = id()?.parse()?;
            let Some(size) = repo.pack_size(&id)? else { bail!("pack {id} does not exist") };
            let entries = repo.read_pack_header(&id, size)?;
            json_line(&serde_json::json!({ "id": id, "size": size, "blobs": entries }));
        }
        CatKind::Blob => {
            let id: BlobId = id()?.parse()?;
            let mut out = crate::commands::output::Stdout;
            out.write_all(&repo.read_blob(&id)?)?;
            out.flush()?;
        }
    }
    Ok(Exit::Ok)
}
