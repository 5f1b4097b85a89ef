//! `cairn mount`: checks the mountpoint, opens the repository and the snapshot list before
//! mounting (so a wrong password or a broken repository leaves nothing half-mounted), then
//! serves the filesystem in the foreground until SIGINT, SIGTERM or `fusermount3 -u`.

use crate::commands::output::errln;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_format::Repository;
use cairn_format::tree::{Node, NodeKind};
use cairn_fuse::{CairnFs, FsOptions, LiveCatalog, Mount, MountOptions, MountRoot, Unmounter};

use super::explain::Chosen;
use super::open;
use super::output::json_line;
use crate::cli::{Global, MountArgs};
use crate::exit::Exit;
use crate::select::{SnapshotFilter, split_reference};

/// How often the whole-repository view re-reads the snapshot list.
const CATALOG_TTL: Duration = Duration::from_secs(2);
/// Kernel request threads: enough that slow reads never hold up `ls` elsewhere.
const REQUEST_THREADS: usize = 8;

pub fn run(global: &Global, args: &MountArgs) -> Result<Exit> {
    check_mountpoint(&args.mountpoint)?;
    crate::allocator::limit_arenas();
    let repo = open(global)?;
    let root = mount_root(&repo, args)?;
    let options = fs_options(args);
    let location = repo.location();
    let fs = CairnFs::new(repo, root, options).context("cannot start the mount's threads")?;
    let mount_options = MountOptions {
        allow_other: args.allow_other,
        threads: REQUEST_THREADS,
        source: format!("cairn:{location}"),
    };
    let mountpoint = args.mountpoint.display().to_string();
    let mut mount = Mount::new(fs, &args.mountpoint, &mount_options)
        .map_err(|error| mount_failure(&mountpoint, &error))?;
    unmount_on_signal(mount.unmounter(), args.mountpoint.clone())?;
    announce(global, &location, &mountpoint);
    mount.run().with_context(|| format!("serving the mount on {mountpoint}"))?;
    Ok(Exit::Ok)
}

/// One snapshot (or a path in it) at the root, or every snapshot under `snapshots/` and
/// the other listings, kept up to date.
fn mount_root(repo: &Arc<Repository>, args: &MountArgs) -> Result<MountRoot> {
    let filter = SnapshotFilter::from(&args.filter);
    Ok(match &args.snapshot {
        Some(reference) => MountRoot::Directory(snapshot_directory(repo, reference, &filter)?),
        None => MountRoot::Repository(LiveCatalog::load(
            repo.clone(),
            Box::new(move |snapshot| filter.matches(snapshot)),
            CATALOG_TTL,
        )?),
    })
}

fn fs_options(args: &MountArgs) -> FsOptions {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    FsOptions {
        cache_bytes: args.cache_size,
        prefetch_workers: (2 * cores).max(4),
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

/// Why the kernel mount failed, and what to do about it.
fn mount_failure(mountpoint: &str, error: &std::io::Error) -> anyhow::Error {
    let advice = match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            "/dev/fuse is not usable by this user: run as root, or have the administrator make \
             /dev/fuse accessible (mode 0666 on most systems) and install fuse3"
        }
        std::io::ErrorKind::NotFound => {
            "FUSE is missing: install fuse3 (fusermount3) and load the fuse kernel module"
        }
        _ => "check that FUSE works here (/dev/fuse, fusermount3 from the fuse3 package)",
    };
    anyhow::anyhow!("cannot mount on {mountpoint}: {error}; {advice}")
}

fn check_mountpoint(path: &Path) -> Result<()> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => bail!(
            "mountpoint {shown}: a previous mount there is dead ({e}); clean it up with `fusermount3 -u {shown}`"
        ),
        Err(e) => bail!("mountpoint {shown}: {e}; create an empty directory to mount on"),
    };
    if !meta.is_dir() {
        bail!("mountpoint {shown} is not a directory");
    }
    let mut entries =
        std::fs::read_dir(path).with_context(|| format!("cannot list mountpoint {shown}"))?;
    if entries.next().is_some() {
        bail!(
            "mountpoint {shown} is not empty (or already mounted): use an empty directory, so nothing is hidden"
        );
    }
    Ok(())
}

/// The directory `SNAPSHOT[:PATH]` names, as the mount root.
fn snapshot_directory(repo: &Repository, reference: &str, filter: &SnapshotFilter) -> Result<Node> {
    let (snap, path) = split_reference(std::ffi::OsStr::new(reference))?;
    let chosen = Chosen::resolve(repo, snap, filter.clone())?;
    let (id, snapshot) = (&chosen.id, &chosen.snapshot);
    let node = match path {
        Some(path) => {
            let found = crate::dump::find_node(repo, snapshot, path);
            found.map_err(|e| chosen.explain(repo, e))?
        }
        None => None,
    };
    match node {
        None => Ok(cairn_fuse::snapshot_root(&id.short(), snapshot)),
        Some(node @ Node { kind: NodeKind::Directory { .. }, .. }) => Ok(node),
        Some(_) => bail!(
            "{reference} is not a directory: mount its directory, or use `cairn dump` or `cairn restore` for one file"
        ),
    }
}

/// The first SIGINT or SIGTERM unmounts; if the mount is busy it is detached lazily (it
/// leaves the namespace now and ends when the last open file is closed).
fn unmount_on_signal(mut unmounter: Unmounter, mountpoint: PathBuf) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new().name("cairn-unmount".into()).spawn(move || {
        if signals.forever().next().is_none() {
            return;
        }
        if let Err(error) = unmounter.unmount() {
            tracing::warn!(%error, "mount busy; detaching it lazily");
            let detached = std::process::Command::new("fusermount3")
                .args(["-u", "-z", "--"])
                .arg(&mountpoint)
                .status();
            if !detached.is_ok_and(|s| s.success()) {
                errln!(
                    "cairn: cannot unmount {}: {error}; run `fusermount3 -u -z {}`",
                    mountpoint.display(),
                    mountpoint.display()
                );
            }
        }
    })?;
    Ok(())
}

fn announce(global: &Global, location: &str, mountpoint: &str) {
    if global.json {
        #[derive(serde::Serialize)]
        struct Mounted<'a> {
            message_type: &'static str,
            repository: &'a str,
            mountpoint: &'a str,
        }
        json_line(&Mounted { message_type: "mounted", repository: location, mountpoint });
        return;
    }
    if !global.quiet {
        errln!(
            "mounted {location} on {mountpoint}; stop with Ctrl-C or `fusermount3 -u {mountpoint}`"
        );
    }
}
