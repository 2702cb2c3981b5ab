//! An organisation's domain, and what it means for a host to be "on" it.

/// A DNS name an organisation owns, e.g. `example.com`: no scheme, no path, at least one dot,
/// lower case, without a trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct OrgDomain(String);

impl OrgDomain {
    pub fn parse(value: &str) -> Result<Self, String> {
        let domain = value.trim().trim_end_matches('.').to_lowercase();
        let labels_ok = domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if domain.len() > 253 || !domain.contains('.') || !labels_ok {
            return Err(format!(
                "{value:?} is not a domain name such as example.com (no https://, no path)."
            ));
        }
        Ok(Self(domain))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `host` is this domain or under it: sub.example.com is on example.com, but
    /// notexample.com is not. A trailing dot and letter case do not matter.
    pub fn covers(&self, host: &str) -> bool {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        host == self.0
            || host
                .strip_suffix(self.0.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    }
}

/// Whether `host` is on any of `domains`.
pub fn on_any(host: &str, domains: &[OrgDomain]) -> bool {
    domains.iter().any(|d| d.covers(host))
}

impl std::fmt::Display for OrgDomain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for OrgDomain {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::parse(value)
    }
}

impl serde::Serialize for OrgDomain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for OrgDomain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

crate::text_column!(OrgDomain);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_domains_and_refuses_urls() {
        assert_eq!(
            OrgDomain::parse(" Example.COM. ").expect("domain").as_str(),
            "example.com"
        );
        for bad in [
            "https://example.com",
            "example",
            "exa mple.com",
            "-a.com",
            "a..com",
        ] {
            assert!(OrgDomain::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_host_is_on_a_domain_or_under_it() {
        let d = OrgDomain::parse("example.com").expect("domain");
        assert!(d.covers("example.com"));
        assert!(d.covers("psirt.Example.com."));
        assert!(!d.covers("notexample.com"));
        assert!(!d.covers("example.com.evil.test"));
    }
}
