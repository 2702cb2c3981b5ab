//! `edl openpgp show|export|rotate`: the list's OpenPGP key, which signs every mail. The key
//! is read as the service reads it (`openpgp::list_key`); rotation writes a new one in its
//! place, keeps the old file beside it and records the change in the audit log.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use pgp::types::KeyDetails;

use crate::audit;
use crate::config::{Secret, Settings};
use crate::db::{self, DbError};
use crate::mail::grouped_fingerprint;
use crate::openpgp::list_key::{self, ListKey};

#[derive(Subcommand)]
pub enum OpenPgpCommand {
    /// Print the key's fingerprint, user ID, where it is read from and when it was made
    /// (generating the key first if there is none yet, as `edl serve` would).
    Show,
    /// Print the public key, ASCII-armored, as /openpgp.asc serves it.
    Export,
    /// Make a new key in place of the current one, keeping the old file beside it.
    Rotate,
}

/// How the audit log names changes made from the command line.
const ACTOR: &str = "cli";

pub async fn run(settings: Settings, command: OpenPgpCommand) -> Result<(), String> {
    match command {
        OpenPgpCommand::Show => show(&settings),
        OpenPgpCommand::Export => {
            let key = ListKey::load_or_create(&settings).map_err(|e| e.to_string())?;
            let armored = key.public_armored();
            if armored.is_empty() {
                return Err("the list's public key could not be written out".into());
            }
            print!("{armored}");
            if !armored.ends_with('\n') {
                println!();
            }
            Ok(())
        }
        OpenPgpCommand::Rotate => rotate(settings).await,
    }
}

/// A path as the operator should read it: absolute, so it does not depend on where the
/// command ran.
fn shown(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Where the key lives and what unlocks it: the configured file with the configured
/// passphrase, or the generated file, which has none.
fn location(settings: &Settings) -> (PathBuf, Option<Secret>, &'static str) {
    match &settings.openpgp_key_file {
        Some(path) => (
            path.clone(),
            settings.openpgp_key_passphrase.clone(),
            "EDL_OPENPGP_KEY_FILE",
        ),
        None => (
            list_key::generated_path(&settings.data_dir),
            None,
            "generated at first start, in EDL_DATA_DIR",
        ),
    }
}

fn show(settings: &Settings) -> Result<(), String> {
    let key = ListKey::load_or_create(settings).map_err(|e| e.to_string())?;
    let (_, _, source) = location(settings);
    let public = key.public_key();
    let user_ids: Vec<String> = public
        .details
        .users
        .iter()
        .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
        .collect();
    let created = i64::from(public.primary_key.created_at().as_secs());
    let created = chrono::DateTime::from_timestamp(created, 0)
        .map(|t| crate::releases::calendar::Moment::new(t, settings.timezone).text())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("Fingerprint: {}", grouped_fingerprint(&key.fingerprint));
    println!("User ID:     {}", user_ids.join(", "));
    println!("Read from:   {} ({source})", shown(&key.path).display());
    println!("Created:     {created}");
    println!(
        "Published:   {}",
        settings
            .base_url
            .join("/openpgp.asc")
            .map_or_else(|_| "/openpgp.asc".to_owned(), |u| u.to_string())
    );
    for url in crate::openpgp::wkd::wkd_urls(&settings.mail_from.email)
        .into_iter()
        .flatten()
    {
        println!("             {url}");
    }
    Ok(())
}

async fn rotate(settings: Settings) -> Result<(), String> {
    let (path, passphrase, source) = location(&settings);
    if !path.exists() {
        return Err(format!(
            "there is no key to rotate at {} ({source}); `edl serve` generates one at first start",
            path.display()
        ));
    }
    let old = ListKey::load(&path, passphrase.clone()).map_err(|e| e.to_string())?;
    let kept = path.with_file_name(format!("list-key.{}.asc", old.fingerprint));
    writable(&path)?;
    // The database first: a rotation that cannot be recorded is not made.
    let pool = super::open_database(&settings).await?;

    let new =
        ListKey::generate(&list_key::user_id(&settings), passphrase).map_err(|e| e.to_string())?;
    let staged = stage(&new, &path)?;
    let details = serde_json::json!({
        "old_fingerprint": old.fingerprint,
        "new_fingerprint": new.fingerprint,
        "file": path.display().to_string(),
        "old_key_kept_in": kept.display().to_string(),
    });
    let (target, old_copy, staged_file) = (path.clone(), kept.clone(), staged.file.clone());
    let outcome = db::run(&pool, move |conn| {
        db::write_transaction(conn, |conn| {
            audit::record(conn, ACTOR, "openpgp.key-rotated", "openpgp-key", details)?;
            // The files change last, inside the transaction: if they cannot, nothing is
            // recorded; once they have, only the commit is left.
            keep_copy(&target, &old_copy).map_err(RotateError::Files)?;
            std::fs::rename(&staged_file, &target).map_err(|e| {
                RotateError::Files(format!(
                    "the key file {} cannot be written: {e}",
                    target.display()
                ))
            })?;
            Ok::<_, RotateError>(())
        })
    })
    .await;
    staged.remove();
    outcome.map_err(|e| e.to_string())?;

    println!(
        "Rotated the list's OpenPGP key in {}.",
        shown(&path).display()
    );
    println!("Old fingerprint: {}", grouped_fingerprint(&old.fingerprint));
    println!("New fingerprint: {}", grouped_fingerprint(&new.fingerprint));
    println!(
        "The old key is kept in {} (mode 0600).",
        shown(&kept).display()
    );
    println!(
        "Restart every edl serve and edl worker process: until then they keep signing with the \
         old key and publishing it."
    );
    Ok(())
}

#[derive(Debug, thiserror::Error)]
enum RotateError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Files(String),
}

