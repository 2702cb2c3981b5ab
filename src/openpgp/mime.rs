//! PGP/MIME (RFC 3156) around a message body that lettre built: `multipart/signed` for every
//! mail, `multipart/encrypted` for embargoed mail to a member with a usable key. The encrypted
//! form carries the real subject and addresses inside, as protected headers, so that the
//! outer headers need not name the release.

use lettre::message::header::{self, ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Mailboxes, MultiPart, MultiPartKind, SinglePart};

use crate::openpgp::list_key::{ListKey, OpenPgpError};
use crate::openpgp::member_key::UsableKey;

/// The headers a reader sees once the message is decrypted (draft-autocrypt-lamps-protected-
/// headers): the real ones, which the outer message replaces with neutral values.
pub struct ProtectedHeaders<'a> {
    pub from: &'a Mailbox,
    pub to: &'a Mailbox,
    pub subject: &'a str,
    pub message_id: &'a str,
    pub date: std::time::SystemTime,
}

/// `body` signed by the list: `multipart/signed` whose first part is `body` byte for byte
/// and whose second is the detached signature over it.
pub fn signed(body: MultiPart, key: &ListKey) -> Result<MultiPart, OpenPgpError> {
    let formatted = body.formatted();
    // The signed data ends before the CRLF that belongs to the next boundary line.
    let content = formatted
        .strip_suffix(b"\r\n")
        .unwrap_or(formatted.as_slice());
    let signature = key.sign_detached(content)?;
    Ok(MultiPart::builder()
        .kind(MultiPartKind::Signed {
            protocol: "application/pgp-signature".to_owned(),
            micalg: "pgp-sha256".to_owned(),
        })
        .multipart(body)
        .singlepart(
            SinglePart::builder()
                .header(content_type(
                    "application/pgp-signature; name=\"signature.asc\"",
                )?)
                .header(header::ContentDisposition::attachment("signature.asc"))
                .body(signature),
        ))
}

/// `body`, with the protected headers, signed by the list and encrypted to `recipient`:
/// `multipart/encrypted` with the version part and the armored OpenPGP message.
pub fn encrypted(
    mut body: MultiPart,
    protected: &ProtectedHeaders<'_>,
    recipient: &UsableKey,
    key: &ListKey,
) -> Result<MultiPart, OpenPgpError> {
    let kind = body
        .headers()
        .get_raw("Content-Type")
        .unwrap_or("multipart/mixed")
        .to_owned();
    let headers = body.headers_mut();
    headers.set(content_type(&format!("{kind}; protected-headers=\"v1\""))?);
    headers.set(header::From::from(Mailboxes::from(protected.from.clone())));
    headers.set(header::To::from(Mailboxes::from(protected.to.clone())));
    headers.set(header::Subject::from(protected.subject.to_owned()));
    headers.set(header::Date::new(protected.date));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("Message-ID"),
        protected.message_id.to_owned(),
    ));
    let ciphertext = key.sign_and_encrypt(body.formatted(), recipient)?;
    Ok(MultiPart::builder()
        .kind(MultiPartKind::Encrypted {
            protocol: "application/pgp-encrypted".to_owned(),
        })
        .singlepart(
            SinglePart::builder()
                .header(content_type("application/pgp-encrypted")?)
                .body("Version: 1\r\n".to_owned()),
        )
        .singlepart(
            SinglePart::builder()
                .header(content_type(
                    "application/octet-stream; name=\"encrypted.asc\"",
                )?)
                .header(header::ContentDisposition::inline_with_name(
                    "encrypted.asc",
                ))
                .body(ciphertext),
        ))
}

fn content_type(value: &str) -> Result<ContentType, OpenPgpError> {
    ContentType::parse(value).map_err(|e| OpenPgpError::Pgp(format!("content type {value}: {e}")))
}
