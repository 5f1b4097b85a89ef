//! `cairn key list|add|remove|passwd`

use crate::commands::output::outln;
use anyhow::Result;
use cairn_format::crypto::KdfParams;
use cairn_format::{KeyId, Repository};

use super::output::json_line;
use super::output::table::{self, render};
use super::{creation_stamp, hostname, open_unsynced};
use crate::cli::{Global, KeyAction, KeyArgs, NewPasswordArgs};
use crate::exit::Exit;
use crate::password::{Password, PasswordSource, prompt_new};

pub fn run(global: &Global, args: KeyArgs) -> Result<Exit> {
    let repo = open_unsynced(global)?;
    match args.action {
        KeyAction::List => list(global, &repo)?,
        KeyAction::Add(new) => {
            let id = add(&repo, &new)?;
            report(global, "added", "added key", &id);
        }
        KeyAction::Remove { id } => {
            let id = find_key(&repo, &id)?;
            repo.remove_key(&id)?;
            report(global, "removed", "removed key", &id);
        }
        KeyAction::Passwd(new) => {
            let id = change_password(&repo, &new)?;
            report(global, "passwd", "password changed; new key", &id);
        }
    }
    Ok(Exit::Ok)
}

fn list(global: &Global, repo: &Repository) -> Result<()> {
    let keys = repo.keys()?;
    let current = repo.key_id();
    if global.json {
        for (id, k) in &keys {
            json_line(&serde_json::json!({
                "message_type": "key", "id": id, "current": *id == current,
                "hostname": k.hostname, "username": k.username,
                "created": table::time_with_offset(k.created_ns, 0).to_rfc3339(), "kdf": k.kdf,
            }));
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = (keys.iter())
        .map(|(id, k)| {
            let mark = if *id == current { "*" } else { " " };
            vec![
                format!("{mark}{}", id.short()),
                k.username.clone(),
                k.hostname.clone(),
                table::time(k.created_ns),
            ]
        })
        .collect();
    outln!("{}", render(&[" ID", "User", "Host", "Created"], &rows));
    Ok(())
}

fn change_password(repo: &Repository, new: &NewPasswordArgs) -> Result<KeyId> {
    let password = new_password(new)?;
    let (now, user) = creation_stamp();
    let id =
        repo.change_password(password.as_bytes(), KdfParams::default(), hostname(), user, now)?;
    Ok(id)
}

fn new_password(args: &NewPasswordArgs) -> Result<Password> {
    let password = match &args.new_password_file {
        Some(file) => PasswordSource { file: Some(file), command: None, env: None }.read("", false),
        // CAIRN_PASSWORD holds the current password, so a new one comes from a file or a prompt.
        None if std::io::IsTerminal::is_terminal(&std::io::stdin()) => prompt_new("new password: "),
        None => {
            anyhow::bail!("give the new password with --new-password-file (no terminal to ask on)")
        }
    }?;
    crate::password::refuse_empty(password)
}

fn add(repo: &cairn_format::Repository, args: &NewPasswordArgs) -> Result<KeyId> {
    let password = new_password(args)?;
    let (now, user) = creation_stamp();
    Ok(repo.add_key(password.as_bytes(), KdfParams::default(), hostname(), user, now)?)
}

fn find_key(repo: &cairn_format::Repository, prefix: &str) -> Result<KeyId> {
    let matches: Vec<KeyId> = repo
        .keys()?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.to_hex().starts_with(prefix))
        .collect();
    match matches.as_slice() {
        [id] => Ok(*id),
        [] => anyhow::bail!("no key matches {prefix:?} (see `cairn key list`)"),
        _ => anyhow::bail!("{prefix:?} matches several keys; give more digits"),
    }
}

/// What a key command did: `{"message_type": "key", "action": "added", "id": ...}`, or the
/// sentence for people ("added key 1a2b3c4d").
fn report(global: &Global, action: &str, sentence: &str, id: &KeyId) {
    if global.json {
        json_line(&serde_json::json!({ "message_type": "key", "action": action, "id": id }));
    } else if !global.quiet {
        outln!("{sentence} {}", id.short());
    }
}
