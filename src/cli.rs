//! The command line, as clap types only. Each subcommand's arguments map one-to-one onto the
//! options struct of the engine function that `commands/<name>.rs` calls.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Environment:
  CAIRN_REPOSITORY          the repository, as -r/--repo
  CAIRN_PASSWORD            the password itself
  CAIRN_PASSWORD_FILE       as --password-file
  CAIRN_PASSWORD_COMMAND    as --password-command
  CAIRN_CACHE_DIR           as --cache-dir
  CAIRN_FROM_REPOSITORY, CAIRN_FROM_PASSWORD, CAIRN_FROM_PASSWORD_FILE,
  CAIRN_FROM_PASSWORD_COMMAND   the same for the --from-repo repository (copy, init)
  RUST_LOG                  log filter, overriding -v and -q

Exit codes:
  0    success (also when the reader of the output went away, as in `| head`)
  1    error (the message says what failed and what to do)
  2    wrong command line: unknown option, missing or malformed argument
  3    done with warnings: a backup left out what it could not read (a path that does
       not exist, an unreadable file) or found a --changed-ranges map to have missed
       changes; a command skipped a damaged snapshot or index segment, or could not
       restore every file
  10   repository does not exist
  11   repository is locked
  12   wrong password
  130  interrupted (SIGINT/SIGTERM); uploaded data is kept and reused";

/// Deduplicated, compressed, encrypted backups.
#[derive(Parser, Debug)]
#[command(name = "cairn", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Repository location: a local directory, s3:https://HOST[:PORT]/BUCKET[/PREFIX] or
    /// sftp:[USER@]HOST:/PATH
    #[arg(
        short = 'r',
        long = "repo",
        env = "CAIRN_REPOSITORY",
        global = true,
        value_name = "REPOSITORY"
    )]
    pub repo: Option<String>,
    /// Read the password from the first line of this file
    #[arg(long, env = "CAIRN_PASSWORD_FILE", global = true, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use the first line of its output as the password
    #[arg(long, env = "CAIRN_PASSWORD_COMMAND", global = true, value_name = "COMMAND")]
    pub password_command: Option<String>,
    /// Directory for the local index cache [default: $XDG_CACHE_HOME/cairn]
    #[arg(long, env = "CAIRN_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Print one JSON object per line instead of text (docs/json.md)
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail: backup lists new and modified files (-v), also unchanged ones (-vv); logs
    /// say more
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// When the repository is locked, keep trying this long (10m, 1h) before giving up
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub retry_lock: Option<std::time::Duration>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Settings of the remote backends (S3, SFTP); the local directory ignores them.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Remote repositories")]
pub struct RemoteArgs {
    /// Requests in flight at once (parallel pack uploads)
    #[arg(long, global = true, env = "CAIRN_CONNECTIONS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub connections: u32,
    /// Retries of a request that failed for a temporary reason (timeout, 5xx, throttling),
    /// with exponential backoff and jitter
    #[arg(long, global = true, env = "CAIRN_RETRIES", default_value_t = 8)]
    pub retries: u32,
    /// Upload limit per second (10MiB; a bare number is KiB/s, as restic's)
    #[arg(long, global = true, value_name = "SIZE",
          value_parser = |t: &str| units(t, 1 << 10, 1..=u32::MAX.into()))]
    pub limit_upload: Option<u32>,
    /// Download limit per second (10MiB; a bare number is KiB/s, as restic's)
    #[arg(long, global = true, value_name = "SIZE",
          value_parser = |t: &str| units(t, 1 << 10, 1..=u32::MAX.into()))]
    pub limit_download: Option<u32>,
    /// S3 region [default: AWS_REGION, AWS_DEFAULT_REGION, the profile's, else us-east-1]
    #[arg(long, global = true, env = "CAIRN_S3_REGION")]
    pub s3_region: Option<String>,
    /// Keep no local copies of a remote repository's snapshots and trees (read them each time)
    #[arg(long, global = true, env = "CAIRN_NO_OBJECT_CACHE")]
    pub no_object_cache: bool,
    /// Address S3 buckets as BUCKET.HOST (virtual-hosted style) instead of HOST/BUCKET
    #[arg(long, global = true, env = "CAIRN_S3_VIRTUAL_HOST")]
    pub s3_virtual_host: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a new repository
    Init(InitArgs),
    /// Back up files and directories (or standard input)
    Backup(BackupArgs),
    /// List snapshots
    Snapshots(SnapshotsArgs),
    /// List the contents of a snapshot
    Ls(LsArgs),
    /// Print a repository object (config, snapshot, index, pack, blob)
    Cat(CatArgs),
    /// Restore a snapshot, or a path in it, into a directory
    Restore(RestoreArgs),
    /// Write a file (or a directory as tar) from a snapshot to standard output
    Dump(DumpArgs),
    /// Manage the repository's password keys
    Key(KeyArgs),
    /// Browse snapshots in a read-only FUSE filesystem (runs until unmounted)
    Mount(MountArgs),
    /// Check the repository's structure, and with --read-data every byte of it
    Check(CheckArgs),
    /// Rebuild the index, or rewrite damaged snapshots around lost data
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Remove snapshots: those a retention policy does not keep, or the ones named
    Forget(ForgetArgs),
    /// Change a snapshot's tags or protection
    Tag(TagArgs),
    /// Free the space of data no snapshot references (runs beside backups)
    Prune(PruneArgs),
    /// Remove stale locks (of processes that are gone)
    Unlock(UnlockArgs),
    /// Copy snapshots from another repository (--from-repo) into this one
    Copy(CopyArgs),
    /// Sizes: what the snapshots restore to, and what they take in the repository
    Stats(StatsArgs),
    /// Print the version of cairn and the platform it was built for
    Version,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Only these snapshots (ids, prefixes or `latest`) [default: all the filter selects]
    pub snapshots: Vec<String>,
    /// restore-size: files and bytes as restored; raw-data: unique blobs, their size before
    /// and after compression, and the compression and dedup ratios
    #[arg(long, value_enum, default_value_t = StatsModeArg::RestoreSize)]
    pub mode: StatsModeArg,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum StatsModeArg {
    RestoreSize,
    RawData,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    #[command(flatten)]
    pub tuning: PruneTuning,
    /// Show what would be freed, change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Args, Debug, Clone)]
pub struct PruneTuning {
    /// Repack a pack when more than this share of it is unused (a percentage)
    #[arg(long, default_value = "5%", value_parser = parse_percent, value_name = "PERCENT")]
    pub max_unused: f64,
    /// Repack at most this much per run (500MiB, 2GiB)
    #[arg(long, value_parser = crate::size::parse_size, value_name = "SIZE")]
    pub max_repack_size: Option<u64>,
}

#[derive(Args, Debug)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones (only when no other cairn process runs)
    #[arg(long)]
    pub all: bool,
}

