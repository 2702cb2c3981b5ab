//! The values of an advisory: its CVE id, its severity and its CVSS vector, with the CVSS v3
//! base score that machine-readable advisories (CSAF) must state beside a v3 vector.

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

/// The temporal and environmental metrics of CVSS v3.x with their values (`X`: not defined), as
/// the specification's vector grammar allows them after the base metrics.
const CVSS3_OTHER: &[(&str, &str)] = &[
    ("E", "XUPFH"),
    ("RL", "XOTWU"),
    ("RC", "XURC"),
    ("CR", "XLMH"),
    ("IR", "XLMH"),
    ("AR", "XLMH"),
    ("MAV", "XNALP"),
    ("MAC", "XLH"),
    ("MPR", "XNLH"),
    ("MUI", "XNR"),
    ("MS", "XUC"),
    ("MC", "XNLH"),
    ("MI", "XNLH"),
    ("MA", "XNLH"),
];
/// Every CVSS v4.0 metric, in the order the specification requires in a vector, with its
/// values; the base metrics come first and are mandatory. `U` takes words, listed apart.
const CVSS4_ORDER: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

/// Which CVSS version a vector is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CvssVersion {
    V3_0,
    V3_1,
    V4_0,
}

impl CvssVersion {
    /// The version number as CVSS documents write it: `3.0`, `3.1`, `4.0`.
    pub fn number(self) -> &'static str {
        match self {
            Self::V3_0 => "3.0",
            Self::V3_1 => "3.1",
            Self::V4_0 => "4.0",
        }
    }
}

/// A CVSS v3.x base score and its qualitative rating, as the specification computes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cvss3Score {
    pub base_score: f64,
    /// `NONE`, `LOW`, `MEDIUM`, `HIGH` or `CRITICAL`, as the specification's JSON spells it.
    pub base_severity: &'static str,
}

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
            // Values are capital letters, except v4.0's Provider Urgency (`U:Amber`).
            let well_formed = !metric.is_empty()
                && metric.chars().all(|c| c.is_ascii_alphabetic())
                && !value.is_empty()
                && value.chars().all(|c| c.is_ascii_alphabetic())
                && value.starts_with(|c: char| c.is_ascii_uppercase());
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
        let vector = Self(text.to_owned());
        if !vector.is_canonical() {
            return refuse(&format!(
                "it has a metric or a value that CVSS {} does not define{}",
                vector.version().number(),
                if vector.version() == CvssVersion::V4_0 {
                    ", or its metrics are not in the specification's order"
                } else {
                    ""
                }
            ));
        }
        Ok(vector)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn version(&self) -> CvssVersion {
        // `parse` admits these three prefixes only.
        match self.0.split('/').next() {
            Some("CVSS:3.0") => CvssVersion::V3_0,
            Some("CVSS:3.1") => CvssVersion::V3_1,
            _ => CvssVersion::V4_0,
        }
    }

    fn metrics(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.split('/').skip(1).filter_map(|p| p.split_once(':'))
    }

    /// Whether the vector is written exactly as its version's specification defines: only
    /// metrics of that version with their defined values and, for v4.0, in the defined order.
    /// `parse` is more lenient (it checks the base metrics only), so a vector handed to a
    /// format whose schema spells the grammar out (OSV, CSAF) is checked with this first.
    pub fn is_canonical(&self) -> bool {
        match self.version() {
            CvssVersion::V3_0 | CvssVersion::V3_1 => self.metrics().all(|(metric, value)| {
                CVSS3_BASE
                    .iter()
                    .chain(CVSS3_OTHER)
                    .any(|(m, allowed)| *m == metric && value.len() == 1 && allowed.contains(value))
            }),
            CvssVersion::V4_0 => {
                let mut order = CVSS4_ORDER.iter().enumerate();
                self.metrics().all(|(metric, value)| {
                    order
                        .find(|(_, (m, _))| *m == metric)
                        .is_some_and(|(_, (_, allowed))| allowed.contains(&value))
                })
            }
        }
    }

    /// The base score of a v3.0 or v3.1 vector (CVSS v3.1 specification, section 7.1; v3.0
    /// differs only in how it rounds up). `None` for a v4.0 vector: its score comes from a
    /// table of macro vectors that this service does not carry.
    pub fn cvss3_base_score(&self) -> Option<Cvss3Score> {
        let version = self.version();
        if version == CvssVersion::V4_0 {
            return None;
        }
        let value = |metric: &str| {
            self.metrics()
                .find(|(m, _)| *m == metric)
                .map(|(_, v)| v)
                .unwrap_or_default()
        };
        let changed = value("S") == "C";
        let cia = |metric: &str| -> f64 {
            match value(metric) {
                "H" => 0.56,
                "L" => 0.22,
                _ => 0.0,
            }
        };
        let attack_vector: f64 = match value("AV") {
            "N" => 0.85,
            "A" => 0.62,
            "L" => 0.55,
            _ => 0.2,
        };
        let attack_complexity = if value("AC") == "L" { 0.77 } else { 0.44 };
        let privileges = match (value("PR"), changed) {
            ("N", _) => 0.85,
            ("L", false) => 0.62,
            ("L", true) => 0.68,
            (_, false) => 0.27,
            (_, true) => 0.5,
        };
        let user_interaction = if value("UI") == "N" { 0.85 } else { 0.62 };
        let iss = 1.0 - (1.0 - cia("C")) * (1.0 - cia("I")) * (1.0 - cia("A"));
        let impact = if changed {
            7.52 * (iss - 0.029) - 3.25 * (iss - 0.02).powi(15)
        } else {
            6.42 * iss
        };
        let exploitability =
            8.22 * attack_vector * attack_complexity * privileges * user_interaction;
        let base_score = if impact <= 0.0 {
            0.0
        } else if changed {
            round_up(version, (1.08 * (impact + exploitability)).min(10.0))
        } else {
            round_up(version, (impact + exploitability).min(10.0))
        };
        // Scores have one decimal place, so below 0.1 is 0.0.
        let base_severity = match base_score {
            s if s < 0.1 => "NONE",
            s if s < 4.0 => "LOW",
            s if s < 7.0 => "MEDIUM",
            s if s < 9.0 => "HIGH",
            _ => "CRITICAL",
        };
        Some(Cvss3Score {
            base_score,
            base_severity,
        })
    }
}

