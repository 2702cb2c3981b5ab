//! A member's public key: whether embargoed mail can be encrypted to it now, and to which of
//! its (sub)keys. The membership check at application time and the mailing at send time ask
//! the same question here, so a key that expired or was revoked since the application is
//! refused when it matters.

use chrono::{DateTime, Utc};
use pgp::composed::{Deserializable, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{KeyFlags, Signature, SignatureType};
use pgp::types::{KeyDetails, Tag, Timestamp};

/// A public key with a few subkeys and signatures is a few KiB; far more is not a key we want
/// to parse on a request thread.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// A key that embargoed mail can be encrypted to now.
#[derive(Debug, Clone)]
pub struct UsableKey {
    pub key: SignedPublicKey,
    /// The primary key's fingerprint, upper-case hex.
    pub fingerprint: String,
    /// When the key stops being usable for encryption: the earlier of the primary key's expiry
    /// and the chosen encryption key's. `None` when neither expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The subkey mail is encrypted to; `None` when the primary key itself encrypts.
    encryption_subkey: Option<usize>,
}

/// The key mail is encrypted to, as rPGP takes it.
pub enum EncryptTo<'a> {
    Primary(&'a SignedPublicKey),
    Subkey(&'a SignedPublicSubKey),
}

impl UsableKey {
    pub fn encryption_key(&self) -> EncryptTo<'_> {
        match self
            .encryption_subkey
            .and_then(|i| self.key.public_subkeys.get(i))
        {
            Some(subkey) => EncryptTo::Subkey(subkey),
            None => EncryptTo::Primary(&self.key),
        }
    }
}

/// Reads an ASCII-armored public key, refusing what is not one with a sentence that says what
/// to paste instead.
pub fn read(armored: &str, alias: &str) -> Result<SignedPublicKey, String> {
    let armored = armored.trim();
    if armored.len() > MAX_KEY_BYTES {
        return Err(format!(
            "The key is {} KiB, more than the 64 KiB accepted; export only the public key, \
             without third-party signatures (gpg --armor --export-options export-minimal \
             --export {alias}).",
            armored.len().div_ceil(1024)
        ));
    }
    if armored.contains("PRIVATE KEY BLOCK") {
        return Err(format!(
            "This is a private (secret) key, not a public one. It was not stored; treat it as \
             exposed, and paste the output of gpg --armor --export {alias} instead."
        ));
    }
    match SignedPublicKey::from_string(armored) {
        Ok((key, _headers)) => Ok(key),
        Err(e) => {
            // rPGP's messages are short, but bound what is echoed back.
            let e: String = e.to_string().chars().take(200).collect();
            Err(format!(
                "The key could not be read as an OpenPGP public key: {e}. Paste the whole \
                 ASCII-armored block from gpg --armor --export {alias}, including the BEGIN \
                 and END lines."
            ))
        }
    }
}

/// The key, if mail to `alias` can be encrypted to it at `now`; otherwise every problem, as
/// sentences with their fix.
pub fn usable(armored: &str, alias: &str, now: DateTime<Utc>) -> Result<UsableKey, String> {
    let key = read(armored, alias)?;
    let judged = judge(&key, alias, now);
    if !judged.problems.is_empty() {
        return Err(judged.problems.join(" "));
    }
    let expires_at = judged.expiry();
    let Some(encryption_subkey) = judged.encrypt_with else {
        return Err("The key has no encryption-capable (sub)key.".to_owned());
    };
    Ok(UsableKey {
        fingerprint: fingerprint(&key),
        key,
        expires_at,
        encryption_subkey,
    })
}

/// How many judgements [`Judgements`] keeps before it starts again from none: well above the
/// largest list it serves, and a few megabytes at most.
const REMEMBERED_KEYS: usize = 100_000;

/// Keys already found usable, so that the same key is not verified again for every message.
///
/// The mailing judges each member's key when it queues the mail, and the worker again just
/// before the message leaves; verifying the signatures is most of that work. Whether a key is
/// usable depends only on its text, the alias and the time, and for a given text and alias the
/// answer can change with time only when the key, or the subkey chosen for encryption, expires.
/// So a key judged usable at one moment is usable, with the same subkey, at any later moment
/// before that expiry: this remembers, per text and alias (by their SHA-256), when the key was
/// judged, until when the answer holds, and the subkey. A changed key (a new subkey, a
/// revocation) is a different text and is judged in full; so is any key at a moment before its
/// judgement or at or after its expiry. Only usable keys are remembered: a refusal is judged
/// again every time, so its sentences stay current.
#[derive(Debug, Default)]
pub struct Judgements {
    usable: parking_lot::Mutex<std::collections::HashMap<[u8; 32], Remembered>>,
}

#[derive(Debug, Clone, Copy)]
struct Remembered {
    judged_at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
    encryption_subkey: Option<usize>,
}

impl Judgements {
    /// [`usable`], without verifying again a key already found usable for this alias at an
    /// earlier moment than `now` and whose expiry has not come.
    pub fn usable(
        &self,
        armored: &str,
        alias: &str,
        now: DateTime<Utc>,
    ) -> Result<UsableKey, String> {
        let id = Self::id(armored, alias);
        let known = self.usable.lock().get(&id).copied();
        if let Some(known) = known.filter(|k| k.judged_at <= now && k.until.is_none_or(|u| now < u))
        {
            // The text was read before; reading it again only rebuilds the key rPGP encrypts to.
            if let Ok(key) = read(armored, alias) {
                return Ok(UsableKey {
                    fingerprint: fingerprint(&key),
                    key,
                    expires_at: known.until,
                    encryption_subkey: known.encryption_subkey,
                });
            }
        }
        let judged = usable(armored, alias, now)?;
        let mut seen = self.usable.lock();
        if seen.len() >= REMEMBERED_KEYS {
            seen.clear();
        }
        seen.insert(
            id,
            Remembered {
                judged_at: now,
                until: judged.expires_at,
                encryption_subkey: judged.encryption_subkey,
            },
        );
        Ok(judged)
    }

    fn id(armored: &str, alias: &str) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        // The alias's length first, so no alias and key text run together ambiguously.
        hash.update((alias.len() as u64).to_be_bytes());
        hash.update(alias.as_bytes());
        hash.update(armored.trim().as_bytes());
        hash.finalize().into()
    }
}