/// A size option counted in `unit` bytes (see [`crate::size::parse_in_units`]).
fn units(text: &str, unit: u64, range: std::ops::RangeInclusive<u64>) -> Result<u32, String> {
    let units = crate::size::parse_in_units(text, unit, range)?;
    u32::try_from(units).map_err(|_| format!("{text:?} is too large"))
}

/// `5%` -> 0.05.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        _ => Err(format!("{text:?}: expected a percentage such as 5%")),
    }
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// Snapshots to remove by id or unique prefix (instead of a policy)
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots (-1: all)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_last: Option<i64>,
    /// Keep the newest snapshot of each of the last N hours that have one (-1: every hour)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_hourly: Option<i64>,
    /// Keep the newest snapshot of each of the last N days that have one (-1: every day)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_daily: Option<i64>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one (-1: every week)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_weekly: Option<i64>,
    /// Keep the newest snapshot of each of the last N months that have one (-1: every month)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_monthly: Option<i64>,
    /// Keep the newest snapshot of each of the last N years that have one (-1: every year)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub keep_yearly: Option<i64>,
    /// Keep every snapshot within this span of the group's newest (1y6m, 14d, 36h)
    #[arg(long, value_name = "SPAN")]
    pub keep_within: Option<crate::forget::CalendarSpan>,
    /// Keep snapshots with this tag (repeatable)
    #[arg(long, value_name = "TAG")]
    pub keep_tag: Vec<String>,
    /// Apply the policy to each group of snapshots with the same of these (host, paths, tags;
    /// "" for one group)
    #[arg(long, default_value = "host,paths", value_name = "FIELDS")]
    pub group_by: crate::forget::GroupBy,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show what would be removed, remove nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Then run prune (with its defaults, or the --max-unused and --max-repack-size given here)
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub prune_tuning: PruneTuning,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// Snapshots: ids or unique prefixes, or `latest`
    #[arg(required = true)]
    pub snapshots: Vec<String>,
    /// Add this tag (repeatable)
    #[arg(long)]
    pub add: Vec<String>,
    /// Remove this tag (repeatable)
    #[arg(long)]
    pub remove: Vec<String>,
    /// Protect from forget: no policy removes the snapshot, and naming it is refused
    #[arg(long, conflicts_with = "unprotect")]
    pub protect: bool,
    /// Lift the protection
    #[arg(long)]
    pub unprotect: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Subcommand, Debug)]
