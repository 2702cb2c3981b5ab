//! Values that parse: what a form, a URL or the command line hands in becomes one of these
//! types once, at the edge, and nothing deeper takes a bare `String` for it. Each type that is
//! stored is kept in a text column through one mapping ([`text_column!`]) that works on both
//! backends, so a value the code does not know (an unknown status) is an error on read, never
//! quietly something else.

pub mod advisory;
pub mod alias;
pub mod org_domain;
pub mod status;

pub use advisory::{CveId, Cvss3Score, CvssVector, CvssVersion, Severity};
pub use alias::SecurityAlias;
pub use org_domain::OrgDomain;
pub use status::{ApplicationStatus, MemberStatus, OutboxStatus, ReleaseKind};

use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql};
use diesel::sql_types::Text;

/// A stored text that names none of a type's values, or does not parse as one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a known {what}")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Stores a type in a text column on every backend: written with `as_str()`, read back with
/// `FromStr`. A stored text that does not parse fails the query.
#[macro_export]
macro_rules! text_column {
    ($ty:ty) => {
        impl<DB> diesel::deserialize::FromSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            String: diesel::deserialize::FromSql<diesel::sql_types::Text, DB>,
        {
            fn from_sql(bytes: DB::RawValue<'_>) -> diesel::deserialize::Result<Self> {
                let text: String =
                    diesel::deserialize::FromSql::<diesel::sql_types::Text, DB>::from_sql(bytes)?;
                text.parse::<$ty>().map_err(|e| e.to_string().into())
            }
        }

        impl<DB> diesel::serialize::ToSql<diesel::sql_types::Text, DB> for $ty
        where
            DB: diesel::backend::Backend,
            str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
        {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, DB>,
            ) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, DB>>::to_sql(
                    self.as_str(),
                    out,
                )
            }
        }
    };
}

/// An enum whose values are fixed words: `as_str`, `FromStr`, `Display`, serde as the word,
/// `ALL` in declaration order, and storage through [`text_column!`].
#[macro_export]
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
                 diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::domain::UnknownValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::domain::UnknownValue {
                        what: $what,
                        value: value.to_owned(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        $crate::text_column!($name);
    };
}

/// A list kept in one text column as a JSON array, for values that belong to their row and
/// are never queried one by one (an application's domains and links, a release's lines).
/// It is written as the text of [`JsonList::to_json`].
#[derive(Debug, Clone, Default, PartialEq, Eq, diesel::FromSqlRow)]
pub struct JsonList<T>(pub Vec<T>);

impl<T: serde::Serialize> JsonList<T> {
    /// The column's text.
    pub fn to_json(items: &[T]) -> String {
        // Serialising strings and string-like values cannot fail.
        serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
    }
}

impl<T> std::ops::Deref for JsonList<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T> From<Vec<T>> for JsonList<T> {
    fn from(items: Vec<T>) -> Self {
        Self(items)
    }
}

impl<T: serde::Serialize> serde::Serialize for JsonList<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<T, DB> FromSql<Text, DB> for JsonList<T>
where
    T: serde::de::DeserializeOwned + std::fmt::Debug,
    DB: Backend,
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<Text, DB>>::from_sql(bytes)?;
        Ok(Self(serde_json::from_str(&text)?))
    }
}
