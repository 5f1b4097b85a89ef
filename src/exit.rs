//! Exit codes and the errors that choose them. The numbers are part of cairn's interface
//! (README, `--help`): scripts rely on them.

use cairn_format::Error as FormatError;

use crate::outcome::{Interrupted, is_partial};

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

impl Exit {
    /// [`Exit::Incomplete`] instead of success when something was skipped on the way.
    #[must_use]
    pub fn or_partial(self) -> Exit {
        if self == Exit::Ok && is_partial() {
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
