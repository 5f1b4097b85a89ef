//! What the commands print: results on stdout (text, or one JSON object per line with
//! `--json`), messages on stderr, progress and warnings while they run (`report`), and the
//! formatting of sizes, times and tables (`table`).
//!
//! A closed pipe is not an error (`cairn snapshots | head -1`): a line that cannot be written
//! because the reader went away is dropped, and a command that streams stops at its next write
//! (its `io::Error` of kind `BrokenPipe` ends the process quietly with exit 0, `ending.rs`).
//! Any other failure to write stdout (a full disk under `> file`) is kept and fails the command.

pub mod ending;
pub mod json;
pub mod line;
pub mod report;
pub mod table;

use std::fmt;
use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Prints a line of a command's results on stdout; never panics (see the module docs).
macro_rules! outln {
    () => { $crate::commands::output::write_line(format_args!("")) };
    ($($arg:tt)*) => { $crate::commands::output::write_line(format_args!($($arg)*)) };
}

/// Prints a line for people on stderr; never panics, a closed stderr drops it.
macro_rules! errln {
    ($($arg:tt)*) => { $crate::commands::output::write_message(format_args!($($arg)*)) };
}

pub(crate) use {errln, outln};

/// Whether this process prints JSON (`--json`), for the places that learn it late: the panic
/// hook and the log layer.
static JSON: AtomicBool = AtomicBool::new(false);
/// Set when the reader of stdout went away.
static CLOSED: AtomicBool = AtomicBool::new(false);
/// The first failure to write stdout other than a closed pipe.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

pub fn set_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Whether the reader of stdout went away: a command printing a long listing can stop.
pub fn stdout_closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// The first error writing stdout hit other than a closed pipe, taken once at exit.
pub fn take_write_error() -> Option<std::io::Error> {
    FAILED.lock().ok()?.take()
}

/// One line on stdout (the body of [`outln!`]).
pub fn write_line(args: fmt::Arguments) {
    if stdout_closed() {
        return;
    }
    report::end_phase();
    let mut out = std::io::stdout().lock();
    if let Err(error) = writeln!(out, "{args}").and_then(|()| out.flush()) {
        note_write_error(error);
    }
}

/// Records a failed write to stdout: a closed pipe quietly, anything else to fail the command.
pub fn note_write_error(error: std::io::Error) {
    note_closed(&error);
    if error.kind() != std::io::ErrorKind::BrokenPipe
        && let Ok(mut failed) = FAILED.lock()
    {
        failed.get_or_insert(error);
    }
}

/// Standard output for commands that stream (ls, dump, cat): a write after the reader went
/// away fails with `BrokenPipe` and marks stdout closed, which ends the command quietly.
pub struct Stdout;

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        report::end_phase();
        std::io::stdout().lock().write(buf).inspect_err(note_closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().lock().flush().inspect_err(note_closed)
    }
}

fn note_closed(error: &std::io::Error) {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        CLOSED.store(true, Ordering::Relaxed);
    }
}

/// One line on stderr (the body of [`errln!`]).
pub fn write_message(args: fmt::Arguments) {
    report::end_phase();
    let mut err = std::io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.write_all(b"\n"));
}

/// A value as one line of compact JSON on stdout.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) {
    match serde_json::to_string(value) {
        Ok(line) => write_line(format_args!("{line}")),
        Err(error) => note_write_error(std::io::Error::other(error)),
    }
}

/// A value as one line of compact JSON on stderr (errors and warnings with `--json`).
pub fn json_message<T: serde::Serialize + ?Sized>(value: &T) {
    if let Ok(line) = serde_json::to_string(value) {
        write_message(format_args!("{line}"));
    }
}

/// "1 snapshot", "2 snapshots": a count with its noun, singular or plural.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    match (n, noun.strip_suffix('y')) {
        (1, _) => format!("1 {noun}"),
        (_, Some(stem)) if !stem.ends_with(['a', 'e', 'o', 'u']) => format!("{n} {stem}ies"),
        (_, _) if noun.ends_with(['s', 'x']) || noun.ends_with("sh") => format!("{n} {noun}es"),
        _ => format!("{n} {noun}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn counts_agree_with_their_nouns() {
        assert_eq!(count(1u64, "snapshot"), "1 snapshot");
        assert_eq!(count(0u64, "snapshot"), "0 snapshots");
        assert_eq!(count(2u64, "directory"), "2 directories");
        assert_eq!(count(1u64, "directory"), "1 directory");
        assert_eq!(count(3u64, "key"), "3 keys");
        assert_eq!(count(2u64, "index"), "2 indexes");
    }
}