pub enum RepairCommand {
    /// Rebuild the index segments (and the local index) from the pack headers
    Index,
    /// Rewrite snapshots that reference lost data so the rest restores; run after
    /// `check --read-data`, which finds the damaged copies
    Snapshots(RepairSnapshotsArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum DamagedFilesArg {
    Mark,
    Truncate,
    Drop,
}

#[derive(Args, Debug)]
pub struct RepairSnapshotsArgs {
    /// Files that lost data: keep them with zeros in the lost ranges and an extended attribute
    /// user.cairn.damaged naming them (mark), cut them before the first lost byte (truncate),
    /// or leave them out (drop)
    #[arg(long, value_enum, default_value_t = DamagedFilesArg::Mark)]
    pub damaged_files: DamagedFilesArg,
    /// Remove each original snapshot once its repaired copy is saved
    #[arg(long)]
    pub forget: bool,
    /// Show what would be rewritten, write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

/// Snapshot selection shared by commands that take a snapshot.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots of this host (repeatable)
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags (comma-separated: all of them; repeat: any group)
    #[arg(long = "tag", value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Only snapshots that include this path (repeatable)
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

/// The other repository: the source of `copy`, or whose chunker parameters and keys `init
/// --copy-chunker-params` takes.
#[derive(Args, Debug, Clone)]
pub struct FromRepoArgs {
    /// The other repository (a directory, s3:..., sftp:...)
    #[arg(long, env = "CAIRN_FROM_REPOSITORY")]
    pub from_repo: Option<String>,
    /// Read its password from the first line of this file [else CAIRN_FROM_PASSWORD, a prompt]
    #[arg(long, env = "CAIRN_FROM_PASSWORD_FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this shell command for its password
    #[arg(long, env = "CAIRN_FROM_PASSWORD_COMMAND")]
    pub from_password_command: Option<String>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Target pack size (1MiB to 1GiB; a bare number is MiB)
    #[arg(long, default_value = "16MiB", value_parser = |t: &str| units(t, 1 << 20, 1..=1024))]
    pub pack_size: u32,
    /// Default zstd level for new data (0 = no compression)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression: i32,
    /// Average chunk size, a power of two (chunks range from a quarter to four times it; a
    /// bare number is KiB)
    #[arg(long, default_value = "512KiB", value_parser = |t: &str| units(t, 1 << 10, 1..=4096))]
    pub chunk_size: u32,
    /// Average chunk size for large files (VM images) and streams (a bare number is KiB)
    #[arg(long, default_value = "128KiB", value_parser = |t: &str| units(t, 1 << 10, 1..=4096))]
    pub image_chunk_size: u32,
    /// Files of at least this size are cut with --image-chunk-size
    #[arg(long, default_value = "1GiB", value_parser = crate::size::parse_size)]
    pub image_min_size: u64,
    /// Default zstd level for the data of such files and of streams (0 = no compression)
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(0..=22))]
    pub image_compression: i32,
    /// Argon2id memory for the password key (a bare number is KiB)
    #[arg(long, default_value = "64MiB", value_parser = |t: &str| units(t, 1 << 10, 8..=(4 << 20)))]
    pub argon2_memory: u32,
    /// Cut and name data exactly as the --from-repo repository does (its chunker parameters
    /// and keys), so `copy` between the two transfers blobs unchanged and they deduplicate
    #[arg(long, requires = "from_repo")]
    pub copy_chunker_params: bool,
    #[command(flatten)]
    pub from: FromRepoArgs,
    /// Argon2id passes for the password key
    #[arg(long, default_value_t = 3)]
    pub argon2_iterations: u32,
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// Files and directories to back up
    #[arg(required_unless_present = "stdin")]
    pub paths: Vec<PathBuf>,
    /// Tag the snapshot (repeatable; `a,b` adds both)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record [default: this machine's]
    #[arg(long)]
    pub host: Option<String>,
    /// Leave out paths matching this glob (repeatable)
    #[arg(short = 'e', long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// Read exclude patterns from a file, one per line (repeatable)
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Leave out directories tagged with a valid CACHEDIR.TAG
    #[arg(long)]
    pub exclude_caches: bool,
    /// Leave out directories that contain a file with this name (repeatable)
    #[arg(long = "exclude-if-present", value_name = "NAME")]
    pub exclude_if_present: Vec<String>,
    /// Do not cross file-system boundaries
    #[arg(short = 'x', long)]
    pub one_file_system: bool,
    /// Back up standard input as one file
    #[arg(long, conflicts_with = "paths")]
    pub stdin: bool,
    /// Back up the standard output of the command given as PATHS (after `--`) as one file;
    /// the backup fails if the command does
    #[arg(long, conflicts_with = "stdin")]
    pub stdin_from_command: bool,
    /// File name for --stdin and --stdin-from-command
    #[arg(long, default_value = "stdin")]
    pub stdin_filename: String,
    /// Back up the contents of block devices and fifos as files, instead of the device node
    #[arg(long)]
    pub read_special: bool,
    /// JSON list of {"offset", "length"} ranges changed since the parent snapshot, for the one
    /// image backed up (as `qemu-img map --output=json` prints): only the chunks around each
    /// range are read, the rest is taken from the parent. A map that lies corrupts the backup
    /// silently unless --verify-unchanged is given
    #[arg(long, value_name = "FILE")]
    pub changed_ranges: Option<PathBuf>,
    /// With --changed-ranges: read the unchanged pieces too and check them against the parent
    /// (a map that missed a change is reported and the snapshot holds the bytes as read)
    #[arg(long, requires = "changed_ranges")]
    pub verify_unchanged: bool,
    /// Take unchanged files from this snapshot instead of the automatic choice
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,
    /// Read every file, ignoring any parent snapshot
    #[arg(long, conflicts_with = "parent")]
    pub force: bool,
    /// Record this time for the snapshot (RFC 3339, or "YYYY-MM-DD HH:MM:SS" local time)
    #[arg(long)]
    pub time: Option<String>,
    /// Do everything except writing to the repository
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Save no snapshot when nothing changed since the parent snapshot
    #[arg(long)]
    pub skip_if_unchanged: bool,
    /// zstd level for all data of this backup [default: the repository's, for files and images]
    #[arg(long, value_name = "LEVEL", value_parser = clap::value_parser!(i32).range(0..=22))]
    pub compression: Option<i32>,
}

#[derive(Args, Debug)]
pub struct SnapshotsArgs {
    /// Only these snapshots (ids, unique prefixes or `latest`) [default: all the filter selects]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Only the newest N snapshots of each host and set of paths
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
    /// One line per snapshot: id, time, host and tags, without paths and size
    #[arg(short, long)]
    pub compact: bool,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Snapshot: an id, a unique id prefix, or `latest`
    pub snapshot: String,
    /// Directory inside the snapshot to list (recursively)
    pub path: Option<PathBuf>,
    /// Show mode, owner, size and time
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CatKind {
    Config,
    Snapshot,
    Index,
    Pack,
    Blob,
}

#[derive(Args, Debug)]
pub struct CatArgs {
    /// What kind of object to print
    pub kind: CatKind,
    /// Object id (snapshots also take a prefix or `latest`)
    pub id: Option<String>,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum OverwriteArg {
    Always,
    IfChanged,
    Never,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// SNAPSHOT[:PATH]: what to restore (the path may be any bytes)
    pub snapshot: std::ffi::OsString,
    /// Directory to restore into
    #[arg(short, long, required_unless_present = "target_file")]
    pub target: Option<PathBuf>,
    /// Write the one file SNAPSHOT:PATH names into this file or existing block device instead
    /// (holes stay holes in a file; a device gets every byte)
    #[arg(long, conflicts_with_all = ["target", "includes", "excludes"])]
    pub target_file: Option<PathBuf>,
    /// Restore only paths matching this glob (repeatable)
    #[arg(short, long = "include")]
    pub includes: Vec<String>,
    /// Do not restore paths matching this glob (repeatable)
    #[arg(short, long = "exclude")]
    pub excludes: Vec<String>,
    /// What to do with files that already exist in the target
    #[arg(long, value_enum, default_value = "always")]
    pub overwrite: OverwriteArg,
    /// Re-read restored files and check every chunk against its id
    #[arg(long)]
    pub verify: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Snapshots to copy (ids or prefixes, `latest`) [default: every snapshot the filters select]
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    #[command(flatten)]
    pub from: FromRepoArgs,
    /// Say what would be copied, write nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Snapshot: an id, a unique id prefix, or `latest`
    pub snapshot: String,
    /// Path inside the snapshot: a file is written as it is, a directory as a tar stream
    pub path: PathBuf,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct MountArgs {
    /// Empty directory to mount on
    pub mountpoint: PathBuf,
    /// Show only this snapshot (SNAPSHOT or SNAPSHOT:PATH of a directory) at the mount root
    #[arg(long)]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Let other users use the mount (non-root users need user_allow_other in /etc/fuse.conf)
    #[arg(long)]
    pub allow_other: bool,
    /// Memory for decrypted chunks (256MiB, 1GiB)
    #[arg(long, default_value = "256MiB", value_parser = crate::size::parse_size)]
    pub cache_size: u64,
}

/// `4096`, `64K`, `256M`, `2G`: bytes, or KiB/MiB/GiB/TiB with a suffix.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Also read every pack and verify every blob in it
    #[arg(long)]
    pub read_data: bool,
    /// Read only part of the packs: n/t (part n of t; 1/t..t/t cover all), a percentage
    /// (random packs), or a size such as 50G (random packs up to that much)
    #[arg(long, value_name = "SUBSET")]
    pub read_data_subset: Option<crate::check::Subset>,
    /// Skip packs that verified within this long (30d, 12h, 2w): spreads a full read over
    /// several runs, and resumes an interrupted one
    #[arg(long, value_parser = parse_duration, value_name = "AGE")]
    pub max_age: Option<std::time::Duration>,
}

/// A duration such as `30d`, `12h`, `90m`, `2w` or `45s`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let seconds: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => {
            return Err(format!("{text:?}: expected a number and s, m, h, d or w (like 30d)"));
        }
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a number and s, m, h, d or w (like 30d)"))?;
    Ok(std::time::Duration::from_secs(value.saturating_mul(seconds)))
}

#[derive(Args, Debug)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub action: KeyAction,
}

