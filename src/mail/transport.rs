//! How a message leaves: SMTP through lettre (production), `.eml` files in a folder (the default
//! when no SMTP server is configured), or memory (tests). Every message is built here, signed
//! with the list's key and, when its [`Seal`] says so, encrypted to its recipient before any
//! transport sees it, so an encrypted message is never written anywhere in clear. Every
//! failure is classified as transient (try again later) or permanent (give up), which is all
//! the outbox needs to know.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lettre::message::{header, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use super::smtp::SmtpClient;
use crate::config::{Secret, Settings};
use crate::openpgp::{mime, ListKey, UsableKey};

/// What a transport is handed: one finished message for one recipient.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub message_id: String,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub attachments: Vec<Attachment>,
    pub seal: Seal,
}

/// What protects a message besides TLS to the first SMTP server.
#[derive(Debug, Clone, Default)]
pub enum Seal {
    /// Signed by the list (PGP/MIME `multipart/signed`): every message at least.
    #[default]
    Signed,
    /// Signed by the list and encrypted to the recipient's key (PGP/MIME
    /// `multipart/encrypted`). The real subject travels inside; the outer one is neutral.
    Encrypted {
        to: Box<UsableKey>,
        outer_subject: String,
    },
}

impl Seal {
    pub fn is_encrypted(&self) -> bool {
        matches!(self, Self::Encrypted { .. })
    }
}

/// A file attached to a message (a patch).
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: String,
    pub content: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// A 4xx reply: the same message may go through later.
    Transient(String),
    /// The server cannot be reached or does not answer in time (refused connection, a TLS or
    /// network failure, the deadline): no message will get through until it is back, so the
    /// workers pause together instead of each trying its own.
    Unreachable(String),
    /// A 5xx reply or a message that cannot be built: retrying will not help.
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(reason) | Self::Unreachable(reason) => {
                write!(f, "temporary failure: {reason}")
            }
            Self::Permanent(reason) => write!(f, "permanent failure: {reason}"),
        }
    }
}

/// One message as a test sees it after "delivery".
#[derive(Debug, Clone)]
pub struct CapturedMail {
    pub recipient: String,
    pub subject: String,
    pub raw: Vec<u8>,
}

#[derive(Clone)]
pub enum Transport {
    /// `deadline` bounds one message's whole exchange: connecting, the greeting, every reply
    /// and the data, so a server that greets and then goes silent holds a worker no longer.
    Smtp {
        client: Arc<SmtpClient>,
        deadline: Duration,
    },
    Files(PathBuf),
    Memory(Arc<Mutex<Vec<CapturedMail>>>),
}

#[derive(Debug, thiserror::Error)]
#[error("EDL_SMTP_URL cannot be used: {0}")]
pub struct TransportError(String);

impl Transport {
    /// SMTP when `EDL_SMTP_URL` is set, otherwise `.eml` files under `EDL_MAIL_DIR`.
    pub fn from_settings(settings: &Settings) -> Result<Self, TransportError> {
        match &settings.smtp_url {
            Some(url) => Self::smtp(url, settings.smtp_timeout),
            None => Ok(Self::Files(settings.mail_dir.clone())),
        }
    }

    /// The URL scheme decides TLS as lettre reads it: `smtps://` is TLS from the first byte,
    /// `smtp://…?tls=required` upgrades with STARTTLS, plain `smtp://` sends in the clear (only
    /// for a relay on the same host or network).
    pub fn smtp(url: &Secret, timeout: Duration) -> Result<Self, TransportError> {
        let client = SmtpClient::from_url(url.expose()).map_err(TransportError)?;
        Ok(Self::Smtp {
            client: Arc::new(client),
            deadline: timeout,
        })
    }

