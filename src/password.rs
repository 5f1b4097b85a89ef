//! Where passwords come from, in order: `--password-file`/`CAIRN_PASSWORD_FILE`,
//! `--password-command`/`CAIRN_PASSWORD_COMMAND`, `CAIRN_PASSWORD`, then a no-echo prompt
//! when standard input is a terminal. Never from the command line itself, where other users
//! could read it in the process list.

use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

/// A password that is wiped from memory when dropped.
pub type Password = Zeroizing<String>;

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
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read password file {}", file.display()))?,
            );
            return Ok(first_line(&text));
        }
        if let Some(command) = self.command {
            return run_command(command);
        }
        if let Ok(password) = std::env::var(self.env.unwrap_or("CAIRN_PASSWORD")) {
            return Ok(Zeroizing::new(password));
        }
        if std::io::stdin().is_terminal() {
            return if confirm {
                prompt_new(prompt)
            } else {
                prompt_once(prompt)
            };
        }
        bail!(
            "no password given: set CAIRN_PASSWORD, --password-file or --password-command (no terminal to ask on)"
        )
    }
}

fn first_line(text: &str) -> Password {
    Zeroizing::new(text.lines().next().unwrap_or_default().to_string())
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
    let text = Zeroizing::new(String::from_utf8_lossy(&stdout).into_owned());
    Ok(first_line(&text))
}

fn prompt_once(prompt: &str) -> Result<Password> {
    Ok(Zeroizing::new(rpassword::prompt_password(prompt)?))
}

/// Asks twice for a new password on the terminal.
pub fn prompt_new(prompt: &str) -> Result<Password> {
    let password = prompt_once(prompt)?;
    if *prompt_once("enter the password again: ")? != *password {
        bail!("the passwords do not match");
    }
    if password.is_empty() {
        bail!("an empty password is not allowed");
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
        let source = PasswordSource {
            file: Some(&file),
            ..PasswordSource::default()
        };
        assert_eq!(source.read("", false).unwrap().as_str(), "secret");
        let source = PasswordSource {
            command: Some("echo from-command"),
            ..PasswordSource::default()
        };
        assert_eq!(source.read("", false).unwrap().as_str(), "from-command");
        let failing = PasswordSource {
            command: Some("exit 3"),
            ..PasswordSource::default()
        };
        assert!(failing.read("", false).is_err());
    }
}
