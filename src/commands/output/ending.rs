//! How a command's end is told: an error (with its hint and exit code) as text or as one JSON
//! line, a wrong command line (exit 2, with a note for restic's options that cairn lacks), a
//! panic (a bug: exit 1, never 101), and a failure to write the results. `main.rs` calls these.

use crate::exit::Exit;

/// The exit status once the command returned: an error writing its results fails it.
pub fn finish(exit: Exit) -> Exit {
    match super::take_write_error() {
        Some(error) => report(&anyhow::Error::new(error).context("cannot write standard output")),
        None => exit,
    }
}

/// Prints an error (with its hint) as text, or as one JSON line with `--json`.
pub fn report(error: &anyhow::Error) -> Exit {
    if error.chain().any(closed_pipe) {
        return Exit::Ok;
    }
    let exit = Exit::for_error(error);
    tell(&format!("{error:#}"), exit, exit.hint_for(error));
    exit
}

/// A broken pipe after stdout's reader went away: not a failure, the command stops quietly
/// with success. One from a network backend is an error.
fn closed_pipe(cause: &(dyn std::error::Error + 'static)) -> bool {
    let broken = cause.downcast_ref::<std::io::Error>();
    super::stdout_closed() && broken.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `error: ...` and `hint: ...` for people, or `{"message_type": "error", ...}` on one line.
fn tell(message: &str, exit: Exit, hint: Option<&str>) {
    if super::json() {
        let line = serde_json::json!({
            "message_type": "error", "message": message, "exit_code": exit as u8, "hint": hint,
        });
        return super::json_message(&line);
    }
    say(&format!("error: {message}"));
    if let Some(hint) = hint {
        say(&format!("hint: {hint}"));
    }
}

/// `--help` and `--version` print and succeed; a wrong command line exits 2, as JSON when
/// `--json` is among the arguments.
pub fn usage_error(error: &clap::Error) -> u8 {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = error.print();
        return error.exit_code() as u8;
    }
    let message = match restic_note(error) {
        Some(note) => note,
        None => error.render().to_string(),
    };
    // JSON is known from the arguments only: the command line did not parse.
    super::set_json(std::env::args().any(|a| a == "--json"));
    let hint = super::json().then_some("see `cairn --help` or `cairn COMMAND --help`");
    tell(message.trim().trim_start_matches("error: "), Exit::Usage, hint);
    Exit::Usage as u8
}

/// Options of restic's that cairn does not take, with what to do instead: clap's own
/// suggestion for them would point at an unrelated option (`--recursive` -> `--retries`).
const RESTIC_OPTIONS: &[(&str, &str)] = &[
    ("--recursive", "cairn ls always lists everything below the path it is given"),
    ("--iexclude", "cairn's excludes are case-sensitive: use --exclude with [Aa] classes"),
    ("--files-from", "cairn takes the paths to back up as arguments"),
    ("--files-from-verbatim", "cairn takes the paths to back up as arguments"),
    ("--files-from-raw", "cairn takes the paths to back up as arguments"),
    ("--no-lock", "cairn's readers take shared locks, which never wait for one another"),
    ("--insecure-no-password", "cairn repositories always have a password"),
];

/// The error for an unknown option that restic has, saying how cairn does it instead.
fn restic_note(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    let name = given.split('=').next().unwrap_or(given);
    let (_, note) = RESTIC_OPTIONS.iter().find(|(option, _)| *option == name)?;
    Some(format!(
        "error: unexpected argument '{given}' found\n\n  note: {name} is restic's; {note}\n\n\
         For more information, try '--help'."
    ))
}

/// A panic is a bug in cairn: say so plainly and ask for a report, in the output's format.
pub fn report_bug(what: &str) {
    let hint = "please report it, with the command line that caused it";
    tell(&format!("internal error (a bug in cairn): {what}"), Exit::Error, Some(hint));
}

fn say(line: &str) {
    super::write_message(format_args!("{line}"));
}
