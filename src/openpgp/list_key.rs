//! The list's own OpenPGP key: it signs every mail the list sends, and members check those
//! signatures against the key published at `/openpgp.asc` and in the Web Key Directory.
//!
//! Where it comes from: `EDL_OPENPGP_KEY_FILE` (an armored secret key, locked with
//! `EDL_OPENPGP_KEY_PASSPHRASE` if it has a passphrase), or, when that is not set, a key
//! generated at the first start into `EDL_DATA_DIR/openpgp/list-key.asc` with mode 0600.
//! Production mode insists on the configured file.

use std::io::Write;
use std::path::{Path, PathBuf};

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, KeyType, MessageBuilder,
    SecretKeyParamsBuilder, SignedPublicKey, SignedSecretKey,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::crypto::sym::SymmetricKeyAlgorithm;
use pgp::ser::Serialize;
use pgp::types::{KeyDetails, Password};
use rand_core06::OsRng;

use crate::config::{Secret, Settings};
use crate::openpgp::member_key::{EncryptTo, UsableKey};

#[derive(Debug, thiserror::Error)]
pub enum OpenPgpError {
    #[error("the list's OpenPGP key cannot be read from {path}: {why}")]
    Read { path: String, why: String },
    #[error("the list's OpenPGP key cannot be written to {path}: {why}")]
    Write { path: String, why: String },
    #[error("a key is already at {0}")]
    Exists(String),
    #[error("the list's OpenPGP key cannot be used: {0}")]
    Unusable(String),
    #[error("OpenPGP: {0}")]
    Pgp(String),
}

impl From<pgp::errors::Error> for OpenPgpError {
    fn from(error: pgp::errors::Error) -> Self {
        Self::Pgp(error.to_string())
    }
}

/// The list's signing key, unlocked for use.
#[derive(Clone)]
pub struct ListKey {
    /// As stored (locked, if it has a passphrase): what `write` writes.
    secret: SignedSecretKey,
    /// The primary key unlocked once at load, so a signature does not derive the passphrase's
    /// key again.
    signing: pgp::packet::SecretKey,
    public: SignedPublicKey,
    public_armored: String,
    public_binary: Vec<u8>,
    /// Upper-case hex fingerprint of the primary key.
    pub fingerprint: String,
    /// Where it was read from.
    pub path: PathBuf,
}

impl std::fmt::Debug for ListKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListKey")
            .field("fingerprint", &self.fingerprint)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Where the key generated at first start lives.
pub fn generated_path(data_dir: &Path) -> PathBuf {
    data_dir.join("openpgp").join("list-key.asc")
}

impl ListKey {
    /// The configured key, or the one generated earlier, or a new one generated now (only when
    /// no file is configured).
    pub fn load_or_create(settings: &Settings) -> Result<Self, OpenPgpError> {
        let passphrase = settings.openpgp_key_passphrase.clone();
        if let Some(path) = &settings.openpgp_key_file {
            return Self::load(path, passphrase);
        }
        let path = generated_path(&settings.data_dir);
        if path.exists() {
            return Self::load(&path, None);
        }
        let key = Self::generate(&user_id(settings), None)?;
        match key.write(&path) {
            Ok(()) => {}
            // Another process starting at the same moment wrote its key first: use that one,
            // so every process signs with the key on disk.
            Err(OpenPgpError::Exists(_)) => return Self::load(&path, None),
            Err(error) => return Err(error),
        }
        tracing::info!(fingerprint = %key.fingerprint, path = %path.display(), "Generated the list's OpenPGP signing key.");
        Ok(Self { path, ..key })
    }