    pub fn memory() -> (Self, Arc<Mutex<Vec<CapturedMail>>>) {
        let store = Arc::new(Mutex::new(Vec::new()));
        (Self::Memory(store.clone()), store)
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { .. } => "SMTP".to_owned(),
            Self::Files(dir) => format!(".eml files in {}", dir.display()),
            Self::Memory(_) => "memory".to_owned(),
        }
    }

    pub async fn send(
        &self,
        from: &Mailbox,
        envelope: Envelope,
        signer: &Arc<ListKey>,
    ) -> Result<(), SendError> {
        // Signing and encrypting are CPU work: off the async threads that serve pages.
        let (from_owned, signer) = (from.clone(), signer.clone());
        let (message, envelope) = tokio::task::spawn_blocking(move || {
            let message = build_message(&from_owned, &envelope, &signer);
            (message, envelope)
        })
        .await
        .map_err(|e| SendError::Transient(format!("building the message stopped: {e}")))?;
        let message = message?;
        match self {
            Self::Smtp { client, deadline } => {
                // Past the deadline the exchange is dropped (and its connection closed) and
                // the message is tried again later: the server never said it took it.
                let (to, bytes) = (message.envelope().clone(), message.formatted());
                match tokio::time::timeout(*deadline, client.send(&to, &bytes)).await {
                    Ok(sent) => sent,
                    Err(_) => Err(SendError::Unreachable(format!(
                        "the SMTP server did not finish the exchange within {}s",
                        deadline.as_secs_f64()
                    ))),
                }
            }
            Self::Files(dir) => {
                write_eml(
                    dir.clone(),
                    envelope.message_id.clone(),
                    message.formatted(),
                )
                .await
            }
            Self::Memory(store) => {
                let mut store = store
                    .lock()
                    .map_err(|_| SendError::Transient("memory transport poisoned".into()))?;
                store.push(CapturedMail {
                    recipient: envelope.recipient.clone(),
                    subject: match &envelope.seal {
                        Seal::Signed => envelope.subject.clone(),
                        Seal::Encrypted { outer_subject, .. } => outer_subject.clone(),
                    },
                    raw: message.formatted(),
                });
                Ok(())
            }
        }
    }
}

/// A text and HTML alternative, with the patches, signed by the list and encrypted when the
/// seal says so, under the service's own Message-ID, so a retried or duplicated delivery of
/// one outbox row is recognisable as the same message.
pub fn build_message(
    from: &Mailbox,
    envelope: &Envelope,
    signer: &ListKey,
) -> Result<Message, SendError> {
    let to: Mailbox = envelope
        .recipient
        .parse()
        .map_err(|e| SendError::Permanent(format!("the recipient address is not valid: {e}")))?;
    // Transfer encodings chosen, not guessed: a signed part must survive servers that strip
    // trailing spaces or rewrite lines starting "From " (RFC 3156 section 3). Patches are full
    // of both, and notes and advisories may hold either; lettre's quoted-printable leaves
    // "From " alone, so every part is base64.
    let text_part = |content_type: header::ContentType, body: &str| {
        SinglePart::builder()
            .header(content_type)
            .header(header::ContentTransferEncoding::Base64)
            .body(body.to_owned())
    };
    let alternative = MultiPart::alternative()
        .singlepart(text_part(header::ContentType::TEXT_PLAIN, &envelope.text))
        .singlepart(text_part(header::ContentType::TEXT_HTML, &envelope.html));
    let body = if envelope.attachments.is_empty() {
        alternative
    } else {
        let patch_type = header::ContentType::parse("text/x-diff; charset=utf-8")
            .map_err(|e| SendError::Permanent(format!("bad attachment type: {e}")))?;
        let mut mixed = MultiPart::mixed().multipart(alternative);
        for file in &envelope.attachments {
            mixed = mixed.singlepart(
                SinglePart::builder()
                    .header(patch_type.clone())
                    .header(header::ContentDisposition::attachment(&file.filename))
                    .header(header::ContentTransferEncoding::Base64)
                    .body(file.content.clone()),
            );
        }
        mixed
    };
    let date = std::time::SystemTime::now();
    // A key that cannot sign or encrypt now will not later either.
    let sealing = |e: crate::openpgp::OpenPgpError| {
        SendError::Permanent(format!("the message cannot be signed or encrypted: {e}"))
    };
    let (subject, body) = match &envelope.seal {
        Seal::Signed => (
            envelope.subject.clone(),
            mime::signed(body, signer).map_err(sealing)?,
        ),
        Seal::Encrypted {
            to: key,
            outer_subject,
        } => {
            let protected = mime::ProtectedHeaders {
                from,
                to: &to,
                subject: &envelope.subject,
                message_id: &envelope.message_id,
                date,
            };
            (
                outer_subject.clone(),
                mime::encrypted(body, &protected, key, signer).map_err(sealing)?,
            )
        }
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(envelope.message_id.clone()))
        .date(date)
        .multipart(body)
        .map_err(|e| SendError::Permanent(format!("the message cannot be built: {e}")))
}

/// Writes the message whole or not at all: a temporary file renamed into place.
async fn write_eml(dir: PathBuf, message_id: String, bytes: Vec<u8>) -> Result<(), SendError> {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        let stem: String = message_id
            .trim_matches(|c| c == '<' || c == '>')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let final_path = dir.join(format!("{stem}.eml"));
        let temp_path = dir.join(format!(".{stem}.eml.tmp"));
        let written = std::fs::write(&temp_path, bytes)
            .and_then(|()| std::fs::rename(&temp_path, &final_path));
        if written.is_err() {
            // A half-written temporary file is not a message; leave nothing behind.
            let _ = std::fs::remove_file(&temp_path);
        }
        written
    })
    .await
    .map_err(|e| SendError::Transient(e.to_string()))?
    .map_err(|e| SendError::Transient(format!("cannot write the .eml file: {e}")))
}

