//! A published release as machine-readable advisories: one OSV document per advisory (the
//! format vulnerability scanners and databases read) and one CSAF 2.0 security advisory for the
//! whole release (the format vendors and CERTs exchange). Both are built from a
//! [`PublicRelease`] only, so they can say nothing the release page does not, and only once the
//! release is published: before that there is no document at all.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::domain::{CvssVector, CvssVersion};
use crate::releases::visibility::{PublicAdvisory, PublicRelease};

/// The OSV schema version the documents follow; `tests/validators/schemas/` holds that schema.
pub const OSV_SCHEMA_VERSION: &str = "1.7.5";

/// What the documents say about who publishes them, besides the release itself.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The project whose releases these are: the CSAF publisher and vendor, and the product.
    pub project_name: &'a str,
    /// The list's own name, which the documents give as their source.
    pub list_name: &'a str,
    /// The site's base URL without a trailing slash: the CSAF publisher's namespace.
    pub site_url: &'a str,
}

/// Where a release's OSV documents are served, as one JSON array.
pub fn osv_url(release: &PublicRelease) -> String {
    format!("{}/osv.json", release.url)
}

/// Where one advisory's OSV document is served.
pub fn osv_advisory_url(release: &PublicRelease, cve_id: &str) -> String {
    format!("{}/osv/{cve_id}.json", release.url)
}

/// Where a release's CSAF document is served.
pub fn csaf_url(release: &PublicRelease) -> String {
    format!("{}/csaf.json", release.url)
}

/// RFC 3339 in UTC with a `Z`, to the second, as both schemas' timestamps are read.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The release's publication time with its advisories, or `None` while it is not published:
/// the documents exist only from the release time on, whatever a caller passes.
fn published(release: &PublicRelease) -> Option<(DateTime<Utc>, &[PublicAdvisory])> {
    release
        .published_at
        .map(|at| (at, release.advisories.as_slice()))
}

