//! `cairn dump`

use anyhow::Result;

use std::io::IsTerminal;

use super::explain::Chosen;
use super::open;
use crate::cli::{DumpArgs, Global};
use crate::exit::Exit;
use crate::select::SnapshotFilter;

pub fn run(global: &Global, args: &DumpArgs) -> Result<Exit> {
    let repo = open(global)?;
    let chosen = Chosen::resolve(&repo, &args.snapshot, SnapshotFilter::from(&args.filter))?;
    let stdout = crate::commands::output::Stdout;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout);
    let tar_to_terminal = std::io::stdout().is_terminal();
    crate::dump::dump(&repo, &chosen.snapshot, &args.path, &mut out, tar_to_terminal)
        .map_err(|e| chosen.explain(&repo, e))?;
    Ok(Exit::Ok)
}
