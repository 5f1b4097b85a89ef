//! Exit codes and the errors that choose them. The numbers are part of cairn's interface
//! (README, `--help`): scripts rely on them.

use cairn_format::Error as FormatError;

use crate::outcome::{Interrupted, is_partial};

/// Context of an error opening the other repository (`copy --from-repo`), so that the hint
/// names the source's options instead of `-r`'s.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the source repository {location} (--from-repo)")]
pub struct SourceRepository {
    pub location: String,
}

/// Every exit status cairn uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    /// The command line is wrong: an unknown option, a missing or malformed argument.
    Usage = 2,
    /// Done, with warnings: a backup wrote a snapshot but left out a missing path or an
    /// unreadable file (or found a `--changed-ranges` map to have missed changes); any command
    /// skipped a damaged snapshot or index segment. (A restore that could not write every file
    /// is an error, 1: its target is incomplete.)
    Incomplete = 3,
    NoRepository = 10,
    /// Another process holds a lock this command cannot share.
    Locked = 11,
    WrongPassword = 12,
    Interrupted = 130,
}

impl Exit {
    /// [`Exit::Incomplete`] instead of success when something was skipped on the way.
    #[must_use]
    pub fn or_partial(self) -> Exit {
        if self == Exit::Ok && is_partial() { Exit::Incomplete } else { self }
    }

    /// The exit status for an error, from the first cause in its chain that decides one.
    pub fn for_error(error: &anyhow::Error) -> Exit {
        error.chain().find_map(decided_by).unwrap_or(Exit::Error)
    }

    /// The hint printed after the error, saying what to do next: about `--from-repo` and its
    /// password when the source repository of `copy` is the one that failed to open.
    pub fn hint_for(self, error: &anyhow::Error) -> Option<&'static str> {
        let source = error.downcast_ref::<SourceRepository>().is_some();
        Some(match (self, source) {
            (Exit::NoRepository, false) => {
                "create one with `cairn init`, or check -r/--repo and CAIRN_REPOSITORY"
            }
            (Exit::NoRepository, true) => "check --from-repo and CAIRN_FROM_REPOSITORY",
            (Exit::WrongPassword, false) => {
                "check CAIRN_PASSWORD, --password-file or --password-command"
            }
            (Exit::WrongPassword, true) => {
                "that is the source repository's password: check CAIRN_FROM_PASSWORD, \
                 --from-password-file or --from-password-command"
            }
            _ => return None,
        })
    }
}

/// The exit status one cause of an error decides, if it decides one.
fn decided_by(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if cause.is::<Interrupted>() {
        return Some(Exit::Interrupted);
    }
    if cause.is::<crate::lock::LockConflict>() {
        return Some(Exit::Locked);
    }
    match cause.downcast_ref::<FormatError>()? {
        FormatError::RepositoryNotFound { .. } => Some(Exit::NoRepository),
        FormatError::WrongPassword { .. } => Some(Exit::WrongPassword),
        _ => None,
    }
}
