//! Signed links: a payload and its HMAC-SHA256 under the service's key, so a link mailed to a
//! member (accept the policy, confirm receipt) cannot be made or altered by anyone else.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Signs payloads for links and checks links that come back.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkSigner(..)")
    }
}

impl LinkSigner {
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    fn signature(&self, payload: &str) -> String {
        // HMAC takes keys of any length; an empty signature never verifies.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .map(|mut mac| {
                mac.update(payload.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            })
            .unwrap_or_default()
    }

    /// `payload.signature`. The payload must not be secret: it travels in the link.
    pub fn sign(&self, payload: &str) -> String {
        format!("{payload}.{}", self.signature(payload))
    }

    /// The payload of a link made by [`LinkSigner::sign`], if its signature matches.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (payload, given) = token.rsplit_once('.')?;
        let expected = self.signature(payload);
        let same = !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
        same.then(|| payload.to_owned())
    }

    /// A link that lets one member accept one policy version until a time:
    /// `policy.member.version.expiry`.
    pub fn policy_link(&self, member_id: i64, version: i32, expires_unix: i64) -> String {
        self.sign(&format!("policy.{member_id}.{version}.{expires_unix}"))
    }

    /// (member id, version) of a policy link while it is valid and unexpired.
    pub fn verify_policy_link(&self, token: &str, now_unix: i64) -> Option<(i64, i32)> {
        let payload = self.verify(token)?;
        // Links mailed before policy links carried their kind have no prefix.
        let mut parts = payload
            .strip_prefix("policy.")
            .unwrap_or(&payload)
            .split('.');
        let member = parts.next()?.parse().ok()?;
        let version = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        (parts.next().is_none() && expires > now_unix).then_some((member, version))
    }

    /// A link that lets one member replace its OpenPGP key until a time: `key.member.expiry`.
    pub fn key_link(&self, member_id: i64, expires_unix: i64) -> String {
        self.sign(&format!("key.{member_id}.{expires_unix}"))
    }

    /// The member of a key link while it is valid and unexpired.
    pub fn verify_key_link(&self, token: &str, now_unix: i64) -> Option<i64> {
        let payload = self.verify(token)?;
        let mut parts = payload.strip_prefix("key.")?.split('.');
        let member = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        (parts.next().is_none() && expires > now_unix).then_some(member)
    }

    /// A receipt link for one member and one revision of a release.
    pub fn receipt_link(&self, release_id: i64, member_id: i64, revision: i32) -> String {
        self.sign(&format!("ack.{release_id}.{member_id}.{revision}"))
    }

    /// (release, member, revision) of a receipt link, if its signature holds.
    pub fn verify_receipt_link(&self, token: &str) -> Option<(i64, i64, i32)> {
        let payload = self.verify(token)?;
        let mut parts = payload.strip_prefix("ack.")?.split('.');
        let release = parts.next()?.parse().ok()?;
        let member = parts.next()?.parse().ok()?;
        let revision = parts.next()?.parse().ok()?;
        parts
            .next()
            .is_none()
            .then_some((release, member, revision))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_links_are_signed_and_expire() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let link = signer.policy_link(7, 2, 2_000);
        assert_eq!(signer.verify_policy_link(&link, 1_000), Some((7, 2)));
        assert_eq!(signer.verify_policy_link(&link, 2_000), None, "expired");
        let other = LinkSigner::new(b"another key another key another k".to_vec());
        assert_eq!(other.verify_policy_link(&link, 1_000), None);
        let forged = link.replacen(".7.", ".8.", 1);
        assert_eq!(signer.verify_policy_link(&forged, 1_000), None);
        assert_eq!(signer.verify_policy_link("garbage", 1_000), None);
    }

    #[test]
    fn key_links_are_signed_expire_and_are_their_own_kind() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let link = signer.key_link(7, 2_000);
        assert_eq!(signer.verify_key_link(&link, 1_999), Some(7));
        assert_eq!(signer.verify_key_link(&link, 2_000), None, "expired");
        assert_eq!(signer.verify_policy_link(&link, 0), None);
        assert_eq!(
            signer.verify_key_link(&signer.policy_link(7, 2_000, 3_000), 0),
            None
        );
        assert_eq!(
            signer.verify_key_link(&link.replacen(".7.", ".8.", 1), 0),
            None
        );
    }

    #[test]
    fn a_link_of_one_kind_is_not_accepted_as_another() {
        let signer = LinkSigner::new(b"0123456789abcdef0123456789abcdef".to_vec());
        let receipt = signer.receipt_link(3, 4, 5);
        assert_eq!(signer.verify_receipt_link(&receipt), Some((3, 4, 5)));
        assert_eq!(signer.verify_policy_link(&receipt, 0), None);
        let policy = signer.policy_link(3, 4, 5);
        assert_eq!(signer.verify_receipt_link(&policy), None);
    }
}
