//! One module per subcommand: each turns its clap arguments into engine options, calls one
//! engine function, and prints the result as a table or as JSON.

mod backup;
mod cat;
mod check;
mod copy;
mod dump;
mod explain;
mod forget;
mod init;
mod key;
mod ls;
mod mount;
pub mod output;
mod prune;
mod repair;
mod restore;
mod snapshots;
mod stats;
mod tag;
mod version;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_format::Repository;
use cairn_format::backend::{Backend, LocalBackend, RemoteBackend, RemoteOptions};
use cairn_format::lock::LockKind;

use crate::cli::{Cli, Command, FilterArgs, FromRepoArgs, Global};
use crate::exit::{Exit, SourceRepository};
use crate::lock::{Holder, LockGuard, acquire};
use crate::password::{Password, PasswordSource};
use crate::select::SnapshotFilter;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Exit> {
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => init::run(global, &args),
        Command::Backup(args) => backup::run(global, &args),
        Command::Snapshots(args) => snapshots::run(global, &args),
        Command::Ls(args) => ls::run(global, &args),
        Command::Cat(args) => cat::run(global, &args),
        Command::Restore(args) => restore::run(global, &args),
        Command::Dump(args) => dump::run(global, &args),
        Command::Key(args) => key::run(global, args),
        Command::Mount(args) => mount::run(global, &args),
        Command::Check(args) => check::run(global, &args),
        Command::Repair(command) => repair::run(global, &command),
        Command::Forget(args) => forget::run(global, &args),
        Command::Tag(args) => tag::run(global, &args),
        Command::Prune(args) => prune::run(global, &args),
        Command::Unlock(args) => prune::run_unlock(global, &args),
        Command::Stats(args) => stats::run(global, &args),
        Command::Copy(args) => copy::run(global, &args),
        Command::Version => Ok(version::run(global)),
    }
}

/// The backend named by `-r`: `s3:...`, `sftp:...`, else a local directory (`local:` optional).
fn backend(global: &Global) -> Result<Arc<dyn Backend>> {
    let Some(location) = global.repo.as_deref() else {
        bail!("no repository given: use -r/--repo or set CAIRN_REPOSITORY");
    };
    let remote = &global.remote;
    let options = RemoteOptions {
        connections: remote.connections as usize,
        retries: remote.retries as usize,
        limit_upload: remote.limit_upload.map(|k| u64::from(k) * 1024),
        limit_download: remote.limit_download.map(|k| u64::from(k) * 1024),
        region: remote.s3_region.clone(),
        virtual_host: remote.s3_virtual_host,
        credentials: None,
    };
    if let Some(spec) = location.strip_prefix("s3:") {
        return Ok(Arc::new(RemoteBackend::s3(spec, &options)?));
    }
    if let Some(spec) = location.strip_prefix("sftp:") {
        return Ok(Arc::new(RemoteBackend::sftp(spec, &options)?));
    }
    let path = location.strip_prefix("local:").unwrap_or(location);
    if let Some((scheme, _)) = path.split_once(':')
        && !scheme.contains('/')
    {
        bail!(
            "repository {location:?}: backend {scheme:?} is not supported; use a local \
             directory, s3: or sftp:"
        );
    }
    Ok(Arc::new(LocalBackend::new(path)))
}

/// `--cache-dir`, else `$XDG_CACHE_HOME/cairn`, else `~/.cache/cairn`.
fn cache_root(global: &Global) -> Result<PathBuf> {
    if let Some(dir) = &global.cache_dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("cairn"));
    }
    let home = std::env::var_os("HOME")
        .context("cannot find a cache directory: set --cache-dir or CAIRN_CACHE_DIR")?;
    Ok(PathBuf::from(home).join(".cache").join("cairn"))
}

fn password(global: &Global, prompt: &str, confirm: bool) -> Result<Password> {
    output::report::end_phase();
    let source = PasswordSource {
        file: global.password_file.as_deref(),
        command: global.password_command.as_deref(),
        env: None,
    };
    source.read(prompt, confirm)
}

