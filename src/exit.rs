//! Exit codes and the errors that choose them. The numbers are part of cairn's interface
//! (README, `--help`): scripts rely on them.

use std::sync::atomic::{AtomicBool, Ordering};

use cairn_format::Error as FormatError;

/// Set when a command skipped something it could not read (a damaged snapshot, an index
/// segment) and otherwise finished: its success is then reported as [`Exit::Incomplete`].
static PARTIAL: AtomicBool = AtomicBool::new(false);

/// Records that this command's result is partial (see [`Exit::or_partial`]).
pub fn note_partial() {
    PARTIAL.store(true, Ordering::Relaxed);
}

/// Every exit status cairn uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    /// Done, with warnings: a backup wrote a snapshot but left unreadable files out (or found
    /// a `--changed-ranges` map to have missed changes); any command skipped a damaged
    /// snapshot or index segment, or could not restore every file.
    Incomplete = 3,
    NoRepository = 10,
    /// Another process holds a lock this command cannot share.
    Locked = 11,
    WrongPassword = 12,
    Interrupted = 130,
}

/// The operation was stopped by SIGINT or SIGTERM after flushing what it had written.
#[derive(Debug, thiserror::Error)]
#[error("interrupted; everything uploaded so far was saved and will be reused by the next run")]
pub struct Interrupted;

impl Exit {
    /// [`Exit::Incomplete`] instead of success when something was skipped on the way.
    #[must_use]
    pub fn or_partial(self) -> Exit {
        if self == Exit::Ok && PARTIAL.load(Ordering::Relaxed) {
            Exit::Incomplete
        } else {
            self
        }
    }

    /// The exit status for an error, from the first cause in its chain that decides one.
    pub fn for_error(error: &anyhow::Error) -> Exit {
        for cause in error.chain() {
            if cause.is::<Interrupted>() {
                return Exit::Interrupted;
            }
            if cause.is::<crate::lock::LockConflict>() {
                return Exit::Locked;
            }
            match cause.downcast_ref::<FormatError>() {
                Some(FormatError::RepositoryNotFound { .. }) => return Exit::NoRepository,
                Some(FormatError::WrongPassword { .. }) => return Exit::WrongPassword,
                _ => {}
            }
        }
        Exit::Error
    }

    /// A hint printed after the error message, telling the user what to do next.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Exit::NoRepository => {
                Some("create one with `cairn init`, or check -r/--repo and CAIRN_REPOSITORY")
            }
            Exit::WrongPassword => {
                Some("check CAIRN_PASSWORD, --password-file or --password-command")
            }
            _ => None,
        }
    }
}