impl From<diesel::result::Error> for RotateError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// Refuses before anything changes when the key file, or its folder, cannot be written.
fn writable(path: &Path) -> Result<(), String> {
    let refuse = |why: String| {
        Err(format!(
            "the key file {} cannot be written ({why}); the key was not rotated. Make the file \
             and its folder writable by this account, or make a new key yourself and point \
             EDL_OPENPGP_KEY_FILE at it",
            path.display()
        ))
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.permissions().readonly() => refuse("it is read-only".into()),
        Ok(_) => Ok(()),
        Err(e) => refuse(e.to_string()),
    }
}

/// The new key written into a private folder beside the key file, so that moving it into
/// place is one rename on the same file system.
struct Staged {
    dir: PathBuf,
    file: PathBuf,
}

impl Staged {
    fn remove(self) {
        if let Err(error) = std::fs::remove_dir_all(&self.dir) {
            if error.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(%error, dir = %self.dir.display(), "A staging folder of the key rotation could not be removed.");
            }
        }
    }
}

fn stage(key: &ListKey, path: &Path) -> Result<Staged, String> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    let dir = parent.join(format!(".list-key-rotation.{}", std::process::id()));
    let file = dir.join("list-key.asc");
    // `write` makes the folder readable by this account alone and the file mode 0600.
    if let Err(error) = key.write(&file) {
        Staged { dir, file }.remove();
        return Err(format!("{error}; the key was not rotated"));
    }
    Ok(Staged { dir, file })
}

/// Copies the current key file, byte for byte, to `kept` with mode 0600. A copy that is
/// already there from an earlier attempt is kept if it is the same.
fn keep_copy(current: &Path, kept: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("the old key cannot be kept in {}: {e}", kept.display());
    let bytes = std::fs::read(current).map_err(fail)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(kept) {
        Ok(mut file) => {
            file.write_all(&bytes).map_err(fail)?;
            file.sync_all().map_err(fail)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if std::fs::read(kept).map_err(fail)? == bytes {
                Ok(())
            } else {
                Err(format!(
                    "{} already exists and holds another key; move it away first",
                    kept.display()
                ))
            }
        }
        Err(e) => Err(fail(e)),
    }
}
