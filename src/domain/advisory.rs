//! The values of an advisory: its CVE id, its severity and its CVSS vector.

crate::text_enum! {
    /// How severe an issue is, from the most severe down: `ALL[0]` is the highest.
    pub enum Severity ("severity") {
        Critical = "critical",
        High = "high",
        Medium = "medium",
        Low = "low",
    }
}

impl Severity {
    /// The highest of `severities`, if there is any.
    pub fn highest(severities: impl IntoIterator<Item = Severity>) -> Option<Severity> {
        // Declared from the most severe down, so the smallest is the highest.
        severities.into_iter().min()
    }
}

/// A CVE id such as `CVE-2026-31337`: the year has four digits, the number four or more.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct CveId(String);

impl CveId {
    pub fn parse(value: &str) -> Result<Self, String> {
        let cve = value.trim().to_uppercase();
        let ok = cve
            .strip_prefix("CVE-")
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(year, number)| {
                year.len() == 4
                    && year.chars().all(|c| c.is_ascii_digit())
                    && (4..=19).contains(&number.len())
                    && number.chars().all(|c| c.is_ascii_digit())
            });
        if ok {
            Ok(Self(cve))
        } else {
            Err("Give the CVE id as CVE-YYYY-NNNN.".to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A CVSS v3.0, v3.1 or v4.0 vector with every base metric given once and a valid value,
/// e.g. `CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub struct CvssVector(String);

/// (metric, allowed values) of the base metrics, which every vector of that version carries.
const CVSS3_BASE: &[(&str, &str)] = &[
    ("AV", "NALP"),
    ("AC", "LH"),
    ("PR", "NLH"),
    ("UI", "NR"),
    ("S", "UC"),
    ("C", "HLN"),
    ("I", "HLN"),
    ("A", "HLN"),
];
const CVSS4_BASE: &[(&str, &str)] = &[
    ("AV", "NALP"),
    ("AC", "LH"),
    ("AT", "NP"),
    ("PR", "NLH"),
    ("UI", "NPA"),
    ("VC", "HLN"),
    ("VI", "HLN"),
    ("VA", "HLN"),
    ("SC", "HLN"),
    ("SI", "HLN"),
    ("SA", "HLN"),
];

impl CvssVector {
    pub fn parse(value: &str) -> Result<Self, String> {
        let text = value.trim();
        let refuse = |why: &str| {
            Err(format!(
                "The CVSS vector is not usable: {why}. Give it as CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N or a CVSS:4.0 vector, or leave it empty."
            ))
        };
        let mut parts = text.split('/');
        let base = match parts.next() {
            Some("CVSS:3.0" | "CVSS:3.1") => CVSS3_BASE,
            Some("CVSS:4.0") => CVSS4_BASE,
            _ => return refuse("it does not start with CVSS:3.0, CVSS:3.1 or CVSS:4.0"),
        };
        let mut seen: Vec<&str> = Vec::new();
        // A part is quoted back at most this long: the form keeps the whole value anyway.
        let quoted = |part: &str| match part.char_indices().nth(16) {
            Some((cut, _)) => format!("\"{}…\"", &part[..cut]),
            None => format!("{part:?}"),
        };
        for part in parts {
            let Some((metric, value)) = part.split_once(':') else {
                return refuse(&format!("{} is not METRIC:VALUE", quoted(part)));
            };
            let well_formed = !metric.is_empty()
                && metric.chars().all(|c| c.is_ascii_alphabetic())
                && !value.is_empty()
                && value.chars().all(|c| c.is_ascii_uppercase());
            if !well_formed {
                return refuse(&format!("{} is not METRIC:VALUE", quoted(part)));
            }
            if seen.contains(&metric) {
                return refuse(&format!("{metric} is given twice"));
            }
            if let Some((_, allowed)) = base.iter().find(|(m, _)| *m == metric) {
                if value.len() != 1 || !allowed.contains(value) {
                    return refuse(&format!(
                        "{metric}:{value} is not a value {metric} can take"
                    ));
                }
            }
            seen.push(metric);
        }
        if let Some((missing, _)) = base.iter().find(|(m, _)| !seen.contains(m)) {
            return refuse(&format!("the base metric {missing} is missing"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! text_value {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = String;

            fn from_str(value: &str) -> Result<Self, String> {
                Self::parse(value)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        crate::text_column!($ty);
    };
}

text_value!(CveId);
text_value!(CvssVector);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cve_ids() {
        assert_eq!(
            CveId::parse(" cve-2026-31337 ").expect("cve").as_str(),
            "CVE-2026-31337"
        );
        for bad in [
            "CVE-26-1234",
            "CVE-2026-123",
            "2026-1234",
            "CVE-2026-12a4",
            "",
        ] {
            assert!(CveId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cvss_vectors_of_each_version() {
        for good in [
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
            "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:L/A:L/E:P/RL:O",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        ] {
            assert!(CvssVector::parse(good).is_ok(), "{good}");
        }
        let cases = [
            ("AV:N/AC:L/Au:N/C:P/I:P/A:P", "does not start"),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N",
                "base metric A is missing",
            ),
            ("CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", "AV:X"),
            (
                "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                "given twice",
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/<b>",
                "METRIC:VALUE",
            ),
        ];
        for (bad, why) in cases {
            let error = CvssVector::parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn the_highest_severity_is_the_most_severe() {
        assert_eq!(
            Severity::highest([Severity::Low, Severity::High, Severity::Medium]),
            Some(Severity::High)
        );
        assert_eq!(Severity::highest([]), None);
    }
}
