//! OpenPGP: the list's own signing key, members' keys, and PGP/MIME. Every mail the list sends
//! is signed with the list key; embargoed mail to a member with a usable key is also
//! encrypted to that key. Which mail is encrypted, and what happens without a key, is decided
//! by the features that queue it (`releases::distribution`); this module only does the
//! cryptography and the MIME around it.

pub mod list_key;
pub mod member_key;
pub mod mime;
pub mod wkd;

pub use list_key::{ListKey, OpenPgpError};
pub use member_key::UsableKey;

/// Keys and decryption for tests: a member's key pair made here, and reading what the list
/// sent back with it.
#[cfg(test)]
pub(crate) mod testing {
    use pgp::composed::{
        ArmorOptions, EncryptionCaps, KeyType, Message, SecretKeyParamsBuilder, SignedPublicKey,
        SignedSecretKey, SubkeyParamsBuilder,
    };
    use pgp::crypto::ecc_curve::ECCCurve;
    use pgp::types::Password;
    use rand_core06::OsRng;

    /// An Ed25519 key with a Curve25519 encryption subkey for `user_id`; the armored public
    /// key is what a member would hand in.
    pub fn member_keypair(user_id: &str) -> (SignedSecretKey, String) {
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
            .expect("params")
            .generate(OsRng)
            .expect("key");
        let public = secret
            .to_public_key()
            .to_armored_string(ArmorOptions::default())
            .expect("armor");
        (secret, public)
    }

    /// Decrypts an armored message with `secret` and checks the list's signature inside.
    pub fn decrypt_and_verify(
        armored: &str,
        secret: &SignedSecretKey,
        signer: &SignedPublicKey,
    ) -> Vec<u8> {
        let (message, _) = Message::from_string(armored).expect("an OpenPGP message");
        let mut message = message
            .decrypt(&Password::empty(), secret)
            .expect("decrypts with the member's key");
        if message.is_compressed() {
            message = message.decompress().expect("decompress");
        }
        let plaintext = message.as_data_vec().expect("plaintext");
        message.verify(signer).expect("signed by the list");
        plaintext
    }
}
