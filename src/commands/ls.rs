//! `cairn ls`

use std::io::{IsTerminal, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use cairn_format::snapshot::Snapshot;
use cairn_format::tree::{Node, NodeKind};
use cairn_format::{BlobId, Error, Repository};

use super::explain::Chosen;
use super::open;
use super::output::json::snapshot as snapshot_json;
use super::output::table;
use crate::cli::{Global, LsArgs};
use crate::dump::find_node;
use crate::exit::Exit;
use crate::select::SnapshotFilter;
use crate::walk::{Listing, Place, Visitor, Walker};

pub fn run(global: &Global, args: &LsArgs) -> Result<Exit> {
    let repo = open(global)?;
    let chosen = Chosen::resolve(&repo, &args.snapshot, SnapshotFilter::from(&args.filter))?;
    let start = args.path.as_deref().unwrap_or(Path::new("/"));
    let mut out = std::io::BufWriter::new(crate::commands::output::Stdout);
    if global.json {
        let mut head = snapshot_json(&chosen.id, &chosen.snapshot);
        head["struct_type"] = "snapshot".into();
        head["message_type"] = "snapshot".into();
        writeln!(out, "{head}")?;
    }
    let mut printer = Printer {
        out: &mut out,
        long: args.long,
        json: global.json,
        escape: std::io::stdout().is_terminal(),
    };
    let found = find_node(&repo, &chosen.snapshot, start).map_err(|e| chosen.explain(&repo, e))?;
    list(&repo, &chosen.snapshot, found, start, &mut printer)?;
    out.flush()?;
    Ok(Exit::Ok)
}

/// Prints the node found at `start` and everything below it (the whole snapshot when the
/// start is its root).
fn list(
    repo: &Repository,
    snapshot: &Snapshot,
    found: Option<Node>,
    start: &Path,
    printer: &mut Printer<'_>,
) -> Result<()> {
    let mut walker = Walker::with_paths(repo);
    let Some(node) = found else {
        return walker.walk(&snapshot.tree, printer);
    };
    let prefix = PathBuf::from("/").join(start.strip_prefix("/").unwrap_or(start));
    printer.print(&node, &prefix)?;
    if let NodeKind::Directory { subtree } = &node.kind {
        walker.walk_at(subtree, &prefix, printer)?;
    }
    Ok(())
}

struct Printer<'a> {
    out: &'a mut dyn Write,
    long: bool,
    json: bool,
    /// On a terminal, names are escaped so that a newline or an escape sequence in one shows
    /// as such; into a pipe they go as the bytes they are.
    escape: bool,
}

/// Prints every node, parents before children, every copy of a directory stored twice.
impl Visitor for Printer<'_> {
    fn reach(&mut self, _: &BlobId, _: Listing, _: bool, _: &Place) -> Result<bool> {
        Ok(true)
    }

    fn node(&mut self, node: &Node, at: &Place) -> Result<bool> {
        self.print(node, at.path())?;
        Ok(matches!(node.kind, NodeKind::Directory { .. }))
    }

    fn failed(&mut self, id: &BlobId, _: Listing, error: Error, at: &Place) -> Result<()> {
        bail!("directory {} (tree {id}) does not read: {error}", at.path().display())
    }
}

impl Printer<'_> {
    fn print(&mut self, node: &Node, path: &Path) -> Result<()> {
        let out = &mut *self.out;
        if self.json {
            writeln!(out, "{}", node_json(node, path))?;
        } else {
            if self.long {
                write!(
                    out,
                    "{}{} {:>8} {:>8} {:>12} {} ",
                    kind_label(&node.kind).1,
                    mode_string(node.mode),
                    display_owner(&node.user, node.uid),
                    display_owner(&node.group, node.gid),
                    node.size,
                    table::time(node.mtime_ns),
                )?;
            }
            let bytes = path.as_os_str().as_bytes();
            if self.escape {
                out.write_all(escaped(bytes).as_bytes())?;
            } else {
                out.write_all(bytes)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

/// A name as a terminal should show it, as `ls -b` does: backslashes doubled, control
/// characters and bytes that are not UTF-8 written as escapes (`\n`, `\x1b`, `\xff`).
fn escaped(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        let _ = write!(out, "\\x{b:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

fn display_owner(name: &str, id: u32) -> String {
    if name.is_empty() { id.to_string() } else { name.to_string() }
}

/// A node kind's name in JSON and its letter in `ls -l`.
fn kind_label(kind: &NodeKind) -> (&'static str, char) {
    match kind {
        NodeKind::File { .. } => ("file", '-'),
        NodeKind::Directory { .. } => ("dir", 'd'),
        NodeKind::Symlink { .. } => ("symlink", 'l'),
        NodeKind::BlockDevice { .. } => ("blockdev", 'b'),
        NodeKind::CharDevice { .. } => ("chardev", 'c'),
        NodeKind::Fifo => ("fifo", 'p'),
        NodeKind::Socket => ("socket", 's'),
    }
}

/// `0o4755` -> `rwsr-xr-x`.
fn mode_string(mode: u32) -> String {
    let mut s: Vec<char> = "rwxrwxrwx".chars().collect();
    for (i, c) in s.iter_mut().enumerate() {
        if mode & (1 << (8 - i)) == 0 {
            *c = '-';
        }
    }
    for (bit, at, set, unset) in
        [(0o4000, 2, 's', 'S'), (0o2000, 5, 's', 'S'), (0o1000, 8, 't', 'T')]
    {
        if mode & bit != 0 {
            s[at] = if s[at] == '-' { unset } else { set };
        }
    }
    s.into_iter().collect()
}

fn node_json(node: &Node, path: &Path) -> serde_json::Value {
    let mut value = serde_json::json!({
        "message_type": "node",
        "struct_type": "node",
        "name": String::from_utf8_lossy(&node.name),
        "type": kind_label(&node.kind).0,
        "path": path.to_string_lossy(),
        "mode": node.mode,
        "uid": node.uid,
        "gid": node.gid,
        "user": node.user,
        "group": node.group,
        "size": node.size,
        "mtime": super::output::table::time_with_offset(node.mtime_ns, 0).to_rfc3339(),
        "inode": node.inode,
        "links": node.nlink,
    });
    if let NodeKind::Symlink { target } = &node.kind {
        value["link_target"] = String::from_utf8_lossy(target).into();
    }
    // JSON strings hold only UTF-8: a name that is not is also given exactly, as hex.
    let raw = path.as_os_str().as_bytes();
    if std::str::from_utf8(raw).is_err() {
        value["path_hex"] = hex::encode(raw).into();
        value["name_hex"] = hex::encode(&node.name).into();
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_render_like_ls() {
        assert_eq!(mode_string(0o755), "rwxr-xr-x");
        assert_eq!(mode_string(0o4755), "rwsr-xr-x");
        assert_eq!(mode_string(0o1777), "rwxrwxrwt");
        assert_eq!(mode_string(0o2640), "rw-r-S---");
    }

    /// Issue #15: a newline or an escape sequence in a name must not reach a terminal raw.
    #[test]
    fn names_are_escaped_for_terminals() {
        assert_eq!(escaped(b"plain name.txt"), "plain name.txt");
        assert_eq!(escaped(b"two\nlines"), "two\\nlines");
        assert_eq!(escaped(b"\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escaped(b"caf\xc3\xa9 \xff"), "caf\u{e9} \\xff");
        assert_eq!(escaped(b"back\\slash"), "back\\\\slash");
    }
}