#[derive(Subcommand, Debug)]
pub enum KeyAction {
    /// List key files
    List,
    /// Add a key for another password (asked for, or --new-password-file)
    Add(NewPasswordArgs),
    /// Remove a key file (not the one in use)
    Remove {
        /// Key id
        id: String,
    },
    /// Change the password: add a new key, then remove the one in use
    Passwd(NewPasswordArgs),
}

#[derive(Args, Debug)]
pub struct NewPasswordArgs {
    /// Read the new password from this file
    #[arg(long, env = "CAIRN_NEW_PASSWORD_FILE")]
    pub new_password_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Issue #17: `--help` describes every argument of every command.
    #[test]
    fn every_argument_is_described() {
        let mut missing = Vec::new();
        let mut stack = vec![(String::from("cairn"), Cli::command())];
        while let Some((name, command)) = stack.pop() {
            for arg in command.get_arguments() {
                let builtin = ["help", "version"].contains(&arg.get_id().as_str());
                if arg.get_help().is_none() && !builtin {
                    missing.push(format!("{name} {}", arg.get_id()));
                }
            }
            for sub in command.get_subcommands() {
                stack.push((format!("{name} {}", sub.get_name()), sub.clone()));
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }

    /// Options that an environment variable can give are never shown as required.
    #[test]
    fn no_option_with_an_environment_variable_is_required() {
        let mut stack = vec![Cli::command()];
        while let Some(command) = stack.pop() {
            for arg in command.get_arguments() {
                let env = arg.get_env().is_some();
                assert!(!(env && arg.is_required_set()), "{}", arg.get_id());
            }
            stack.extend(command.get_subcommands().cloned());
        }
    }
}