/// Opens the repository named by `--from-repo` (`copy`, `init --copy-chunker-params`), with the
/// same remote settings as `-r` and its own password sources.
fn open_source(global: &Global, from: &FromRepoArgs) -> Result<Arc<Repository>> {
    let location = from
        .from_repo
        .clone()
        .context("no source repository given: use --from-repo or set CAIRN_FROM_REPOSITORY")?;
    let mut source_global = Global {
        repo: Some(location),
        password_file: from.from_password_file.clone(),
        password_command: from.from_password_command.clone(),
        ..global.clone()
    };
    source_global.retry_lock = None;
    let backend = backend(&source_global)?;
    let location = backend.location();
    output::report::end_phase();
    let password = PasswordSource {
        file: from.from_password_file.as_deref(),
        command: from.from_password_command.as_deref(),
        env: Some("CAIRN_FROM_PASSWORD"),
    }
    .read(&format!("password for the source repository {location}: "), false)
    .context(SourceRepository { location: location.clone() })?;
    output::report::phase(global, "opening the source repository, deriving key");
    let repo = Repository::open_unsynced(backend, password.as_bytes(), &cache_root(global)?)
        .context(SourceRepository { location })?;
    sync_tolerant(global, &repo)?;
    Ok(Arc::new(repo))
}

/// Opens the repository named on the command line and reads its index, carrying on past
/// segments that do not read (see [`sync_tolerant`]).
fn open(global: &Global) -> Result<Arc<Repository>> {
    let repo = open_unsynced(global)?;
    sync_tolerant(global, &repo)?;
    Ok(repo)
}

/// Opens the repository without reading its index segments (commands that need no index,
/// and those that read it their own way: `check`, `repair`, `backup`, `prune`).
fn open_unsynced(global: &Global) -> Result<Arc<Repository>> {
    let backend = backend(global)?;
    let location = backend.location();
    let password = password(global, &format!("password for {location}: "), false)?;
    output::report::phase(global, "opening repository, deriving key");
    let mut repo = Repository::open_unsynced(backend, password.as_bytes(), &cache_root(global)?)
        .with_context(|| format!("cannot open repository {location}"))?;
    if global.remote.no_object_cache {
        repo.set_object_cache(false);
    }
    Ok(Arc::new(repo))
}

/// Reads the index segments that read. One that does not is warned about (and the command
/// ends with exit 3): what only it lists counts as missing, so a restore of other snapshots
/// still works and a backup stores such data again.
fn sync_tolerant(global: &Global, repo: &Repository) -> Result<()> {
    output::report::phase(global, "loading index");
    let (_, unreadable) = (repo.sync_index_tolerant())
        .with_context(|| format!("cannot read the index of {}", repo.location()))?;
    for (id, error) in unreadable {
        tracing::warn!(
            "index segment {id} is unreadable ({error}); carrying on without it, so blobs only \
             it lists count as missing: `cairn repair index` rebuilds the index from the packs"
        );
        crate::outcome::note_partial();
    }
    Ok(())
}

impl From<&FilterArgs> for SnapshotFilter {
    fn from(args: &FilterArgs) -> Self {
        SnapshotFilter {
            hosts: args.hosts.clone(),
            tags: args.tags.clone(),
            paths: args.paths.clone(),
        }
    }
}

/// A flag set by SIGINT or SIGTERM; a second signal exits at once with 130.
fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register_conditional_shutdown(
            signal,
            Exit::Interrupted as i32,
            flag.clone(),
        )?;
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}

/// Takes a lock for this command, waiting as long as `--retry-lock` says.
fn lock(
    global: &Global,
    repo: &Arc<Repository>,
    kind: LockKind,
    operation: &str,
) -> Result<LockGuard> {
    let holder =
        Holder { hostname: hostname(), username: creation_stamp().1, operation: operation.into() };
    acquire(repo, kind, &holder, global.retry_lock.unwrap_or(Duration::ZERO))
}

/// This machine's host name.
fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Now (ns since the epoch) and the user name, as recorded in new key files.
fn creation_stamp() -> (i64, String) {
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let user = crate::metadata::NameCache::default().user(nix::unistd::getuid().as_raw());
    (now, user)
}