/// What the member pages and reminders show of a stored key, usable or not: its fingerprint
/// and when it stops (or stopped) being usable for encryption: the primary key's expiry or its
/// encryption subkey's, whichever is earlier, also when that is past. `None` for a key that
/// never expires, or has no encryption subkey at all. `None` when the text is not a key.
pub fn facts(armored: &str) -> Option<(String, Option<DateTime<Utc>>)> {
    let key = read(armored, "").ok()?;
    let judged = judge(&key, "", Utc::now());
    Some((fingerprint(&key), judged.expiry()))
}

/// The primary key's fingerprint, upper-case hex.
pub fn fingerprint(key: &SignedPublicKey) -> String {
    format!("{:X}", key.fingerprint())
}

struct Judged {
    problems: Vec<String>,
    primary_expiry: Option<DateTime<Utc>>,
    /// The newest valid encryption key: a subkey index, or `None` for the primary.
    encrypt_with: Option<Option<usize>>,
    /// When that key expires, or, when none is valid, when the last one expired.
    encryption_expiry: Option<DateTime<Utc>>,
}

impl Judged {
    /// When the key stops (or stopped) being usable for encryption: the earlier of the primary
    /// key's expiry and the encryption key's.
    fn expiry(&self) -> Option<DateTime<Utc>> {
        match (self.primary_expiry, self.encryption_expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Everything wrong with the key, each as a sentence with its fix. Only self-signatures that
/// verify count: third-party certifications are common on real keys and must not break the
/// check, and a forged binding must not lend a key a user ID or subkey it does not have.
fn judge(key: &SignedPublicKey, alias: &str, now: DateTime<Utc>) -> Judged {
    let primary = &key.primary_key;
    let fpr = fingerprint(key);
    let mut judged = Judged {
        problems: Vec::new(),
        primary_expiry: None,
        encrypt_with: None,
        encryption_expiry: None,
    };

    if key
        .details
        .revocation_signatures
        .iter()
        .any(|sig| sig.verify_key(primary).is_ok())
    {
        judged.problems.push(
            "The key has been revoked by its owner; send the key the team uses now.".to_owned(),
        );
        return judged;
    }

    // For each user ID its newest valid self-signature; a user ID whose newest one is a
    // revocation no longer belongs to the key.
    let users: Vec<(String, &Signature)> = key
        .details
        .users
        .iter()
        .filter_map(|user| {
            let sig = newest(user.signatures.iter().filter(|s| {
                s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            }))?;
            let live = sig.typ() != Some(SignatureType::CertRevocation);
            live.then(|| (String::from_utf8_lossy(user.id.id()).into_owned(), sig))
        })
        .collect();

    // The primary key's expiry and flags come from its newest self-signature, as gpg rewrites
    // every user ID's signature (or the direct-key signature) when the expiry changes.
    let primary_sig = newest(
        users.iter().map(|(_, sig)| *sig).chain(
            key.details
                .direct_signatures
                .iter()
                .filter(|s| s.verify_key(primary).is_ok()),
        ),
    );

    let mut expired = false;
    match primary_sig {
        None => judged.problems.push(format!(
            "The key has no self-signature that verifies, so its user IDs and expiry cannot be \
             trusted; export it again (gpg --armor --export {alias}) and paste it unchanged."
        )),
        Some(sig) => {
            judged.primary_expiry = expires_at(primary.created_at(), sig);
            if let Some(expiry) = judged.primary_expiry {
                if expiry <= now {
                    expired = true;
                    judged.problems.push(format!(
                        "The key expired on {}; extend it and its subkeys (gpg \
                         --quick-set-expire {fpr} 2y, then the same with '*' added) and paste \
                         it again.",
                        expiry.format("%Y-%m-%d")
                    ));
                }
            }
        }
    }

    // With the primary expired every subkey is unusable too; saying so again adds nothing.
    if !expired {
        match encryption_key(key, primary_sig, now, &fpr) {
            Ok((found, expiry)) => {
                judged.encrypt_with = Some(found);
                judged.encryption_expiry = expiry;
            }
            Err((problem, lapsed)) => {
                judged.problems.push(problem);
                judged.encryption_expiry = lapsed;
            }
        }
    }

    let names_alias = users
        .iter()
        .any(|(uid, _)| uid_address(uid).eq_ignore_ascii_case(alias));
    if !names_alias {
        let found = if users.is_empty() {
            "it has none that is validly signed".to_owned()
        } else {
            let uids: Vec<&str> = users.iter().map(|(uid, _)| uid.as_str()).collect();
            format!("it has {}", uids.join(", "))
        };
        judged.problems.push(format!(
            "No user ID of the key names {alias} ({found}); add one (gpg --quick-add-uid {fpr} \
             'Security team <{alias}>') and paste the key again."
        ));
    }
    judged
}

/// The newest unexpired, unrevoked (sub)key that can encrypt, with its expiry; otherwise what
/// to fix, and when the last encryption subkey expired, if one did.
#[expect(clippy::type_complexity, reason = "a private helper's pairs")]
fn encryption_key(
    key: &SignedPublicKey,
    primary_sig: Option<&Signature>,
    now: DateTime<Utc>,
    fpr: &str,
) -> Result<(Option<usize>, Option<DateTime<Utc>>), (String, Option<DateTime<Utc>>)> {
    let primary = &key.primary_key;
    let mut latest_expiry: Option<DateTime<Utc>> = None;
    let mut best: Option<(usize, u32, Option<DateTime<Utc>>)> = None;
    for (index, subkey) in key.public_subkeys.iter().enumerate() {
        let Some(sig) = newest(
            subkey
                .signatures
                .iter()
                .filter(|s| s.verify_subkey_binding(primary, &subkey.key).is_ok()),
        ) else {
            continue;
        };
        if sig.typ() == Some(SignatureType::SubkeyRevocation)
            || !subkey.key.algorithm().can_encrypt()
            || !allows_encryption(&sig.key_flags())
        {
            continue;
        }
        match expires_at(subkey.key.created_at(), sig) {
            Some(expiry) if expiry <= now => {
                latest_expiry = latest_expiry.max(Some(expiry));
            }
            expiry => {
                let created = subkey.key.created_at().as_secs();
                if best.is_none_or(|(_, newest, _)| created >= newest) {
                    best = Some((index, created, expiry));
                }
            }
        }
    }
    if let Some((index, _, expiry)) = best {
        return Ok((Some(index), expiry));
    }
    if primary.algorithm().can_encrypt()
        && primary_sig.is_some_and(|s| allows_encryption(&s.key_flags()))
    {
        return Ok((None, None));
    }
    let problem = match latest_expiry {
        Some(expiry) => format!(
            "The key's encryption subkey expired on {}; extend it (gpg --quick-set-expire \
             {fpr} 2y '*') or add a new one (gpg --quick-add-key {fpr} cv25519 encr 2y) and \
             paste the key again.",
            expiry.format("%Y-%m-%d")
        ),
        None => format!(
            "The key has no encryption-capable (sub)key, so embargoed mail could not be \
             encrypted to it; add one (gpg --quick-add-key {fpr} cv25519 encr 2y) and paste \
             the key again."
        ),
    };
    Err((problem, latest_expiry))
}

/// Key flags say what a key is for; without any, the algorithm alone decides (RFC 9580 5.2.3.29).
fn allows_encryption(flags: &KeyFlags) -> bool {
    let any_usage = flags.certify()
        || flags.sign()
        || flags.encrypt_comms()
        || flags.encrypt_storage()
        || flags.authentication();
    !any_usage || flags.encrypt_comms() || flags.encrypt_storage()
}

fn newest<'s>(sigs: impl Iterator<Item = &'s Signature>) -> Option<&'s Signature> {
    sigs.max_by_key(|s| s.created().map_or(0, Timestamp::as_secs))
}

/// When a key made at `created` expires under `sig`; None for never.
fn expires_at(created: Timestamp, sig: &Signature) -> Option<DateTime<Utc>> {
    // A zero expiry time means "does not expire" (RFC 9580 5.2.3.13).
    let lifetime = sig.key_expiration_time().filter(|d| d.as_secs() > 0)?;
    DateTime::from_timestamp(
        i64::from(created.as_secs()) + i64::from(lifetime.as_secs()),
        0,
    )
}

/// The address in a user ID: the part in angle brackets ("Team <a@b>"), or the whole of a
/// bare-address user ID. Exact comparison, so "xsecurity@b" does not pass for "security@b".
fn uid_address(uid: &str) -> &str {
    if let (Some(start), Some(end)) = (uid.rfind('<'), uid.rfind('>')) {
        if start < end {
            return uid[start + 1..end].trim();
        }
    }
    uid.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a moment")
            .to_utc()
    }

