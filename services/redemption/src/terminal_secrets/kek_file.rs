//! Managing `terminal-kek.json` for a rotation (`redemption kek add|use|retire|status`): add a
//! KEK (not yet sealing, so that every replica can first load it), make it current, and —
//! once `redemption rewrap-secrets` has moved every stored secret to it — retire the old
//! one. Retiring refuses while any stored secret is still sealed under the key, so a key
//! is never dropped while it still opens something.

use anyhow::{bail, Context as _};
use sqlx::PgPool;
use std::path::Path;
use voucher_platform::secrets::{read_json, write_json, KekFile, SecretsError, TERMINAL_KEK};
use voucher_store::pg::terminals;

fn load(dir: &Path) -> anyhow::Result<Option<KekFile>> {
    let path = dir.join(TERMINAL_KEK);
    match read_json::<KekFile>(&path) {
        Ok(file) => Ok(Some(file)),
        Err(SecretsError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn save(dir: &Path, file: &KekFile) -> anyhow::Result<()> {
    let path = dir.join(TERMINAL_KEK);
    file.check(&path)?;
    write_json(&path, file, true)?;
    Ok(())
}

/// Adds a KEK with the next id and returns its id and whether it is current; it seals only
/// once made current (at once with `make_current`, for a single replica). A directory
/// without the file gets one with key 1, current.
///
/// # Errors
/// An unreadable or invalid file, the random source, the write.
pub fn add(dir: &Path, make_current: bool) -> anyhow::Result<(u32, bool)> {
    let Some(mut file) = load(dir)? else {
        save(dir, &KekFile::generate()?)?;
        return Ok((1, true));
    };
    let id = file.add_key()?;
    if make_current {
        file.current = id;
    }
    save(dir, &file)?;
    Ok((id, make_current))
}

/// Makes KEK `id` the one that seals.
///
/// # Errors
/// No file, no such key, the write.
pub fn make_current(dir: &Path, id: u32) -> anyhow::Result<()> {
    let mut file = load(dir)?.context("no terminal-kek.json in the secrets directory")?;
    if !file.keys.iter().any(|k| k.id == id) {
        bail!("there is no key-encryption key {id}");
    }
    file.current = id;
    save(dir, &file)
}

/// Removes KEK `id`, unless it is current or any stored secret is still sealed under it.
///
/// # Errors
/// The refusals above, no file, the database, the write.
pub async fn retire(dir: &Path, pg: &PgPool, id: u32) -> anyhow::Result<()> {
    let mut file = load(dir)?.context("no terminal-kek.json in the secrets directory")?;
    if file.current == id {
        bail!("key-encryption key {id} is current: make another current first (kek use)");
    }
    if !file.keys.iter().any(|k| k.id == id) {
        bail!("there is no key-encryption key {id}");
    }
    let still = terminals::secrets_by_kek(pg)
        .await?
        .into_iter()
        .find(|(kek, _)| kek.and_then(|k| u32::try_from(k).ok()) == Some(id))
        .map_or(0, |(_, n)| n);
    if still > 0 {
        bail!(
            "{still} stored terminal secret(s) are still sealed under key-encryption key {id}: \
             run `redemption rewrap-secrets` first"
        );
    }
    file.keys.retain(|k| k.id != id);
    save(dir, &file)
}

/// The file's ids and current key, and how many stored secrets each KEK sealed.
///
/// # Errors
/// No file, the database.
pub async fn status(dir: &Path, pg: &PgPool) -> anyhow::Result<serde_json::Value> {
    let file = load(dir)?.context("no terminal-kek.json in the secrets directory")?;
    let stored: Vec<serde_json::Value> = terminals::secrets_by_kek(pg)
        .await?
        .into_iter()
        .map(
            |(kek, n)| serde_json::json!({ "kek_id": kek, "plain": kek.is_none(), "terminals": n }),
        )
        .collect();
    Ok(serde_json::json!({
        "current": file.current,
        "keys": file.keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        "stored": stored,
    }))
}
