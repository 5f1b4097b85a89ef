//! `cairn dump`

use anyhow::Result;

use super::open;
use crate::cli::{DumpArgs, Global};
use crate::exit::Exit;
use crate::select::{SnapshotFilter, resolve};

pub fn run(global: &Global, args: &DumpArgs) -> Result<Exit> {
    let repo = open(global)?;
    let (_, snapshot) = resolve(&repo, &args.snapshot, &SnapshotFilter::from(&args.filter))?;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    crate::dump::dump(&repo, &snapshot, &args.path, &mut out)?;
    Ok(Exit::Ok)
}