/// Line breaks and runs of spaces folded into single spaces.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first line of a summary, cut at a word to about 120 characters as OSV recommends for
/// its one-line `summary`; the whole text goes into `details`.
fn headline(summary: &str) -> String {
    const LIMIT: usize = 120;
    let first = summary
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    let line = one_line(first);
    if line.chars().count() <= LIMIT {
        return line;
    }
    let mut out = String::new();
    for word in line.split(' ') {
        if out.chars().count() + word.chars().count() + 1 > LIMIT - 1 {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        out = line.chars().take(LIMIT - 1).collect();
    }
    out.push('…');
    out
}

/// Plain text as CommonMark that shows it literally: OSV's `details` is Markdown, and a
/// summary such as "<crafted> paths" must not become markup in a consumer's page. Inline
/// markup characters are escaped everywhere, and block markers at the start of a paragraph.
fn markdown_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\`*_[]<>#!|~&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    // "- ", "+ ", "= " and "1. " open lists and headings at the start of a paragraph.
    let starts_block = out.starts_with(['-', '+', '='])
        || out
            .find(|c: char| !c.is_ascii_digit())
            .is_some_and(|i| i > 0 && out[i..].starts_with(['.', ')']));
    if starts_block {
        match out.find(|c: char| !c.is_ascii_digit()) {
            Some(i) if i > 0 => out.insert(i, '\\'),
            _ => out.insert(0, '\\'),
        }
    }
    out
}

/// The paragraphs of a free-text field, each on one line.
fn paragraphs(text: &str) -> Vec<String> {
    text.split("\n\n")
        .flat_map(|p| p.split("\r\n\r\n"))
        .map(one_line)
        .filter(|p| !p.is_empty())
        .collect()
}

/// The vector if its schema can take it: both formats spell the CVSS grammar out.
fn canonical_vector(advisory: &PublicAdvisory) -> Option<&CvssVector> {
    advisory.cvss_vector.as_ref().filter(|v| v.is_canonical())
}

// ---------------------------------------------------------------------------------------------
// OSV

/// The OSV documents of a published release, one per advisory in the release's order; `None`
/// while the release is not published.
pub fn osv(release: &PublicRelease, site: Site<'_>) -> Option<Vec<Value>> {
    let (published_at, advisories) = published(release)?;
    Some(
        advisories
            .iter()
            .map(|a| osv_document(release, published_at, a, site))
            .collect(),
    )
}

/// The OSV document of one advisory of a published release; `None` while the release is not
/// published or when it has no advisory with that CVE id.
pub fn osv_for(release: &PublicRelease, site: Site<'_>, cve_id: &str) -> Option<Value> {
    let (published_at, advisories) = published(release)?;
    advisories
        .iter()
        .find(|a| a.cve_id.eq_ignore_ascii_case(cve_id))
        .map(|a| osv_document(release, published_at, a, site))
}

fn osv_document(
    release: &PublicRelease,
    published_at: DateTime<Utc>,
    advisory: &PublicAdvisory,
    site: Site<'_>,
) -> Value {
    let mut details: Vec<String> = paragraphs(&advisory.summary)
        .iter()
        .map(|p| markdown_text(p))
        .collect();
    if !advisory.affected_versions.trim().is_empty() {
        details.push(format!(
            "Affected versions: {}",
            markdown_text(&one_line(&advisory.affected_versions))
        ));
    }
    details.push(format!(
        "Fixed versions: {}",
        markdown_text(&one_line(&advisory.fixed_versions))
    ));
    details.push(format!(
        "Severity: {}. Fixed in {}, published at <{}>.",
        advisory.severity.as_str(),
        markdown_text(&one_line(&release.title)),
        release.url
    ));
    let mut document = json!({
        "schema_version": OSV_SCHEMA_VERSION,
        // The CVE id itself: the list is no database of its own with an OSV prefix, and a
        // scanner that knows the CVE finds this record under it. A public release never
        // changes, so the record is as old as the publication.
        "id": advisory.cve_id,
        "modified": timestamp(published_at),
        "published": timestamp(published_at),
        "summary": headline(&advisory.summary),
        "details": details.join("\n\n"),
        // Versions are free text here ("1.9.0 to 1.9.4", "< 1.9.5"), and the project belongs
        // to no OSV ecosystem this service could name, so they are given as written, for
        // people, rather than as ranges a scanner would trust.
        "affected": [{
            "database_specific": {
                "project": site.project_name,
                "affected_versions": advisory.affected_versions,
                "fixed_versions": advisory.fixed_versions,
            }
        }],
        "references": [
            { "type": "ADVISORY", "url": release.url },
            { "type": "ADVISORY", "url": csaf_url(release) },
            {
                "type": "WEB",
                "url": format!("https://www.cve.org/CVERecord?id={}", advisory.cve_id),
            },
        ],
        "database_specific": {
            "source": osv_advisory_url(release, &advisory.cve_id),
            "list": site.list_name,
            "severity": advisory.severity.as_str(),
            "release": {
                "id": release.id,
                "title": release.title,
                "url": release.url,
                "published": timestamp(published_at),
            },
        },
    });
    if let Some(vector) = canonical_vector(advisory) {
        let kind = match vector.version() {
            CvssVersion::V3_0 | CvssVersion::V3_1 => "CVSS_V3",
            CvssVersion::V4_0 => "CVSS_V4",
        };
        document["severity"] = json!([{ "type": kind, "score": vector.as_str() }]);
    }
    document
}

// ---------------------------------------------------------------------------------------------
// CSAF 2.0

/// A product of the release's product tree: a version or a range of the project, with the id
/// the vulnerabilities refer to it by.
struct Product {
    /// `product_version` or `product_version_range`.
    category: &'static str,
    /// The version or range as written.
    name: String,
    id: String,
}

/// The products of a release: every distinct affected range and fixed version of its
/// advisories, each once, in order of first mention.
#[derive(Default)]
struct Products(Vec<Product>);

impl Products {
    fn id_for(&mut self, category: &'static str, name: &str, prefix: &str) -> String {
        if let Some(p) = self
            .0
            .iter()
            .find(|p| p.category == category && p.name == name && p.id.starts_with(prefix))
        {
            return p.id.clone();
        }
        let id = format!(
            "{prefix}-{}",
            self.0.iter().filter(|p| p.id.starts_with(prefix)).count() + 1
        );
        self.0.push(Product {
            category,
            name: name.to_owned(),
            id: id.clone(),
        });
        id
    }

    /// The affected range as one product: a range in words is a `product_version_range`,
    /// never a `product_version` (CSAF 2.0 test 6.1.31).
    fn affected(&mut self, text: &str) -> Option<String> {
        let text = one_line(text);
        (!text.is_empty()).then(|| self.id_for("product_version_range", &text, "affected"))
    }

    /// The fixed versions: one product per version when the text is a list of versions
    /// ("1.9.5, 1.8.6"), otherwise the text as one range ("1.9.5 and later").
    fn fixed(&mut self, text: &str) -> Vec<String> {
        let versions: Vec<String> = text
            .split([',', ';'])
            .flat_map(|part| part.split(" and "))
            .map(one_line)
            .filter(|v| !v.is_empty())
            .collect();
        if !versions.is_empty() && versions.iter().all(|v| is_version(v)) {
            versions
                .iter()
                .map(|v| self.id_for("product_version", v, "fixed"))
                .collect()
        } else {
            let text = one_line(text);
            if text.is_empty() {
                return Vec::new();
            }
            vec![self.id_for("product_version_range", &text, "fixed")]
        }
    }
}

/// A single version such as `1.9.5`, `v1.10.0` or `1.9.5-rc.1`: digits and dots, an optional
/// `v`, and an optional pre-release or build suffix.
fn is_version(text: &str) -> bool {
    let text = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let (core, suffix) = match text.find(['-', '+']) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text, ""),
    };
    let core_ok = !core.is_empty()
        && core
            .split('.')
            .all(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    let suffix_ok = suffix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    core_ok && suffix_ok && (text.len() == core.len() || !suffix.is_empty())
}

/// The CSAF 2.0 security advisory (profile "Security Advisory", CSAF 2.0 section 4.4) of a
/// published release: one vulnerability per advisory, the affected and fixed versions as
/// products of the project, the fix as the vendor's remediation. `None` while the release is
/// not published, or if it has no advisory (the profile needs at least one vulnerability).
pub fn csaf(release: &PublicRelease, site: Site<'_>) -> Option<Value> {
    let (published_at, advisories) = published(release)?;
    if advisories.is_empty() {
        return None;
    }
    let date = timestamp(published_at);
    let mut products = Products::default();
    let vulnerabilities: Vec<Value> = advisories
        .iter()
        .map(|a| csaf_vulnerability(release, a, &date, &mut products))
        .collect();

    let cves: Vec<&str> = advisories.iter().map(|a| a.cve_id.as_str()).collect();
    let summary = format!(
        "{} fixes {} in {}: {}. Upgrade to a fixed version.",
        one_line(&release.title),
        if cves.len() == 1 {
            "1 vulnerability".to_owned()
        } else {
            format!("{} vulnerabilities", cves.len())
        },
        one_line(site.project_name),
        cves.join(", ")
    );
    let mut document = json!({
        "category": "csaf_security_advisory",
        "csaf_version": "2.0",
        "lang": "en",
        "title": one_line(&release.title),
        "publisher": {
            "category": "vendor",
            "name": one_line(site.project_name),
            "namespace": site.site_url,
            "contact_details": format!("{}: {}", one_line(site.list_name), site.site_url),
        },
        // Published means public: anyone may pass the document on.
        "distribution": { "tlp": { "label": "WHITE" } },
        "notes": [{
            "category": "summary",
            "title": "Summary",
            "text": summary,
        }],
        "references": [
            {
                "category": "self",
                "summary": "This document.",
                "url": csaf_url(release),
            },
            {
                "category": "external",
                "summary": "The release page, with the advisories.",
                "url": release.url,
            },
            {
                "category": "external",
                "summary": "The advisories in OSV format.",
                "url": osv_url(release),
            },
        ],
        "tracking": {
            "id": format!("release-{}", release.id),
            "status": "final",
            // A public release is never changed again, so there is one version.
            "version": "1",
            "initial_release_date": date,
            "current_release_date": date,
            "revision_history": [{
                "date": date,
                "number": "1",
                "summary": "Published at the release time.",
            }],
            "generator": {
                "engine": { "name": "edl", "version": env!("CARGO_PKG_VERSION") },
            },
        },
    });
    if let Some(severity) = release.highest_severity {
        document["aggregate_severity"] = json!({ "text": capitalised(severity.as_str()) });
    }
    let versions: Vec<Value> = products
        .0
        .iter()
        .map(|p| {
            json!({
                "category": p.category,
                "name": p.name,
                "product": {
                    "name": format!("{} {}", one_line(site.project_name), p.name),
                    "product_id": p.id,
                },
            })
        })
        .collect();
    Some(json!({
        "document": document,
        "product_tree": {
            "branches": [{
                "category": "vendor",
                "name": one_line(site.project_name),
                "branches": [{
                    "category": "product_name",
                    "name": one_line(site.project_name),
                    "branches": versions,
                }],
            }],
        },
        "vulnerabilities": vulnerabilities,
    }))
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn csaf_vulnerability(
    release: &PublicRelease,
    advisory: &PublicAdvisory,
    date: &str,
    products: &mut Products,
) -> Value {
    let affected: Vec<String> = products
        .affected(&advisory.affected_versions)
        .into_iter()
        .collect();
    let fixed = products.fixed(&advisory.fixed_versions);
    let mut status = serde_json::Map::new();
    if !affected.is_empty() {
        status.insert("known_affected".into(), json!(affected));
    }
    if !fixed.is_empty() {
        status.insert("fixed".into(), json!(fixed));
    }
    // The fix is for the affected versions; with none named, it is stated for the versions
    // that carry it, so the remediation still names products (CSAF 2.0 test 6.1.29).
    let remedied = if affected.is_empty() {
        &fixed
    } else {
        &affected
    };
    let mut notes = vec![json!({
        "category": "summary",
        "title": "Summary",
        "text": paragraphs(&advisory.summary).join("\n\n"),
    })];
    notes.push(json!({
        "category": "details",
        "title": "Versions",
        "text": format!(
            "Affected versions: {}\nFixed versions: {}",
            if advisory.affected_versions.trim().is_empty() {
                "not stated".to_owned()
            } else {
                one_line(&advisory.affected_versions)
            },
            one_line(&advisory.fixed_versions)
        ),
    }));
    let mut vulnerability = json!({
        "cve": advisory.cve_id,
        "title": headline(&advisory.summary),
        "notes": notes,
        "product_status": status,
        "release_date": date,
        "remediations": [{
            "category": "vendor_fix",
            "details": format!("Upgrade to {}.", one_line(&advisory.fixed_versions)),
            "product_ids": remedied,
            "url": release.url,
        }],
        "references": [
            {
                "category": "external",
                "summary": "The CVE record.",
                "url": format!("https://www.cve.org/CVERecord?id={}", advisory.cve_id),
            },
            {
                "category": "external",
                "summary": "This vulnerability in OSV format.",
                "url": osv_advisory_url(release, &advisory.cve_id),
            },
        ],
    });
    // The project's own rating, which every advisory has; a CVSS v3 score beside it where a
    // vector was given (CSAF 2.0 has no place for a v4.0 vector, so that one is quoted).
    let mut impact = format!(
        "The project rates this vulnerability {} severity.",
        advisory.severity.as_str()
    );
    let vector = canonical_vector(advisory);
    if let Some(v) = vector.filter(|v| v.version() == CvssVersion::V4_0) {
        impact.push_str(&format!(" CVSS v4.0 vector: {}.", v.as_str()));
    }
    vulnerability["threats"] = json!([{
        "category": "impact",
        "details": impact,
        "product_ids": remedied,
    }]);
    if let Some((v, score)) = vector.and_then(|v| v.cvss3_base_score().map(|s| (v, s))) {
        if !affected.is_empty() {
            vulnerability["scores"] = json!([{
                "products": affected,
                "cvss_v3": {
                    "version": v.version().number(),
                    "vectorString": v.as_str(),
                    "baseScore": score.base_score,
                    "baseSeverity": score.base_severity,
                },
            }]);
        }
    }
    vulnerability
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Severity;
    use chrono::TimeZone;

    const SITE: Site<'static> = Site {
        project_name: "Mesh",
        list_name: "Mesh security early-disclosure list",
        site_url: "https://security.example.org",
    };

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap()
    }

    fn advisory(cve: &str, vector: &str, affected: &str, fixed: &str) -> PublicAdvisory {
        PublicAdvisory {
            cve_id: cve.into(),
            severity: Severity::High,
            cvss_vector: CvssVector::parse(vector).ok(),
            summary: "Authorization bypass with <crafted> paths & *more*.\n\n- Second paragraph."
                .into(),
            affected_versions: affected.into(),
            fixed_versions: fixed.into(),
        }
    }

    fn release(published: bool) -> PublicRelease {
        PublicRelease {
            id: 7,
            title: "Security release 1.9.5, 1.8.6".into(),
            release_at: at(8, 16),
            announced_at: at(1, 16),
            published_at: published.then(|| at(8, 16)),
            release_lines: vec!["1.9.5".into(), "1.8.6".into()],
            issue_count: 2,
            highest_severity: Some(Severity::High),
            advisories: vec![
                advisory(
                    "CVE-2026-1111",
                    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                    "1.9.0 to 1.9.4, 1.8.0 to 1.8.5",
                    "1.9.5, 1.8.6",
                ),
                advisory(
                    "CVE-2026-2222",
                    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                    "< 1.9.5",
                    "1.9.5",
                ),
            ],
            url: "https://security.example.org/releases/7".into(),
        }
    }

    #[test]
    fn nothing_exists_before_publication() {
        // Even a caller that passes advisories for an unpublished release gets nothing.
        let announced = release(false);
        assert!(osv(&announced, SITE).is_none());
        assert!(osv_for(&announced, SITE, "CVE-2026-1111").is_none());
        assert!(csaf(&announced, SITE).is_none());
    }

    #[test]
    fn osv_has_one_document_per_advisory() {
        let docs = osv(&release(true), SITE).unwrap();
        assert_eq!(docs.len(), 2);
        let first = &docs[0];
        assert_eq!(first["id"], "CVE-2026-1111");
        assert_eq!(first["schema_version"], OSV_SCHEMA_VERSION);
        assert_eq!(first["published"], "2026-12-08T16:00:00Z");
        assert_eq!(first["modified"], "2026-12-08T16:00:00Z");
        assert_eq!(
            first["severity"],
            json!([{ "type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N" }])
        );
        assert_eq!(docs[1]["severity"][0]["type"], "CVSS_V4");
        assert_eq!(
            first["affected"][0]["database_specific"]["fixed_versions"],
            "1.9.5, 1.8.6"
        );
        assert_eq!(
            first["references"][0],
            json!({ "type": "ADVISORY", "url": "https://security.example.org/releases/7" })
        );
        assert_eq!(
            first["summary"],
            "Authorization bypass with <crafted> paths & *more*."
        );
        let details = first["details"].as_str().unwrap();
        assert!(
            details.starts_with(
                "Authorization bypass with \\<crafted\\> paths \\& \\*more\\*.\n\n\\- Second paragraph."
            ),
            "{details}"
        );
        assert_eq!(
            osv_for(&release(true), SITE, "cve-2026-2222").unwrap()["id"],
            "CVE-2026-2222"
        );
        assert!(osv_for(&release(true), SITE, "CVE-2026-3333").is_none());
    }

    #[test]
    fn a_vector_outside_the_grammar_is_not_given_as_a_score() {
        let mut r = release(true);
        r.advisories[0].cvss_vector =
            CvssVector::parse("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/XX:Y").ok();
        r.advisories[1].cvss_vector = None;
        for doc in osv(&r, SITE).unwrap() {
            assert!(doc.get("severity").is_none(), "{doc}");
        }
        let csaf = csaf(&r, SITE).unwrap();
        assert!(csaf["vulnerabilities"][0].get("scores").is_none());
    }

    #[test]
    fn csaf_lists_products_statuses_scores_and_the_fix() {
        let doc = csaf(&release(true), SITE).unwrap();
        assert_eq!(doc["document"]["category"], "csaf_security_advisory");
        assert_eq!(doc["document"]["csaf_version"], "2.0");
        assert_eq!(
            doc["document"]["tracking"]["initial_release_date"],
            "2026-12-08T16:00:00Z"
        );
        assert_eq!(doc["document"]["aggregate_severity"]["text"], "High");
        assert_eq!(
            doc["document"]["publisher"]["namespace"],
            "https://security.example.org"
        );
        let versions = &doc["product_tree"]["branches"][0]["branches"][0]["branches"];
        let names: Vec<(&str, &str, &str)> = versions
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["category"].as_str().unwrap(),
                    b["name"].as_str().unwrap(),
                    b["product"]["product_id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                (
                    "product_version_range",
                    "1.9.0 to 1.9.4, 1.8.0 to 1.8.5",
                    "affected-1"
                ),
                ("product_version", "1.9.5", "fixed-1"),
                ("product_version", "1.8.6", "fixed-2"),
                ("product_version_range", "< 1.9.5", "affected-2"),
            ]
        );
        let first = &doc["vulnerabilities"][0];
        assert_eq!(first["cve"], "CVE-2026-1111");
        assert_eq!(
            first["product_status"],
            json!({ "known_affected": ["affected-1"], "fixed": ["fixed-1", "fixed-2"] })
        );
        assert_eq!(first["remediations"][0]["category"], "vendor_fix");
        assert_eq!(
            first["remediations"][0]["product_ids"],
            json!(["affected-1"])
        );
        assert_eq!(
            first["scores"][0]["cvss_v3"],
            json!({
                "version": "3.1",
                "vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N",
                "baseScore": 7.5,
                "baseSeverity": "HIGH",
            })
        );
        let second = &doc["vulnerabilities"][1];
        assert_eq!(
            second["product_status"],
            json!({ "known_affected": ["affected-2"], "fixed": ["fixed-1"] })
        );
        assert!(second.get("scores").is_none());
        assert!(second["threats"][0]["details"]
            .as_str()
            .unwrap()
            .contains("CVSS v4.0 vector: CVSS:4.0/"));
    }

    #[test]
    fn fixed_versions_in_words_become_a_range() {
        let mut products = Products::default();
        assert_eq!(products.fixed("1.9.5 and later"), ["fixed-1"]);
        assert_eq!(products.0[0].category, "product_version_range");
        assert_eq!(
            products.fixed("v1.10.0 and 1.9.7-rc.1"),
            ["fixed-2", "fixed-3"]
        );
        assert_eq!(products.0[1].category, "product_version");
        assert_eq!(products.affected("  "), None);
    }

    #[test]
    fn versions_and_headlines() {
        for good in ["1.9.5", "v1.10.0", "1.9.5-rc.1", "2", "1.2.3+build.7"] {
            assert!(is_version(good), "{good}");
        }
        for bad in [
            "1.9.x",
            "<1.9.5",
            "1.9.5 and later",
            "",
            "v",
            "1..2",
            "1.2-",
        ] {
            assert!(!is_version(bad), "{bad}");
        }
        let long = "word ".repeat(40);
        let line = headline(&long);
        assert!(line.chars().count() <= 120 && line.ends_with('…'), "{line}");
        assert_eq!(headline("\n  First line\nsecond"), "First line");
        assert_eq!(markdown_text("1. item"), "1\\. item");
        assert_eq!(markdown_text("# title"), "\\# title");
    }
}