/// `alice@example.org` becomes `a***@example.org`: enough to tell recipients apart in logs
/// without writing full addresses into them.
pub fn mask_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `text` with every address in it masked as [`mask_address`] does: reasons (a mail server's
/// answer, a key's user IDs) name people, and logs should not.
pub fn mask_addresses(text: &str) -> String {
    text.split(' ')
        .map(|word| {
            if !word.contains('@') {
                return word.to_owned();
            }
            let start = word.find(|c: char| c.is_alphanumeric()).unwrap_or(0);
            let end = word
                .rfind(|c: char| c.is_alphanumeric())
                .map_or(word.len(), |e| e + 1);
            format!(
                "{}{}{}",
                &word[..start],
                mask_address(&word[start..end]),
                &word[end..]
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openpgp::member_key;
    use crate::openpgp::testing::{decrypt_and_verify, member_keypair};
    use pgp::composed::{Deserializable, DetachedSignature};

    fn envelope(recipient: &str) -> Envelope {
        Envelope {
            message_id: "<abc123@edl.example.org>".into(),
            recipient: recipient.into(),
            subject: "Hello".into(),
            text: "plain body".into(),
            html: "<p>html body</p>".into(),
            attachments: Vec::new(),
            seal: Seal::Signed,
        }
    }

    fn from() -> Mailbox {
        "List <edl@example.org>".parse().expect("from")
    }

    /// Every header and part of a message, decoded from its transfer encoding.
    fn decoded(raw: &[u8]) -> String {
        fn walk(part: &mailparse::ParsedMail<'_>, out: &mut String) {
            for header in &part.headers {
                out.push_str(&format!("{}: {}\n", header.get_key(), header.get_value()));
            }
            if part.subparts.is_empty() {
                out.push_str(&String::from_utf8_lossy(
                    &part.get_body_raw().unwrap_or_default(),
                ));
            }
            for sub in &part.subparts {
                walk(sub, out);
            }
        }
        let mut out = String::new();
        walk(&mailparse::parse_mail(raw).expect("a message"), &mut out);
        out
    }

    fn list_key() -> ListKey {
        ListKey::generate("List <edl@example.org>", None).expect("key")
    }

    /// The signed first part, byte for byte, and the armored signature of a signed message.
    fn signed_parts(raw: &[u8]) -> (Vec<u8>, String) {
        let text = String::from_utf8(raw.to_vec()).expect("ascii");
        let parsed = mailparse::parse_mail(raw).expect("parse");
        assert_eq!(parsed.ctype.mimetype, "multipart/signed");
        assert_eq!(parsed.ctype.params["protocol"], "application/pgp-signature");
        assert_eq!(parsed.ctype.params["micalg"], "pgp-sha256");
        let boundary = &parsed.ctype.params["boundary"];
        let delimiter = format!("\r\n--{boundary}\r\n");
        let first = format!("--{boundary}\r\n");
        let start = text.find(&first).expect("first part") + first.len();
        let end = start + text[start..].find(&delimiter).expect("second part");
        let signature = parsed.subparts[1].get_body().expect("signature");
        (text.as_bytes()[start..end].to_vec(), signature)
    }

    #[test]
    fn messages_carry_our_message_id_and_both_parts_and_are_signed() {
        let key = list_key();
        let raw = build_message(&from(), &envelope("security@vendor.example"), &key)
            .expect("build")
            .formatted();
        let text = String::from_utf8(raw.clone()).expect("utf8");
        assert!(
            text.contains("Message-ID: <abc123@edl.example.org>"),
            "{text}"
        );
        let decoded = decoded(&raw);
        assert!(text.contains("multipart/alternative") && decoded.contains("plain body"));
        assert!(decoded.contains("<p>html body</p>"));
        let (signed, signature) = signed_parts(&raw);
        let (signature, _) = DetachedSignature::from_string(&signature).expect("signature");
        signature
            .verify(key.public_key(), &signed)
            .expect("the signature covers the first part");
        let mut tampered = signed.clone();
        let at = tampered.len() - 10;
        tampered[at] ^= 1;
        assert!(signature.verify(key.public_key(), &tampered).is_err());
    }

    #[test]
    fn encrypted_messages_hide_the_subject_and_carry_everything_inside() {
        let key = list_key();
        let (secret, public) = member_keypair("Vendor PSIRT <security@vendor.example>");
        let usable = member_key::usable(&public, "security@vendor.example", chrono::Utc::now())
            .expect("a usable key");
        let mut mail = envelope("security@vendor.example");
        mail.subject = "[EMBARGOED] Security release 1.9.5".into();
        mail.attachments = vec![Attachment {
            filename: "0001-fix.patch".into(),
            content: b"diff --git a/x b/x\n+fixed\n".to_vec(),
        }];
        mail.seal = Seal::Encrypted {
            to: Box::new(usable),
            outer_subject: "[EMBARGOED] Security release mail".into(),
        };
        let raw = build_message(&from(), &mail, &key)
            .expect("build")
            .formatted();
        let text = String::from_utf8(raw.clone()).expect("ascii");
        assert!(!text.contains("1.9.5") && !text.contains("plain body") && !text.contains("fixed"));
        let parsed = mailparse::parse_mail(&raw).expect("parse");
        assert_eq!(parsed.ctype.mimetype, "multipart/encrypted");
        assert_eq!(parsed.ctype.params["protocol"], "application/pgp-encrypted");
        use mailparse::MailHeaderMap;
        assert_eq!(
            parsed.headers.get_first_value("Subject").as_deref(),
            Some("[EMBARGOED] Security release mail")
        );
        assert_eq!(
            parsed.subparts[0].get_body().expect("version").trim(),
            "Version: 1"
        );
        let armored = parsed.subparts[1].get_body().expect("ciphertext");
        let plaintext = decrypt_and_verify(&armored, &secret, key.public_key());
        let inner = mailparse::parse_mail(&plaintext).expect("inner MIME");
        assert_eq!(inner.ctype.params["protected-headers"], "v1");
        assert_eq!(
            inner.headers.get_first_value("Subject").as_deref(),
            Some("[EMBARGOED] Security release 1.9.5")
        );
        let inner_text = decoded(&plaintext);
        assert!(inner_text.contains("plain body") && inner_text.contains("0001-fix.patch"));
        assert!(inner_text.contains("+fixed"), "the patch is inside");
        // Another key cannot read it.
        let (other, _) = member_keypair("Other <security@other.example>");
        let (message, _) = pgp::composed::Message::from_string(&armored).expect("message");
        assert!(message
            .decrypt(&pgp::types::Password::empty(), &other)
            .is_err());
    }

    #[test]
    fn signed_parts_are_encoded_so_that_servers_cannot_change_them() {
        let key = list_key();
        let mut mail = envelope("security@vendor.example");
        mail.text = "From the list:\n-- \nfooter".into();
        mail.attachments = vec![Attachment {
            filename: "0001-fix.patch".into(),
            content: b"From 1234 Mon Sep 17 00:00:00 2001\n \n+fixed\n".to_vec(),
        }];
        let raw = build_message(&from(), &mail, &key)
            .expect("build")
            .formatted();
        let (signed, _) = signed_parts(&raw);
        let text = String::from_utf8(signed).expect("ascii");
        assert!(
            text.lines()
                .all(|l| !l.ends_with(' ') && !l.starts_with("From ")),
            "{text}"
        );
        assert_eq!(text.matches("Content-Transfer-Encoding: base64").count(), 3);
    }

    #[test]
    fn a_bad_recipient_is_permanent() {
        let err =
            build_message(&from(), &envelope("not an address"), &list_key()).expect_err("bad");
        assert!(matches!(err, SendError::Permanent(_)));
    }

    #[tokio::test]
    async fn files_are_written_whole_and_named_by_message_id() {
        let dir = tempfile::tempdir().expect("temp dir");
        let transport = Transport::Files(dir.path().join("out"));
        transport
            .send(
                &from(),
                envelope("security@vendor.example"),
                &Arc::new(list_key()),
            )
            .await
            .expect("send");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name().into_string().expect("name"))
            .collect();
        assert_eq!(names, vec!["abc123_edl.example.org.eml".to_owned()]);
    }

    #[test]
    fn addresses_are_masked() {
        assert_eq!(mask_address("alice@example.org"), "a***@example.org");
        assert_eq!(mask_address("nonsense"), "***");
        assert_eq!(
            mask_addresses("no usable key: it has Maria Lopez <maria@vendor.example>, (b@c.d)."),
            "no usable key: it has Maria Lopez <m***@vendor.example>, (b***@c.d)."
        );
        assert_eq!(
            mask_addresses("550 5.1.1 no such mailbox"),
            "550 5.1.1 no such mailbox"
        );
    }
}