/// The smallest number of one decimal place not below `value`. v3.1 first rounds to five
/// decimal places so that floating-point noise (4.000000001) does not push a score up a step;
/// v3.0 rounds up directly, and its published calculators do the same.
fn round_up(version: CvssVersion, value: f64) -> f64 {
    if version == CvssVersion::V3_0 {
        return (value * 10.0).ceil() / 10.0;
    }
    let hundred_thousandths = (value * 100_000.0).round();
    if hundred_thousandths % 10_000.0 == 0.0 {
        hundred_thousandths / 100_000.0
    } else {
        ((hundred_thousandths / 10_000.0).floor() + 1.0) / 10.0
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
            // Supplemental metrics, Provider Urgency in words.
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/AU:Y/U:Amber",
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
            // A metric the version does not have, a value a metric cannot take, and v4.0's
            // required order broken.
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/ZZ:Q",
                "does not define",
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:Purple",
                "does not define",
            ),
            (
                "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SA:N/SI:N",
                "order",
            ),
        ];
        for (bad, why) in cases {
            let error = CvssVector::parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn cvss3_base_scores_match_the_specification() {
        for (vector, score, severity) in [
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
                9.8,
                "CRITICAL",
            ),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", 7.5, "HIGH"),
            (
                "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N",
                6.1,
                "MEDIUM",
            ),
            (
                "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H",
                9.9,
                "CRITICAL",
            ),
            ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "HIGH"),
            ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "LOW"),
            ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "NONE"),
            (
                "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:L/A:L/E:P/RL:O",
                4.7,
                "MEDIUM",
            ),
        ] {
            let cvss = CvssVector::parse(vector).unwrap();
            assert_eq!(
                cvss.cvss3_base_score(),
                Some(Cvss3Score {
                    base_score: score,
                    base_severity: severity
                }),
                "{vector}"
            );
        }
        let v4 =
            CvssVector::parse("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N")
                .unwrap();
        assert_eq!(v4.version(), CvssVersion::V4_0);
        assert_eq!(v4.cvss3_base_score(), None);
    }

    #[test]
    fn canonical_vectors_use_only_their_versions_grammar() {
        for canonical in [
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
            "CVSS:3.0/AV:L/AC:H/PR:H/UI:R/S:C/C:L/I:L/A:L/E:P/RL:O",
            "CVSS:3.1/C:H/AV:N/AC:L/PR:N/UI:N/S:U/I:N/A:N/MAV:X",
            "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/MSI:S",
        ] {
            assert!(
                CvssVector::parse(canonical).unwrap().is_canonical(),
                "{canonical}"
            );
        }
        // What the grammar does not define is refused as it is typed (a vector stored before
        // that rule was not, and documents leave such a stored vector out).
        for outside in [
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/XX:Y",
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/E:Q",
            "CVSS:4.0/AC:L/AV:N/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        ] {
            assert!(CvssVector::parse(outside).is_err(), "{outside}");
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
