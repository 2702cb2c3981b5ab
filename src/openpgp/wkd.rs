//! Web Key Directory names (draft-koch-openpgp-webkey-service): where a mail client looks up
//! the key of an address, and the z-base-32 encoding those names use.

use pgp::crypto::hash::HashAlgorithm;

/// The Web Key Directory name of a local part: the z-base-32 encoded SHA-1 of the local part
/// with ASCII upper case mapped to lower case (non-ASCII is left as it is). `None` only if the
/// hash cannot be computed.
pub fn wkd_hash(local_part: &str) -> Option<String> {
    let digest = HashAlgorithm::Sha1
        .digest(local_part.to_ascii_lowercase().as_bytes())
        .ok()?;
    Some(zbase32(&digest))
}

/// The Web Key Directory addresses of the key for `address` (`local@domain`): the advanced
/// method's, which clients try first, and the direct method's.
pub fn wkd_urls(address: &lettre::Address) -> Option<[String; 2]> {
    let domain = address.domain().to_ascii_lowercase();
    let hash = wkd_hash(address.user())?;
    Some([
        format!("https://openpgpkey.{domain}/.well-known/openpgpkey/{domain}/hu/{hash}"),
        format!("https://{domain}/.well-known/openpgpkey/hu/{hash}"),
    ])
}

/// z-base-32 (Zooko's human-oriented base-32), without padding: 5 bits per character, most
/// significant bits first, the last character padded with zero bits.
pub fn zbase32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in bytes {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drafts_example_hashes_as_published() {
        // draft-koch-openpgp-webkey-service, section 3.1: "Joe.Doe@Example.ORG".
        assert_eq!(
            wkd_hash("Joe.Doe").as_deref(),
            Some("iy9q119eutrkn8s1mk4r39qejnbu3n5q")
        );
    }

    #[test]
    fn zbase32_matches_known_encodings() {
        assert_eq!(zbase32(b""), "");
        // From the z-base-32 specification: single bits and a byte.
        assert_eq!(zbase32(&[0x00]), "yy");
        assert_eq!(zbase32(&[0x80]), "oy");
        assert_eq!(zbase32(&[0xf0, 0xbf, 0xc7]), "6n9hq");
        assert_eq!(zbase32(&[0xd4, 0x7a, 0x04]), "4t7ye");
        // A 20-byte SHA-1 is 160 bits: exactly 32 characters.
        assert_eq!(zbase32(&[0xff; 20]).len(), 32);
    }

    #[test]
    fn the_addresses_name_the_lower_cased_domain() {
        let address: lettre::Address = "Joe.Doe@Example.ORG".parse().expect("an address");
        let hash = "iy9q119eutrkn8s1mk4r39qejnbu3n5q";
        assert_eq!(
            wkd_urls(&address),
            Some([
                format!(
                    "https://openpgpkey.example.org/.well-known/openpgpkey/example.org/hu/{hash}"
                ),
                format!("https://example.org/.well-known/openpgpkey/hu/{hash}"),
            ])
        );
    }
}
