//! Where passwords come from, in order: `--password-file`/`CAIRN_PASSWORD_FILE`,
//! `--password-command`/`CAIRN_PASSWORD_COMMAND`, `CAIRN_PASSWORD`, then a no-echo prompt
//! when standard input is a terminal. Never from the command line itself, where other users
//! could read it in the process list.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// A password (any bytes: a variable need not hold UTF-8) wiped from memory when dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The configured password sources.
#[derive(Clone, Debug, Default)]
pub struct PasswordSource<'a> {
    pub file: Option<&'a Path>,
    pub command: Option<&'a str>,
    /// The variable that may hold the password; `CAIRN_PASSWORD` when `None`.
    pub env: Option<&'a str>,
}

impl PasswordSource<'_> {
    /// Reads the password; `confirm` asks twice at a prompt (for new passwords).
    pub fn read(&self, prompt: &str, confirm: bool) -> Result<Password> {
        if let Some(file) = self.file {
            let text = Zeroizing::new(
                std::fs::read(file)
                    .with_context(|| format!("cannot read password file {}", file.display()))?,
            );
            return Ok(first_line(&text));
        }
        if let Some(command) = self.command {
            return run_command(command);
        }
        if let Some(password) = std::env::var_os(self.env.unwrap_or("CAIRN_PASSWORD")) {
            return Ok(Password::new(password.into_vec()));
        }
        if std::io::stdin().is_terminal() {
            return if confirm { prompt_new(prompt) } else { prompt_once(prompt) };
        }
        match self.env {
            Some(variable) => bail!(
                "no password given for the source repository: set {variable}, \
                 --from-password-file or --from-password-command (no terminal to ask on)"
            ),
            None => bail!(
                "no password given: set CAIRN_PASSWORD, --password-file or --password-command \
                 (no terminal to ask on)"
            ),
        }
    }
}

/// The first line of `text`, without its line ending.
fn first_line(text: &[u8]) -> Password {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    Password::new(line.strip_suffix(b"\r").unwrap_or(line).to_vec())
}

fn run_command(command: &str) -> Result<Password> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run password command {command:?}"))?;
    let stdout = Zeroizing::new(output.stdout);
    if !output.status.success() {
        bail!("password command {command:?} failed with {}", output.status);
    }
    let password = first_line(&stdout);
    if password.is_empty() {
        bail!("password command {command:?} printed no password");
    }
    Ok(password)
}

fn prompt_once(prompt: &str) -> Result<Password> {
    Ok(Password::new(rpassword::prompt_password(prompt)?.into_bytes()))
}

/// Asks twice for a new password on the terminal.
pub fn prompt_new(prompt: &str) -> Result<Password> {
    let password = prompt_once(prompt)?;
    if prompt_once("enter the password again: ")? != password {
        bail!("the passwords do not match");
    }
    refuse_empty(password)
}

/// A new password must not be empty: it would protect nothing.
pub fn refuse_empty(password: Password) -> Result<Password> {
    if password.is_empty() {
        bail!("an empty password is not allowed: it would protect nothing");
    }
    Ok(password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_command_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "secret\nignored\n").unwrap();
        let source = PasswordSource { file: Some(&file), ..PasswordSource::default() };
        assert_eq!(source.read("", false).unwrap().as_bytes(), b"secret");
        let source =
            PasswordSource { command: Some("echo from-command"), ..PasswordSource::default() };
        assert_eq!(source.read("", false).unwrap().as_bytes(), b"from-command");
        let failing = PasswordSource { command: Some("exit 3"), ..PasswordSource::default() };
        assert!(failing.read("", false).is_err());
        // Issue #15: a command that prints nothing is named, not taken for a wrong password.
        let silent = PasswordSource { command: Some("true"), ..PasswordSource::default() };
        let error = silent.read("", false).unwrap_err().to_string();
        assert!(error.contains("printed no password"), "{error}");
    }
}
