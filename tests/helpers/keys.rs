//! Members' OpenPGP keys for tests: one key pair per address, made on first use and kept for
//! the test binary's life, so that a member added by a test has a key and a message encrypted
//! to it can be opened as that member would.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use pgp::composed::{
    ArmorOptions, EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubkeyParamsBuilder,
};
use pgp::crypto::ecc_curve::ECCCurve;
use pgp::types::Password;
use rand_core06::OsRng;

type Ring = HashMap<String, (SignedSecretKey, String)>;

fn ring() -> &'static Mutex<Ring> {
    static RING: OnceLock<Mutex<Ring>> = OnceLock::new();
    RING.get_or_init(|| Mutex::new(HashMap::new()))
}

/// A fresh Ed25519 key with a Curve25519 encryption subkey for `user_id`, and its armored
/// public key.
pub fn generate(user_id: &str) -> (SignedSecretKey, String) {
    let mut encryption = SubkeyParamsBuilder::default();
    encryption
        .key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_encrypt(EncryptionCaps::All);
    let mut params = SecretKeyParamsBuilder::default();
    params
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .primary_user_id(user_id.to_owned())
        .subkeys(vec![encryption.build().expect("subkey params")]);
    let secret = params
        .build()
        .expect("key params")
        .generate(OsRng)
        .expect("a key");
    let public = secret
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .expect("armor");
    (secret, public)
}

/// The key pair of `address` (made now if it has none yet).
pub fn of(address: &str) -> (SignedSecretKey, String) {
    let mut ring = ring().lock().expect("keyring");
    ring.entry(address.to_ascii_lowercase())
        .or_insert_with(|| generate(&format!("Security team <{address}>")))
        .clone()
}

/// The armored public key of `address`, as a member hands it in.
pub fn public(address: &str) -> String {
    of(address).1
}

/// The secret key of `address`, if a test made one.
pub fn secret(address: &str) -> Option<SignedSecretKey> {
    ring()
        .lock()
        .expect("keyring")
        .get(&address.to_ascii_lowercase())
        .map(|(secret, _)| secret.clone())
}

/// Decrypts an armored OpenPGP message with `secret`; checks the signature inside when
/// `signer` is given.
pub fn decrypt(
    armored: &str,
    secret: &SignedSecretKey,
    signer: Option<&SignedPublicKey>,
) -> Result<Vec<u8>, String> {
    let (message, _) = Message::from_string(armored).map_err(|e| e.to_string())?;
    let mut message = message
        .decrypt(&Password::empty(), secret)
        .map_err(|e| e.to_string())?;
    if message.is_compressed() {
        message = message.decompress().map_err(|e| e.to_string())?;
    }
    let plaintext = message.as_data_vec().map_err(|e| e.to_string())?;
    if let Some(signer) = signer {
        message.verify(signer).map_err(|e| e.to_string())?;
    }
    Ok(plaintext)
}
