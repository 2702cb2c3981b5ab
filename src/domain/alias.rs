//! The security alias: the address an organisation's security team reads, parsed once.

use lettre::address::AddressError;
use lettre::Address;

/// An organisation's security alias: a well-formed address, in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct SecurityAlias(Address);

/// Why a text is not an alias, as a phrase that completes "… is not usable: ".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    #[error("no security alias was given")]
    Empty,
    #[error("{0} is not an email address ({1})")]
    Malformed(String, &'static str),
}

impl SecurityAlias {
    pub fn parse(value: &str) -> Result<Self, AliasError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(AliasError::Empty);
        }
        let lower = value.to_lowercase();
        lower.parse::<Address>().map(Self).map_err(|e| {
            let why = match e {
                AddressError::MissingParts => "it needs a name, an @ and a domain",
                AddressError::InvalidUser => "the part before the @ is not valid",
                AddressError::InvalidDomain => "the domain after the @ is not valid",
                _ => "it is not in the form name@domain",
            };
            AliasError::Malformed(value.to_owned(), why)
        })
    }

    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The part before the @.
    pub fn user(&self) -> &str {
        self.0.user()
    }

    /// The part after the @.
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    pub fn address(&self) -> &Address {
        &self.0
    }
}

impl std::fmt::Display for SecurityAlias {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for SecurityAlias {
    type Err = AliasError;

    fn from_str(value: &str) -> Result<Self, AliasError> {
        Self::parse(value)
    }
}

impl serde::Serialize for SecurityAlias {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

crate::text_column!(SecurityAlias);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_trims_and_lowers() {
        let alias = SecurityAlias::parse("  Security@Example.COM ").expect("alias");
        assert_eq!(alias.as_str(), "security@example.com");
        assert_eq!((alias.user(), alias.domain()), ("security", "example.com"));
    }

    #[test]
    fn says_why_a_text_is_not_an_alias() {
        assert_eq!(SecurityAlias::parse(" "), Err(AliasError::Empty));
        let error = SecurityAlias::parse("security-at-example.com").unwrap_err();
        assert_eq!(
            error.to_string(),
            "security-at-example.com is not an email address (it needs a name, an @ and a domain)"
        );
        assert!(SecurityAlias::parse("a b@example.com").is_err());
    }
}
