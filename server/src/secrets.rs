//! Functions' secrets, sealed at rest with ChaCha20-Poly1305 under the platform's key: from
//! `VCD_FAAS_SECRET_KEY` (32 bytes, base64), or the key file the platform makes in its data
//! folder (mode 0600) on its first start. The database keeps a sealed check value, so a wrong or
//! missing key at start-up is an error that says so — never a new key over old secrets.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use std::path::{Path, PathBuf};

const KEY_FILE: &str = "secret.key";
/// What the check value seals; it proves the key is the one the database was sealed with.
const CHECK_TEXT: &[u8] = b"vcd-faas secret key check";
const CHECK_CONTEXT: &str = "key-check";
const NONCE_BYTES: usize = 12;

#[derive(Clone)]
pub struct SecretKey {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Where the key came from, for the start-up message.
#[derive(Debug)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    Created(PathBuf),
}

impl SecretKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretKey {
        SecretKey { cipher: ChaCha20Poly1305::new(Key::from_slice(bytes)) }
    }

    /// The key from the setting or the data folder's key file. `may_create`: no secret was ever
    /// sealed (the database has no check value), so a missing key file may be made now.
    pub fn load(setting: Option<&str>, data_dir: &Path, may_create: bool) -> Result<(SecretKey, KeySource), String> {
        if let Some(text) = setting {
            return Ok((Self::parse(text.trim()).map_err(|e| format!("VCD_FAAS_SECRET_KEY: {e}"))?, KeySource::Environment));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok((Self::parse(text.trim()).map_err(|e| format!("{}: {e}", path.display()))?, KeySource::File(path))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                write_private(&path, &BASE64.encode(key)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                Ok((SecretKey { cipher: ChaCha20Poly1305::new(&key) }, KeySource::Created(path)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "the database holds secrets sealed with a key that is not here: restore {} or set VCD_FAAS_SECRET_KEY to the key that sealed them",
                path.display()
            )),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    fn parse(text: &str) -> Result<SecretKey, String> {
        let bytes = BASE64.decode(text).map_err(|_| "not base64: give 32 random bytes in base64 (openssl rand -base64 32)".to_string())?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes; the key is 32 bytes, in base64", b.len()))?;
        Ok(Self::from_bytes(&bytes))
    }

    /// Seals `plain` for `context` (what it belongs to, e.g. `acme/hello`): a copy moved to
    /// another function does not open.
    pub fn seal(&self, plain: &[u8], context: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self.cipher.encrypt(&nonce, Payload { msg: plain, aad: context.as_bytes() }).expect("sealing a buffer in memory");
        BASE64.encode([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, sealed: &str, context: &str) -> Result<Vec<u8>, String> {
        let bytes = BASE64.decode(sealed).map_err(|_| "sealed value is not base64".to_string())?;
        if bytes.len() < NONCE_BYTES {
            return Err("sealed value is too short".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: context.as_bytes() })
            .map_err(|_| format!("a sealed value of {context} does not open with this key"))
    }

    /// The check value a new database stores.
    pub fn check_value(&self) -> String {
        self.seal(CHECK_TEXT, CHECK_CONTEXT)
    }

    /// Whether this key is the one that sealed `check`.
    pub fn verify(&self, check: &str) -> Result<(), String> {
        match self.open(check, CHECK_CONTEXT) {
            Ok(text) if text == CHECK_TEXT => Ok(()),
            _ => Err("the secret key does not open this database's secrets: it is not the key that sealed them \
                      (restore the right secret.key or VCD_FAAS_SECRET_KEY; a new key would lose every secret)"
                .into()),
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_key_and_for_their_owner() {
        let key = SecretKey::from_bytes(&[7; 32]);
        let sealed = key.seal(b"hunter2", "acme/hello");
        assert!(!sealed.contains("hunter2"));
        assert_eq!(key.open(&sealed, "acme/hello").unwrap(), b"hunter2");
        assert!(key.open(&sealed, "other/hello").is_err(), "moved to another function");
        assert!(SecretKey::from_bytes(&[8; 32]).open(&sealed, "acme/hello").is_err(), "another key");
        assert!(key.verify(&key.check_value()).is_ok());
        assert!(SecretKey::from_bytes(&[8; 32]).verify(&key.check_value()).is_err());
    }

    #[test]
    fn the_key_file_is_made_once_private_and_never_replaced() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        assert!(SecretKey::load(None, dir.path(), false).is_err(), "no key and secrets exist: an error, not a new key");
        let (key, source) = SecretKey::load(None, dir.path(), true).unwrap();
        assert!(matches!(source, KeySource::Created(_)));
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, source) = SecretKey::load(None, dir.path(), true).unwrap();
        assert!(matches!(source, KeySource::File(_)));
        assert!(again.verify(&key.check_value()).is_ok(), "the same key is read back");
        assert!(SecretKey::load(Some("short"), dir.path(), true).unwrap_err().contains("VCD_FAAS_SECRET_KEY"));
    }
}