    #[test]
    fn a_remembered_key_answers_as_a_fresh_judgement_until_it_expires() {
        let vendor = include_str!("../../data/testdata/vendor-psirt.asc");
        let alias = "security@vendor.example";
        let judgements = Judgements::default();
        let first = judgements
            .usable(vendor, alias, at("2026-06-01T00:00:00Z"))
            .expect("usable in 2026");
        let again = judgements
            .usable(vendor, alias, at("2026-12-31T23:59:59Z"))
            .expect("still usable the second before it expires");
        let fresh = usable(vendor, alias, at("2026-12-31T23:59:59Z")).expect("usable");
        for key in [&first, &again] {
            assert_eq!(key.fingerprint, fresh.fingerprint);
            assert_eq!(key.expires_at, fresh.expires_at);
            assert_eq!(key.encryption_subkey, fresh.encryption_subkey);
        }
        assert!(matches!(again.encryption_key(), EncryptTo::Subkey(_)));
        // The expiry (2027-01-01) is judged again, not taken from memory.
        let expired = judgements
            .usable(vendor, alias, at("2027-01-01T00:00:00Z"))
            .expect_err("expired at midnight");
        assert!(expired.contains("expired on 2027-01-01"), "{expired}");
    }

    #[test]
    fn a_remembered_key_is_bound_to_its_alias_and_its_text() {
        let vendor = include_str!("../../data/testdata/vendor-psirt.asc");
        let now = at("2026-06-01T00:00:00Z");
        let judgements = Judgements::default();
        judgements
            .usable(vendor, "security@vendor.example", now)
            .expect("usable");
        let other = judgements
            .usable(vendor, "security@attacker.example", now)
            .expect_err("the same key does not serve another alias");
        assert!(other.contains("No user ID of the key names security@attacker.example"));
        // A text that differs (here a signature byte) is not the remembered key.
        let mut tampered = vendor.to_owned();
        let line = tampered.lines().nth(5).expect("an armored line").to_owned();
        let changed: String = line
            .chars()
            .map(|c| if c == 'A' { 'B' } else { c })
            .collect();
        assert_ne!(line, changed, "the line has an A to change");
        tampered = tampered.replacen(&line, &changed, 1);
        assert!(
            judgements
                .usable(&tampered, "security@vendor.example", now)
                .is_err(),
            "a changed key is judged in full and refused"
        );
    }

