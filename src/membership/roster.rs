//! The roster as admins and operators read it: one query that searches, filters and pages the
//! members (the admin page, the CSV and JSON export and `edl member list` all use it), and one
//! writer for each export format. The export holds what identifies a member and how to reach
//! it, never embargoed content, breach records or the reasons given for a suspension.

use std::io::{self, Write};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::members;
use crate::db::search::{contains, lower, ESCAPE};
use crate::db::{DbConnection, DbError, MultiBackend};
use crate::domain::{MemberStatus, OrgDomain, SecurityAlias};
use crate::membership::members::Member;

/// Members on one page of `/admin/members`.
pub const PAGE_SIZE: i64 = 50;

/// Which members to show: those whose organisation, domain, alias or representative contains
/// `search` (any letter case), in `status` when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub search: Option<String>,
    pub status: Option<MemberStatus>,
}

impl Filter {
    /// Reads a filter as typed: an empty search or status (or "all") means any. An unknown
    /// status is refused with a sentence naming the known ones.
    pub fn parse(search: &str, status: &str) -> Result<Self, String> {
        let search = search.trim();
        let status = match status.trim() {
            "" | "all" => None,
            other => Some(other.parse::<MemberStatus>().map_err(|_| {
                format!(
                    "{other:?} is not a member status; use one of: {}.",
                    MemberStatus::ALL
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?),
        };
        Ok(Self {
            search: (!search.is_empty()).then(|| search.to_owned()),
            status,
        })
    }
}

/// The members `filter` selects, unordered: the one place the filter becomes SQL.
fn filtered(filter: &Filter) -> members::BoxedQuery<'static, MultiBackend> {
    let mut query = members::table.into_boxed();
    if let Some(status) = filter.status {
        query = query.filter(members::status.eq(status));
    }
    if let Some(search) = &filter.search {
        let pattern = contains(search);
        query = query.filter(
            lower(members::org_name)
                .like(pattern.clone())
                .escape(ESCAPE)
                .or(lower(members::org_domain)
                    .like(pattern.clone())
                    .escape(ESCAPE))
                .or(lower(members::security_alias)
                    .like(pattern.clone())
                    .escape(ESCAPE))
                .or(lower(members::rep_name)
                    .like(pattern.clone())
                    .escape(ESCAPE))
                .or(lower(members::rep_email).like(pattern).escape(ESCAPE)),
        );
    }
    query
}

/// One page of the roster, in the order of organisation names.
#[derive(Debug, Clone)]
pub struct Page {
    pub members: Vec<Member>,
    /// From 1; a page past the end shows the last one.
    pub page: i64,
    /// At least 1, even when nothing matches.
    pub pages: i64,
    /// Members the filter selects, on every page.
    pub total: i64,
}

/// Page `page` (from 1) of the members `filter` selects, `per_page` to a page. One pass finds
/// the ids of every selected member in order (through the index on names when nothing else
/// narrows it): their number is the total, and the page is a slice of them. Only that page's
/// rows are then read whole, so neither the count nor the sort handles every stored key.
pub fn page(
    conn: &mut DbConnection,
    filter: &Filter,
    page: i64,
    per_page: i64,
) -> Result<Page, DbError> {
    let per_page = per_page.max(1);
    let ids: Vec<i64> = filtered(filter)
        .order((members::org_name.asc(), members::id.asc()))
        .select(members::id)
        .load(conn)?;
    let total = ids.len() as i64;
    let pages = ((total + per_page - 1) / per_page).max(1);
    let page = page.clamp(1, pages);
    let shown: Vec<i64> = ids
        .into_iter()
        .skip(((page - 1) * per_page) as usize)
        .take(per_page as usize)
        .collect();
    let mut members: Vec<Member> = members::table
        .filter(members::id.eq_any(&shown))
        .select(Member::as_select())
        .load(conn)?;
    let order: std::collections::HashMap<i64, usize> =
        shown.iter().enumerate().map(|(n, id)| (*id, n)).collect();
    members.sort_by_key(|m| order.get(&m.id).copied());
    Ok(Page {
        members,
        page,
        pages,
        total,
    })
}

/// A member as the export shows it: only the columns below are read, so a large roster does
/// not bring every stored key along.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = members)]
pub struct RosterRow {
    pub id: i64,
    pub org_name: String,
    pub org_domain: OrgDomain,
    pub security_alias: SecurityAlias,
    pub rep_name: String,
    pub rep_email: String,
    pub status: MemberStatus,
    pub policy_version: i32,
    pub joined_at: NaiveDateTime,
    pub last_reviewed_at: NaiveDateTime,
    pub pgp_fingerprint: Option<String>,
    pub pgp_expires_at: Option<NaiveDateTime>,
}

/// Every member `filter` selects, for the export, in the order of organisation names.
pub fn rows(conn: &mut DbConnection, filter: &Filter) -> Result<Vec<RosterRow>, DbError> {
    Ok(filtered(filter)
        .order((members::org_name.asc(), members::id.asc()))
        .select(RosterRow::as_select())
        .load(conn)?)
}

/// The export's columns, in order: the CSV header and the JSON keys.
pub const COLUMNS: [&str; 12] = [
    "id",
    "organisation",
    "domain",
    "security_alias",
    "representative_name",
    "representative_email",
    "status",
    "policy_version",
    "joined_at",
    "last_reviewed_at",
    "key_fingerprint",
    "key_expires_at",
];

/// A UTC time as the export writes it (RFC 3339).
fn instant(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// One member in the JSON export; the keys are [`COLUMNS`].
#[derive(Serialize)]
struct Record<'a> {
    id: i64,
    organisation: &'a str,
    domain: &'a str,
    security_alias: &'a str,
    representative_name: &'a str,
    representative_email: &'a str,
    status: &'a str,
    policy_version: i32,
    joined_at: String,
    last_reviewed_at: String,
    key_fingerprint: Option<&'a str>,
    key_expires_at: Option<String>,
}

impl RosterRow {
    fn record(&self) -> Record<'_> {
        Record {
            id: self.id,
            organisation: &self.org_name,
            domain: self.org_domain.as_str(),
            security_alias: self.security_alias.as_str(),
            representative_name: &self.rep_name,
            representative_email: &self.rep_email,
            status: self.status.as_str(),
            policy_version: self.policy_version,
            joined_at: instant(self.joined_at),
            last_reviewed_at: instant(self.last_reviewed_at),
            key_fingerprint: self.pgp_fingerprint.as_deref(),
            key_expires_at: self.pgp_expires_at.map(instant),
        }
    }

    /// The row's cells as text, in the order of [`COLUMNS`].
    fn cells(&self) -> [String; 12] {
        let r = self.record();
        [
            r.id.to_string(),
            r.organisation.to_owned(),
            r.domain.to_owned(),
            r.security_alias.to_owned(),
            r.representative_name.to_owned(),
            r.representative_email.to_owned(),
            r.status.to_owned(),
            r.policy_version.to_string(),
            r.joined_at,
            r.last_reviewed_at,
            r.key_fingerprint.unwrap_or_default().to_owned(),
            r.key_expires_at.unwrap_or_default(),
        ]
    }
}

/// A cell as a CSV file holds it. A spreadsheet runs a cell that starts with `=`, `+`, `-`,
/// `@`, a tab or a carriage return as a formula, so such a cell gets a leading `'` and is
/// shown as text; then a cell holding a comma, a quote or a line break is quoted, its quotes
/// doubled (RFC 4180).
pub fn csv_cell(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 3);
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        text.push('\'');
    }
    text.push_str(value);
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// Writes the rows as CSV: a header line, then one line per member, each ending in CRLF.
pub fn write_csv(rows: &[RosterRow], out: &mut impl Write) -> io::Result<()> {
    out.write_all(COLUMNS.join(",").as_bytes())?;
    out.write_all(b"\r\n")?;
    for row in rows {
        let line: Vec<String> = row.cells().iter().map(|c| csv_cell(c)).collect();
        out.write_all(line.join(",").as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Writes the rows as a JSON array of objects keyed by [`COLUMNS`]; a member without a key
/// has `null` for its fingerprint and expiry.
pub fn write_json(rows: &[RosterRow], out: &mut impl Write) -> io::Result<()> {
    let records: Vec<Record<'_>> = rows.iter().map(RosterRow::record).collect();
    serde_json::to_writer_pretty(&mut *out, &records)?;
    out.write_all(b"\n")
}

/// Writes the rows as a table for a terminal: aligned columns, dates without times, one line
/// per member.
pub fn write_table(rows: &[RosterRow], out: &mut impl Write) -> io::Result<()> {
    const HEADINGS: [&str; 10] = [
        "ID",
        "ORGANISATION",
        "DOMAIN",
        "SECURITY ALIAS",
        "REPRESENTATIVE",
        "STATUS",
        "POLICY",
        "JOINED",
        "REVIEWED",
        "KEY EXPIRES",
    ];
    let day = |at: NaiveDateTime| at.format("%Y-%m-%d").to_string();
    let lines: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            let rep = match (r.rep_name.is_empty(), r.rep_email.is_empty()) {
                (true, true) => "-".to_owned(),
                (false, true) => r.rep_name.clone(),
                (true, false) => r.rep_email.clone(),
                (false, false) => format!("{} <{}>", r.rep_name, r.rep_email),
            };
            let key = match (&r.pgp_fingerprint, r.pgp_expires_at) {
                (None, _) => "no key".to_owned(),
                (Some(_), None) => "never".to_owned(),
                (Some(_), Some(at)) => day(at),
            };
            [
                r.id.to_string(),
                // A terminal shows control characters as they are; a name cannot move the
                // cursor or break the line.
                r.org_name.replace(char::is_control, " "),
                r.org_domain.to_string(),
                r.security_alias.to_string(),
                rep.replace(char::is_control, " "),
                r.status.to_string(),
                r.policy_version.to_string(),
                day(r.joined_at),
                day(r.last_reviewed_at),
                key,
            ]
        })
        .collect();
    let mut widths = HEADINGS.map(|h| h.chars().count());
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut write_line = |cells: &[&str]| -> io::Result<()> {
        let mut text = String::new();
        for (n, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if n + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    write_line(&HEADINGS)?;
    for line in &lines {
        let cells: Vec<&str> = line.iter().map(String::as_str).collect();
        write_line(&cells)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_read_as_typed() {
        assert_eq!(Filter::parse(" ", "all"), Ok(Filter::default()));
        let filter = Filter::parse(" acme ", "suspended").expect("a filter");
        assert_eq!(filter.search.as_deref(), Some("acme"));
        assert_eq!(filter.status, Some(MemberStatus::Suspended));
        let refused = Filter::parse("", "gone").expect_err("unknown status");
        assert!(refused.contains("active, suspended, removed"), "{refused}");
    }

    #[test]
    fn cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("Acme"), "Acme");
        assert_eq!(csv_cell("Acme, Inc."), "\"Acme, Inc.\"");
        assert_eq!(csv_cell("The \"Best\""), "\"The \"\"Best\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(
            csv_cell("=HYPERLINK(\"https://evil.example\",\"x\")"),
            "\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"x\"\")\""
        );
        assert_eq!(csv_cell("a=b"), "a=b");
    }
}
