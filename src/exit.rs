//! Exit codes and the errors that choose them. The numbers are part of cairn's interface
//! (README, `--help`): scripts rely on them.

use cairn_format::Error as FormatError;

/// Every exit status cairn uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Error = 1,
    /// The backup wrote a snapshot, with warnings: unreadable files left out, or a
    /// `--changed-ranges` map found to have missed changes.
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