    #[test]
    fn an_encryption_subkey_that_lapses_after_its_judgement_is_refused() {
        // Primary valid until 2027-01-01; the encryption subkey only until 2025-01-02.
        let stale = include_str!("../../data/testdata/stale-encryption-subkey.asc");
        let alias = "security@stale-subkey.example";
        let judgements = Judgements::default();
        let early = judgements
            .usable(stale, alias, at("2025-01-01T12:00:00Z"))
            .expect("usable while its subkey is");
        assert_eq!(early.expires_at, Some(at("2025-01-02T00:00:00Z")));
        let later = judgements
            .usable(stale, alias, at("2026-03-01T00:00:00Z"))
            .expect_err("the subkey has lapsed");
        assert!(
            later.contains("encryption subkey expired on 2025-01-02"),
            "{later}"
        );
        // Refusals are not remembered: the same answer, judged again.
        assert_eq!(
            judgements
                .usable(stale, alias, at("2026-03-02T00:00:00Z"))
                .err(),
            usable(stale, alias, at("2026-03-02T00:00:00Z")).err()
        );
    }

    #[test]
    fn a_key_whose_encryption_subkey_lapsed_shows_when_it_stopped_working() {
        let stale = include_str!("../../data/testdata/stale-encryption-subkey.asc");
        let (_, expiry) = facts(stale).expect("a key");
        assert_eq!(
            expiry.map(|e| e.format("%Y-%m-%d").to_string()).as_deref(),
            Some("2025-01-02"),
            "not shown as never expiring"
        );
        let vendor = include_str!("../../data/testdata/vendor-psirt.asc");
        let (_, expiry) = facts(vendor).expect("a key");
        assert_eq!(
            expiry.map(|e| e.format("%Y-%m-%d").to_string()).as_deref(),
            Some("2027-01-01")
        );
    }
}