    /// Reads an armored secret key and checks that it unlocks and can sign.
    pub fn load(path: &Path, passphrase: Option<Secret>) -> Result<Self, OpenPgpError> {
        let text = std::fs::read_to_string(path).map_err(|e| OpenPgpError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let (secret, _) = SignedSecretKey::from_string(&text).map_err(|e| OpenPgpError::Read {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        let key = Self::from_secret(secret, passphrase.as_ref(), path.to_path_buf())?;
        // Sign once, so a key that cannot sign stops the start, not the first mail.
        key.sign_detached(b"edl")
            .map_err(|e| OpenPgpError::Unusable(e.to_string()))?;
        Ok(key)
    }

    /// The key, unlocked with `passphrase` if it is locked, with its public parts read once.
    fn from_secret(
        secret: SignedSecretKey,
        passphrase: Option<&Secret>,
        path: PathBuf,
    ) -> Result<Self, OpenPgpError> {
        let mut signing = secret.primary_key.clone();
        let password = passphrase.map_or_else(Password::empty, |p| Password::from(p.expose()));
        signing.remove_password(&password).map_err(|e| {
            OpenPgpError::Unusable(format!("{e} (is EDL_OPENPGP_KEY_PASSPHRASE right?)"))
        })?;
        let public = secret.to_public_key();
        Ok(Self {
            fingerprint: format!("{:X}", secret.fingerprint()),
            public_armored: public.to_armored_string(ArmorOptions::default())?,
            public_binary: public.to_bytes()?,
            secret,
            signing,
            public,
            path,
        })
    }

    /// A new Ed25519 signing key (the v4 format every GnuPG since 2.1 reads) for `user_id`,
    /// locked with `passphrase` when given.
    pub fn generate(user_id: &str, passphrase: Option<Secret>) -> Result<Self, OpenPgpError> {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id(user_id.to_owned())
            .preferred_hash_algorithms(vec![HashAlgorithm::Sha256, HashAlgorithm::Sha512].into())
            .preferred_symmetric_algorithms(vec![SymmetricKeyAlgorithm::AES256].into())
            .passphrase(passphrase.as_ref().map(|p| p.expose().to_owned()));
        let params = params
            .build()
            .map_err(|e| OpenPgpError::Pgp(e.to_string()))?;
        let secret = params.generate(OsRng)?;
        Self::from_secret(secret, passphrase.as_ref(), PathBuf::new())
    }

    /// Writes the armored secret key to `path`, readable by the service account alone, whole
    /// or not at all, and never over a file that is there ([`OpenPgpError::Exists`]).
    pub fn write(&self, path: &Path) -> Result<(), OpenPgpError> {
        let fail = |e: std::io::Error| OpenPgpError::Write {
            path: path.display().to_string(),
            why: e.to_string(),
        };
        let armored = self.secret.to_armored_string(ArmorOptions::default())?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
            restrict(dir, 0o700).map_err(fail)?;
        }
        let temp = path.with_extension(format!("asc.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp).map_err(fail)?;
        file.write_all(armored.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        restrict(&temp, 0o600).map_err(fail)?;
        // A link, unlike a rename, fails when the name is taken.
        let linked = std::fs::hard_link(&temp, path);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(OpenPgpError::Exists(path.display().to_string()))
            }
            Err(e) => Err(fail(e)),
        }
    }

    /// The key already configured or generated, without generating one.
    pub fn existing(settings: &Settings) -> Result<Option<Self>, OpenPgpError> {
        if let Some(path) = &settings.openpgp_key_file {
            return Self::load(path, settings.openpgp_key_passphrase.clone()).map(Some);
        }
        let path = generated_path(&settings.data_dir);
        if path.exists() {
            Self::load(&path, None).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The public key, ASCII-armored, as `/openpgp.asc` serves it.
    pub fn public_armored(&self) -> &str {
        &self.public_armored
    }

    /// The public key in binary, as the Web Key Directory serves it.
    pub fn public_binary(&self) -> &[u8] {
        &self.public_binary
    }

    pub fn public_key(&self) -> &SignedPublicKey {
        &self.public
    }

    /// An ASCII-armored detached signature over `data`, exactly as given (PGP/MIME signs the
    /// canonical CRLF form of a MIME part, which is what lettre writes).
    pub fn sign_detached(&self, data: &[u8]) -> Result<String, OpenPgpError> {
        let signature = DetachedSignature::sign_binary_data(
            OsRng,
            &self.signing,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
        )?;
        Ok(signature.to_armored_string(ArmorOptions::default())?)
    }

    /// `plaintext` signed by the list and encrypted to `recipient`, as an ASCII-armored
    /// OpenPGP message (RFC 3156 section 6.2: signature and encryption in one message).
    pub fn sign_and_encrypt(
        &self,
        plaintext: Vec<u8>,
        recipient: &UsableKey,
    ) -> Result<String, OpenPgpError> {
        let mut builder = MessageBuilder::from_bytes("", plaintext)
            .seipd_v1(OsRng, SymmetricKeyAlgorithm::AES256);
        builder.sign(&self.signing, Password::empty(), HashAlgorithm::Sha256);
        match recipient.encryption_key() {
            EncryptTo::Subkey(subkey) => builder.encrypt_to_key(OsRng, subkey)?,
            EncryptTo::Primary(key) => builder.encrypt_to_key(OsRng, key)?,
        };
        Ok(builder.to_armored_string(OsRng, ArmorOptions::default())?)
    }
}

/// "Security list <security@example.org>", from the From address.
pub fn user_id(settings: &Settings) -> String {
    settings.mail_from.to_string()
}

fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
    }
    #[cfg(not(unix))]
    {
        let _ = (path, mode);
        Ok(())
    }
}
