//! The saved login: the portal's address, who signed in and their token, in a JSON file only
//! its owner may read (mode 0600). No password is ever written.

use super::error::{CliError, CliResult};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Names the config file instead of the default.
pub const CONFIG_ENV: &str = "VCD_FAAS_CLI_CONFIG";

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct SavedLogin {
    /// The portal's address, without a trailing `/`.
    pub url: String,
    pub org: String,
    pub username: String,
    pub token: String,
    /// The token's id, to revoke it on logout.
    pub token_id: i64,
    /// Unix ms.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// `$VCD_FAAS_CLI_CONFIG`, else `$XDG_CONFIG_HOME/vcd-faas/cli.json`, else
/// `~/.config/vcd-faas/cli.json`.
pub fn config_path() -> CliResult<PathBuf> {
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => PathBuf::from(home).join(".config"),
            None => return Err(CliError::Usage(format!("neither HOME nor {CONFIG_ENV} is set: set {CONFIG_ENV} to the file the login is kept in"))),
        },
    };
    Ok(base.join("vcd-faas").join("cli.json"))
}

/// The saved login, or why the user must sign in first.
pub fn load() -> CliResult<SavedLogin> {
    let path = config_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(CliError::NotSignedIn("not signed in: run `vcd-faas fn login --url <portal> --org <org> --user <name>` first".into()))
        }
        Err(e) => return Err(CliError::io("read the login file", &path, e)),
    };
    serde_json::from_str(&text).map_err(|e| {
        CliError::NotSignedIn(format!("the login file {} is not readable ({e}): run `vcd-faas fn login` again", path.display()))
    })
}

/// Writes the login with mode 0600 from its first byte: a new file next to the old one, then
/// renamed over it, so a reader never sees half a file and the token is never world-readable.
pub fn save(login: &SavedLogin) -> CliResult<PathBuf> {
    let path = config_path()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| CliError::io("make the folder", dir, e))?;
        }
    }
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = write_private(&temporary, &serde_json::to_vec_pretty(login).expect("a login serializes"));
    if let Err(e) = written.and_then(|()| std::fs::rename(&temporary, &path)) {
        let _ = std::fs::remove_file(&temporary);
        return Err(CliError::io("write the login file", &path, e));
    }
    Ok(path)
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    // The mode given at creation is narrowed by the umask, never widened; set it exactly.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Forgets the login; true when there was one.
pub fn remove() -> CliResult<bool> {
    let path = config_path()?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::io("remove the login file", &path, e)),
    }
}
