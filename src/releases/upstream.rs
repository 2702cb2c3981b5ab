//! The upstream rule: an upstream's embargoed fixes (Envoy's, by default) are never
//! redistributed. Everything about it lives here:
//!
//! - recognising an upstream's patch filed as the project's: Envoy's tree at any depth (its
//!   layout shipped as data, or an upstream's exact file list imported by an operator), the
//!   changed lines that carry Envoy's code, its authors and repository, and the same change
//!   already filed as a withheld upstream's;
//! - checking the free text that goes into members' mail and onto public pages;
//! - the flag that blocks approval until a person sets a flagged patch's origin, with the
//!   reason on record;
//! - how a mailing groups the fixes it withholds;
//! - the last check before any message leaves, which refuses a withheld or flagged patch
//!   whatever put it in the message.
//!
//! Evidence shown to people names paths, header lines and which rule matched: never a patch's
//! content.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use chrono::NaiveDateTime;

use diesel::prelude::*;
use regex::Regex;
use serde::Serialize;
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

use crate::audit;
use crate::db::schema::{
    outbox_attachments, patch_hunks, patches, project_paths, releases, upstream_files, upstreams,
};
use crate::db::{self, DbConnection, DbError};
use crate::mail::transport::Attachment;
use crate::releases::patch::{LinePlace, PatchAnalysis};
use crate::releases::release::{Actor, Patch, ReleaseError};

/// The built-in upstream, seeded by the first migration with may-redistribute off.
pub const ENVOY_SLUG: &str = "envoy";

/// Envoy's security policy, linked wherever Envoy's fixes are withheld. The same URL is seeded
/// into the `upstreams` table by the first migration.
pub const ENVOY_POLICY_URL: &str = "https://github.com/envoyproxy/envoy/security/policy";

/// Envoy's characteristic tree: directory prefixes with their code's extensions, and build
/// file names. See the file for its format.
const ENVOY_LAYOUT: &str = include_str!("../../data/upstreams/envoy-layout.txt");

/// How many paths or addresses a reason names before it says "and N more": enough to recognise
/// the evidence without turning the reason into a listing.
const EVIDENCE_SHOWN: usize = 3;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = upstreams)]
pub struct Upstream {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub policy_url: String,
    pub may_redistribute: bool,
    pub created_at: NaiveDateTime,
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Upstream>, DbError> {
    Ok(upstreams::table
        .order(upstreams::name)
        .select(Upstream::as_select())
        .load(conn)?)
}

/// How many paths of each upstream's exact tree were imported: (upstream id, count).
pub fn imported_file_counts(conn: &mut DbConnection) -> Result<Vec<(i64, i64)>, DbError> {
    Ok(upstream_files::table
        .group_by(upstream_files::upstream_id)
        .select((upstream_files::upstream_id, diesel::dsl::count_star()))
        .load(conn)?)
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Option<Upstream>, DbError> {
    Ok(upstreams::table
        .filter(upstreams::slug.eq(slug))
        .select(Upstream::as_select())
        .first(conn)
        .optional()?)
}

/// Adds an upstream whose embargoed fixes a release may carry. Envoy is built in.
pub fn add(
    conn: &mut DbConnection,
    name: &str,
    policy_url: &str,
    may_redistribute: bool,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    let name = name.trim();
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    if slug.is_empty() || name.chars().count() > 100 {
        return Err(ReleaseError::invalid(
            "name",
            "Give the upstream's name (at most 100 characters).",
        ));
    }
    let url_ok = url::Url::parse(policy_url.trim())
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if !url_ok {
        return Err(ReleaseError::invalid(
            "policy_url",
            "Give the upstream's security policy as an https:// address.",
        ));
    }
    db::write_transaction(conn, |conn| {
        if find_by_slug(conn, &slug)?.is_some() {
            return Err(ReleaseError::invalid(
                "name",
                format!("An upstream named {name} already exists."),
            ));
        }
        let id: i64 = diesel::insert_into(upstreams::table)
            .values((
                upstreams::slug.eq(&slug),
                upstreams::name.eq(name),
                upstreams::policy_url.eq(policy_url.trim()),
                upstreams::may_redistribute.eq(may_redistribute),
                upstreams::created_at.eq(db::now()),
            ))
            .returning(upstreams::id)
            .get_result(conn)?;
        audit::record(
            conn,
            &by.email,
            "upstream.added",
            &format!("upstream:{id}"),
            json!({ "name": name, "policy_url": policy_url.trim(), "may_redistribute": may_redistribute }),
        )?;
        Ok(id)
    })
}

// ---------------------------------------------------------------------------------------------
// What the guard knows: upstreams' trees and the project's own look-alike paths

/// Text as the guard reads it: compatibility-folded (NFKC: fullwidth letters and slashes
/// become ASCII), without invisible characters (zero-width spaces and joiners, soft hyphens,
/// direction marks), and with the Cyrillic and Greek letters that look like Latin ones written
/// as those. So `ｓｏｕｒｃｅ／common`, `sоurce` with a Cyrillic o, and `Env\u{200b}oy::` read
/// as what they look like.
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.nfkc()
            .filter(|c| !is_invisible(*c))
            .map(latin_lookalike)
            .collect(),
    )
}

/// Characters that change nothing a reader sees.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// The Latin letter a Cyrillic or Greek letter is drawn like, or the character itself.
fn latin_lookalike(c: char) -> char {
    const PAIRS: &[(char, char)] = &[
        ('а', 'a'),
        ('в', 'b'),
        ('с', 'c'),
        ('ԁ', 'd'),
        ('е', 'e'),
        ('һ', 'h'),
        ('і', 'i'),
        ('ј', 'j'),
        ('к', 'k'),
        ('м', 'm'),
        ('н', 'h'),
        ('о', 'o'),
        ('р', 'p'),
        ('ԛ', 'q'),
        ('ѕ', 's'),
        ('т', 't'),
        ('ԝ', 'w'),
        ('х', 'x'),
        ('у', 'y'),
        ('ё', 'e'),
        ('ї', 'i'),
        ('А', 'A'),
        ('В', 'B'),
        ('С', 'C'),
        ('Е', 'E'),
        ('Н', 'H'),
        ('І', 'I'),
        ('Ј', 'J'),
        ('К', 'K'),
        ('М', 'M'),
        ('О', 'O'),
        ('Р', 'P'),
        ('Ѕ', 'S'),
        ('Т', 'T'),
        ('Х', 'X'),
        ('У', 'Y'),
        ('Ԝ', 'W'),
        ('Ү', 'Y'),
        ('α', 'a'),
        ('ε', 'e'),
        ('ι', 'i'),
        ('κ', 'k'),
        ('ν', 'v'),
        ('ο', 'o'),
        ('ρ', 'p'),
        ('τ', 't'),
        ('υ', 'u'),
        ('χ', 'x'),
        ('Α', 'A'),
        ('Β', 'B'),
        ('Ε', 'E'),
        ('Ζ', 'Z'),
        ('Η', 'H'),
        ('Ι', 'I'),
        ('Κ', 'K'),
        ('Μ', 'M'),
        ('Ν', 'N'),
        ('Ο', 'O'),
        ('Ρ', 'P'),
        ('Τ', 'T'),
        ('Υ', 'Y'),
        ('Χ', 'X'),
        ('ı', 'i'),
        ('ȷ', 'j'),
        ('ɡ', 'g'),
        ('ℓ', 'l'),
    ];
    PAIRS
        .iter()
        .find(|(from, _)| *from == c)
        .map_or(c, |(_, to)| *to)
}

/// A path as the guard compares it: [`fold`]ed, lower case, `/` separators, `.` and `..`
/// resolved, no doubled or trailing separators, no surrounding white space.
pub fn normalise_path(path: &str) -> String {
    let lower = fold(path).trim().replace('\\', "/").to_lowercase();
    // `..` is resolved as a file system would, so `ours/../../theirs` is `theirs`: a path
    // cannot pass for one folder while naming a file in another.
    let mut parts: Vec<&str> = Vec::new();
    for component in lower.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// An upstream's exact file list, as imported: every path, and every suffix of two or more
/// components of every path.
#[derive(Debug, Default)]
struct Tree {
    files: HashSet<String>,
    suffixes: HashSet<String>,
}

impl Tree {
    fn new(paths: impl IntoIterator<Item = String>) -> Self {
        let mut tree = Tree::default();
        for path in paths {
            let parts: Vec<&str> = path.split('/').collect();
            for start in 1..parts.len().saturating_sub(1) {
                tree.suffixes.insert(parts[start..].join("/"));
            }
            tree.files.insert(path);
        }
        tree
    }

    /// A changed path is the upstream's when one of its files is a suffix of it (the file at
    /// any depth), or it is a suffix of one of its files (a diff made inside a subfolder);
    /// either way the common part has two or more components and says something about the
    /// tree (see [`distinctive`]).
    fn contains(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').collect();
        let file_at_depth = (0..parts.len().saturating_sub(1)).any(|start| {
            distinctive(&parts[start..]) && self.files.contains(&parts[start..].join("/"))
        });
        file_at_depth || (distinctive(&parts) && self.suffixes.contains(path))
    }
}

/// Folders and file names every repository has: a path of two components made of them
/// (`.github/dependabot.yml`, `docs/README.md`, `test/BUILD`) is no evidence of whose tree it
/// is, even when the upstream's tree has one.
const EVERYWHERE_FOLDERS: &[&str] = &[".github", ".circleci", ".devcontainer", ".vscode"];
const EVERYWHERE_NAMES: &[&str] = &[
    "readme.md",
    "readme",
    "license",
    "notice",
    "build",
    "build.bazel",
    "makefile",
    "codeowners",
    "owners",
    ".gitignore",
    ".gitattributes",
    "contributing.md",
    "security.md",
    "changelog.md",
    "dockerfile",
    "go.mod",
    "go.sum",
    "package.json",
    "requirements.txt",
    "cmakelists.txt",
    "conf.py",
    "index.rst",
    "index.md",
];

/// Whether a path suffix identifies a tree: two or more components, not under a folder every
/// repository has, and not a two-component path to a file every repository has.
fn distinctive(parts: &[&str]) -> bool {
    if parts.len() < 2 || EVERYWHERE_FOLDERS.contains(&parts[0]) {
        return false;
    }
    let name = parts[parts.len() - 1];
    parts.len() > 2 || !EVERYWHERE_NAMES.contains(&name)
}

/// Envoy's layout: (prefix, extensions) and build file names.
struct Layout {
    prefixes: Vec<(String, Vec<String>)>,
    names: Vec<String>,
}

fn envoy_layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mut layout = Layout {
            prefixes: Vec::new(),
            names: Vec::new(),
        };
        for line in ENVOY_LAYOUT.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('=') {
                layout.names.push(name.to_owned());
                continue;
            }
            let mut words = line.split_whitespace();
            if let Some(prefix) = words.next() {
                layout
                    .prefixes
                    .push((prefix.to_owned(), words.map(str::to_owned).collect()));
            }
        }
        layout
    })
}

impl Layout {
    fn contains(&self, path: &str) -> bool {
        let name = path.rsplit('/').next().unwrap_or(path);
        if self.names.iter().any(|n| n == name) {
            return true;
        }
        let ext = name.rsplit_once('.').map(|(_, e)| e);
        let parts: Vec<&str> = path.split('/').collect();
        (0..parts.len()).any(|start| {
            let suffix = parts[start..].join("/");
            self.prefixes.iter().any(|(prefix, exts)| {
                suffix.starts_with(prefix.as_str())
                    && (exts.iter().any(|e| e == "*")
                        || ext.is_some_and(|x| exts.iter().any(|e| e == x)))
            })
        })
    }
}

/// What the guard knows when it judges a patch.
pub struct Knowledge {
    envoy: Option<Upstream>,
    withheld: Vec<Upstream>,
    trees: Vec<(Upstream, Tree)>,
    project_paths: Vec<String>,
}

impl Knowledge {
    pub fn load(conn: &mut DbConnection) -> Result<Self, DbError> {
        let all = list(conn)?;
        let imported: Vec<(i64, String)> = upstream_files::table
            .select((upstream_files::upstream_id, upstream_files::path))
            .load(conn)?;
        let trees = all
            .iter()
            .filter(|u| imported.iter().any(|(id, _)| *id == u.id))
            .map(|u| {
                let paths = imported
                    .iter()
                    .filter(|(id, _)| *id == u.id)
                    .map(|(_, p)| p.clone());
                (u.clone(), Tree::new(paths))
            })
            .collect();
        let project_paths = project_paths::table
            .select(project_paths::prefix)
            .load(conn)?;
        Ok(Self {
            envoy: all.iter().find(|u| u.slug == ENVOY_SLUG).cloned(),
            withheld: all
                .iter()
                .filter(|u| !u.may_redistribute)
                .cloned()
                .collect(),
            trees,
            project_paths,
        })
    }

    /// Whether `path` (normalised) is under one of the project's own declared paths, from the
    /// root of the path as written.
    fn is_project_path(&self, path: &str) -> bool {
        self.project_paths
            .iter()
            .any(|p| path.starts_with(p.as_str()))
    }

    /// The upstreams whose tree `path` (normalised) belongs to.
    fn owners(&self, path: &str) -> Vec<&Upstream> {
        let mut owners: Vec<&Upstream> = self
            .trees
            .iter()
            .filter(|(_, tree)| tree.contains(path))
            .map(|(u, _)| u)
            .collect();
        // The layout still counts once a file list is imported: a fix that adds a file is not
        // in any list taken before it.
        if envoy_layout().contains(path)
            && !owners
                .iter()
                .any(|u| self.envoy.as_ref().is_some_and(|e| e.id == u.id))
        {
            if let Some(envoy) = &self.envoy {
                owners.push(envoy);
            }
        }
        owners
    }
}

// ---------------------------------------------------------------------------------------------
// Content: the lines that carry Envoy's code

/// Patterns of Envoy's code in a line, each with what it means to a person.
fn code_rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            (r"\bnamespace\s+Envoy\b", "Envoy's C++ namespace"),
            (r"\bEnvoy::", "Envoy:: qualifiers"),
            (
                r#"#\s*include\s*[<"](?i:envoy/|source/(common|extensions|server|exe)/|test/(mocks|test_common|common|integration)/)"#,
                "includes of Envoy's headers",
            ),
            (r"\bENVOY_[A-Z0-9_]+\s*\(", "Envoy's macros"),
            (
                r"\benvoy_(cc_library|cc_test|cc_test_library|cc_extension|cc_contrib_extension|cc_mock|cc_binary|package|extension_package|contrib_package|proto_library|cc_fuzz_test|select_\w+)\s*\(",
                "Envoy's bazel rules",
            ),
            (
                r"(?i:repository_locations\.bzl)|\bREPOSITORY_LOCATIONS_SPEC\b|\buse_category\s*=",
                "Envoy's dependency list (repository_locations.bzl)",
            ),
            (
                r#"^\s*package\s+envoy\.[a-z0-9_.]+\s*;|^\s*import\s+(public\s+)?"(envoy|udpa|xds)/|io\.envoyproxy\.envoy"#,
                "Envoy's API proto packages",
            ),
        ]
        .into_iter()
        .filter_map(|(pattern, meaning)| Regex::new(pattern).ok().map(|r| (r, meaning)))
        .collect()
    })
}

/// What a line of Envoy's code is recognised by, if it is one.
fn code_signal(line: &str) -> Option<&'static str> {
    let line = fold(line);
    code_rules()
        .iter()
        .find(|(rule, _)| rule.is_match(&line))
        .map(|(_, meaning)| *meaning)
}

/// A line that is a piece of a diff rather than prose.
fn diff_shaped(line: &str) -> bool {
    static SHAPE: OnceLock<Option<Regex>> = OnceLock::new();
    SHAPE
        .get_or_init(|| {
            Regex::new(
                r"^\s*(diff --git |diff --cc |@@+ -\d+(,\d+)? (-\d+(,\d+)? )*\+\d+(,\d+)? @@|--- (a/|/dev/null)|\+\+\+ (b/|/dev/null)|index [0-9a-f]{7,}\.\.[0-9a-f]{7,})",
            )
            .ok()
        })
        .as_ref()
        .is_some_and(|shape| shape.is_match(line))
}

/// Why a text typed into a release or an advisory may not go into members' mail: it carries
/// a piece of a diff, or Envoy's code. `None` when it is prose.
pub fn free_text_problem(text: &str) -> Option<String> {
    let text = fold(text);
    for line in text.lines() {
        if diff_shaped(line) {
            return Some("the text carries a piece of a diff; patches are uploaded as files, where the upstream rule checks them".to_owned());
        }
        if let Some(meaning) = code_signal(line) {
            return Some(format!(
                "the text carries Envoy's code ({meaning}), which is never redistributed"
            ));
        }
    }
    None
}

/// Why a release title may not go public at its pre-announcement: it names one of `upstreams`
/// whose fixes are withheld, which would reveal that the upstream has an embargo running.
pub fn title_problem(title: &str, upstreams: &[Upstream]) -> Option<String> {
    let lower = fold(title).to_lowercase();
    upstreams.iter().filter(|u| !u.may_redistribute).find_map(|u| {
        let named = [u.name.to_lowercase(), u.slug.to_lowercase()]
            .iter()
            .any(|word| contains_word(&lower, word));
        named.then(|| {
            format!(
                "The title goes public with the pre-announcement, before {}'s embargo lifts: leave {} out of it.",
                u.name, u.name
            )
        })
    })
}

fn contains_word(text: &str, word: &str) -> bool {
    !word.is_empty()
        && text.match_indices(word).any(|(i, _)| {
            let before = text[..i].chars().next_back();
            let after = text[i + word.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
}

// ---------------------------------------------------------------------------------------------
// Judging a patch

/// What the upload of a patch is judged to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Looks like a withheld upstream's but is not filed as one: approval is blocked until a
    /// person classifies it.
    pub flagged: bool,
    /// Why it looks like an upstream's, one sentence per kind of evidence.
    pub signals: Vec<String>,
}

/// Judges a patch about to be filed under `upstream_id` (`None`: the project's own). A patch
/// that is the same change as one filed under a withheld upstream is refused; one that looks
/// like a withheld upstream's and is filed as anything else is flagged.
pub fn classify(
    conn: &mut DbConnection,
    analysis: &PatchAnalysis,
    upstream_id: Option<i64>,
) -> Result<Classification, ReleaseError> {
    let knowledge = Knowledge::load(conn)?;
    let filed_withheld =
        upstream_id.is_some_and(|id| knowledge.withheld.iter().any(|u| u.id == id));
    if filed_withheld {
        return Ok(Classification {
            flagged: false,
            signals: signals(analysis, &knowledge),
        });
    }
    if let Some(sentence) = duplicate_of_withheld(conn, &analysis.sha256, &analysis.hunks, None)? {
        return Err(ReleaseError::invalid(
            "file",
            format!("{sentence} It cannot be filed as the project's, nor as an upstream's that may be redistributed; file it under the upstream it comes from."),
        ));
    }
    let signals = signals(analysis, &knowledge);
    Ok(Classification {
        flagged: !signals.is_empty(),
        signals,
    })
}

/// The same change filed under a withheld upstream: identical bytes, or a hunk that matches
/// once white space, paths and context are set aside. Names the patch and its release.
pub fn duplicate_of_withheld(
    conn: &mut DbConnection,
    sha256: &str,
    hunks: &[String],
    except_patch: Option<i64>,
) -> Result<Option<String>, DbError> {
    let same_hunk = patch_hunks::table
        .filter(patch_hunks::hunk_sha256.eq_any(hunks))
        .select(patch_hunks::patch_id);
    let found: Option<(i64, i64, String, String)> = patches::table
        .inner_join(upstreams::table)
        .filter(upstreams::may_redistribute.eq(false))
        .filter(patches::sha256.eq(sha256).or(patches::id.eq_any(same_hunk)))
        .filter(patches::id.ne(except_patch.unwrap_or(-1)))
        .select((
            patches::id,
            patches::release_id,
            patches::filename,
            upstreams::name,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(id, release, filename, upstream)| {
        format!("This is the same change as {upstream}'s patch {filename} (patch {id}, release {release}).")
    }))
}

/// A patch has just been filed under `upstream_id`, at upload or by a reclassification. When
/// that upstream's fixes are withheld, every other patch that is the same change (identical
/// bytes, or a hunk in common) and is filed as the project's or a redistributable upstream's
/// becomes flagged again: it blocks its release's approval, and the last check before sending
/// refuses it. Reads the patch's recorded hunks. Returns how many were flagged.
pub fn patch_filed_under(
    conn: &mut DbConnection,
    withheld_patch: i64,
    upstream_id: Option<i64>,
) -> Result<usize, DbError> {
    let Some(upstream_id) = upstream_id else {
        return Ok(0);
    };
    let withheld: Option<String> = upstreams::table
        .filter(upstreams::id.eq(upstream_id))
        .filter(upstreams::may_redistribute.eq(false))
        .select(upstreams::name)
        .first(conn)
        .optional()?;
    let Some(upstream_name) = withheld else {
        return Ok(0);
    };
    let sha256: String = patches::table
        .filter(patches::id.eq(withheld_patch))
        .select(patches::sha256)
        .first(conn)?;
    let hunks: Vec<String> = patch_hunks::table
        .filter(patch_hunks::patch_id.eq(withheld_patch))
        .select(patch_hunks::hunk_sha256)
        .load(conn)?;
    let same_hunk = patch_hunks::table
        .filter(patch_hunks::hunk_sha256.eq_any(&hunks))
        .select(patch_hunks::patch_id);
    let copies: Vec<(i64, crate::domain::JsonList<String>)> = patches::table
        .left_join(upstreams::table)
        .filter(patches::id.ne(withheld_patch))
        .filter(
            upstreams::may_redistribute
                .nullable()
                .eq(true)
                .or(patches::upstream_id.is_null()),
        )
        .filter(
            patches::sha256
                .eq(&sha256)
                .or(patches::id.eq_any(same_hunk)),
        )
        .select((patches::id, patches::upstream_signals))
        .load(conn)?;
    let sentence = format!(
        "The same change was filed as {upstream_name}'s (patch {withheld_patch}). Set its origin to {upstream_name}."
    );
    for (id, signals) in &copies {
        let mut signals = signals.0.clone();
        // Filed under it again after a move away: said once.
        signals.retain(|s| *s != sentence);
        signals.insert(0, sentence.clone());
        diesel::update(patches::table.filter(patches::id.eq(id)))
            .set((
                patches::looks_like_upstream.eq(true),
                patches::reclassified_reason.eq(None::<String>),
                patches::upstream_signals.eq(crate::domain::JsonList::to_json(&signals)),
            ))
            .execute(conn)?;
    }
    Ok(copies.len())
}

/// Why a patch looks like a withheld upstream's, one sentence per kind of evidence; empty
/// when it does not.
pub fn signals(analysis: &PatchAnalysis, knowledge: &Knowledge) -> Vec<String> {
    let mut signals = Vec::new();
    let mut own = Vec::new();
    let mut by_upstream: Vec<(&Upstream, Vec<&str>)> = Vec::new();
    for path in &analysis.files {
        let normal = normalise_path(path);
        if knowledge.is_project_path(&normal) {
            own.push(path.as_str());
            continue;
        }
        for owner in knowledge.owners(&normal) {
            if owner.may_redistribute {
                continue;
            }
            match by_upstream.iter_mut().find(|(u, _)| u.id == owner.id) {
                Some((_, paths)) => paths.push(path),
                None => by_upstream.push((owner, vec![path.as_str()])),
            }
        }
    }
    for (upstream, paths) in by_upstream {
        signals.push(format!(
            "It touches {}'s source tree: {}. Set its origin to {} if it is {}'s fix; reclassify it \
             as the project's only if these files belong to the project.",
            upstream.name,
            evidence_list(&paths),
            upstream.name,
            upstream.name
        ));
    }
    let addresses: Vec<&str> = analysis
        .addresses
        .iter()
        .map(String::as_str)
        .filter(|a| is_envoy_address(a))
        .collect();
    if !addresses.is_empty() {
        signals.push(format!(
            "It was written or signed off from Envoy's domain: {}. Set its origin to Envoy if \
             it is Envoy's fix; reclassify it as the project's only if this person wrote it \
             for the project.",
            evidence_list(&addresses)
        ));
    }
    // Naming Envoy's repository in passing (an issue it discusses) is ordinary; naming one of
    // its changes, or calling the patch a port of one, is evidence.
    let names_a_change = |l: &&crate::releases::patch::PatchLine| {
        !matches!(l.place, LinePlace::Context(_))
            && mentions_envoy_repo(&l.text)
            && (matches!(l.place, LinePlace::Subject) || refers_to_a_change(&l.text))
    };
    if let Some(line) = analysis.lines.iter().find(names_a_change) {
        signals.push(format!(
            "It names a change of the envoyproxy/envoy repository, or calls itself a port of \
             one, in {}. Set its origin to Envoy if it is Envoy's fix or a backport of it; \
             reclassify it as the project's only if it merely refers to Envoy.",
            line.place.describe()
        ));
    }
    // Lines of a diff carrying Envoy's code, per kind of code, naming the files (never the
    // lines). The unchanged lines around a change count too: they show what the file is.
    let mut code: Vec<(&'static str, Vec<&str>)> = Vec::new();
    for line in &analysis.lines {
        let file = match &line.place {
            LinePlace::Added(file) | LinePlace::Removed(file) | LinePlace::Context(file) => {
                file.as_str()
            }
            _ => continue,
        };
        if own.contains(&file) {
            continue;
        }
        if let Some(meaning) = code_signal(&line.text) {
            match code.iter_mut().find(|(m, _)| *m == meaning) {
                Some((_, files)) if !files.contains(&file) => files.push(file),
                Some(_) => {}
                None => code.push((meaning, vec![file])),
            }
        }
    }
    for (meaning, files) in code {
        signals.push(format!(
            "Its diff carries {meaning}, in {}. Set its origin to Envoy if it is Envoy's code; \
             reclassify it as the project's only if this is the project's own code written \
             against Envoy.",
            evidence_list(&files)
        ));
    }
    signals
}

/// What stops approval because of the upstream rule: every flagged patch nobody classified.
pub fn blockers(patches: &[Patch]) -> Vec<String> {
    patches
        .iter()
        .filter(|p| p.blocks())
        .map(|p| {
            format!(
                "{} looks like an upstream's but is not filed as one. {} Set its origin, with a reason.",
                p.filename,
                p.upstream_signals.first().map_or("See the patch.", String::as_str)
            )
        })
        .collect()
}

/// The fixes of one upstream a mailing withholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withheld {
    pub name: String,
    pub policy_url: String,
    pub count: usize,
}

/// A mailing's patches split by the rule: those it may attach, and per upstream the number it
/// withholds with that upstream's policy.
pub fn split_for_mail<'a>(
    patches: &'a [Patch],
    upstreams: &[Upstream],
) -> (Vec<&'a Patch>, Vec<Withheld>) {
    let mut attach = Vec::new();
    let mut withheld: Vec<Withheld> = Vec::new();
    for p in patches {
        let upstream = p
            .upstream_id
            .and_then(|u| upstreams.iter().find(|x| x.id == u));
        match upstream {
            Some(upstream) if !upstream.may_redistribute => {
                match withheld.iter_mut().find(|w| w.name == upstream.name) {
                    Some(entry) => entry.count += 1,
                    None => withheld.push(Withheld {
                        name: upstream.name.clone(),
                        policy_url: upstream.policy_url.clone(),
                        count: 1,
                    }),
                }
            }
            _ => attach.push(p),
        }
    }
    (attach, withheld)
}

/// The last check before messages leave: what each of the outbox rows `outbox_ids` attaches,
/// read through its attachment rows, whatever path put the patches there. A patch
/// from an upstream whose fixes may not be redistributed, one flagged and not yet classified by
/// a person, or one that is the same change as a withheld upstream's patch refuses its
/// message (with the reason). Rows attaching the same patches share one check.
pub fn attachments_for_send(
    conn: &mut DbConnection,
    outbox_ids: &[i64],
) -> Result<HashMap<i64, Result<Vec<Attachment>, String>>, DbError> {
    let pairs: Vec<(i64, i64)> = outbox_attachments::table
        .filter(outbox_attachments::outbox_id.eq_any(outbox_ids))
        .select((outbox_attachments::outbox_id, outbox_attachments::patch_id))
        .load(conn)?;
    let mut sets: HashMap<i64, Vec<i64>> = outbox_ids.iter().map(|id| (*id, Vec::new())).collect();
    for (outbox_id, patch_id) in pairs {
        sets.entry(outbox_id).or_default().push(patch_id);
    }
    let mut checked: HashMap<Vec<i64>, Result<Vec<Attachment>, String>> = HashMap::new();
    let mut out = HashMap::with_capacity(sets.len());
    for (outbox_id, mut patch_ids) in sets {
        patch_ids.sort_unstable();
        let files = match checked.get(&patch_ids) {
            Some(files) => files.clone(),
            None => {
                let files = patches_for_send(conn, &patch_ids)?;
                checked.insert(patch_ids, files.clone());
                files
            }
        };
        out.insert(outbox_id, files);
    }
    Ok(out)
}

/// The patches `patch_ids` as attachments, or why one of them may not leave.
fn patches_for_send(
    conn: &mut DbConnection,
    patch_ids: &[i64],
) -> Result<Result<Vec<Attachment>, String>, DbError> {
    type Row = (
        i64,
        String,
        Vec<u8>,
        String,
        bool,
        Option<String>,
        Option<String>,
        Option<bool>,
    );
    if patch_ids.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    let rows: Vec<Row> = patches::table
        .left_join(upstreams::table)
        .filter(patches::id.eq_any(patch_ids))
        .order(patches::id)
        .select((
            patches::id,
            patches::filename,
            patches::content,
            patches::sha256,
            patches::looks_like_upstream,
            patches::reclassified_reason,
            upstreams::name.nullable(),
            upstreams::may_redistribute.nullable(),
        ))
        .load(conn)?;
    let mut files = Vec::with_capacity(rows.len());
    for (id, filename, content, sha256, flagged, reclassified, upstream, may_redistribute) in rows {
        if may_redistribute == Some(false) {
            return Ok(Err(format!(
                "refused to attach patch {id}: it comes from {} under its embargo and may not be redistributed",
                upstream.unwrap_or_default()
            )));
        }
        if flagged && reclassified.is_none() {
            return Ok(Err(format!(
                "refused to attach patch {id}: it looks like an upstream's and nobody has set its origin"
            )));
        }
        let hunks: Vec<String> = patch_hunks::table
            .filter(patch_hunks::patch_id.eq(id))
            .select(patch_hunks::hunk_sha256)
            .load(conn)?;
        if let Some(sentence) = duplicate_of_withheld(conn, &sha256, &hunks, Some(id))? {
            return Ok(Err(format!("refused to attach patch {id}: {sentence}")));
        }
        files.push(Attachment { filename, content });
    }
    Ok(Ok(files))
}

// ---------------------------------------------------------------------------------------------
// Operators' knowledge: an upstream's exact tree, and the project's own look-alike paths

/// Replaces an upstream's file list with the paths of `listing` (the output of `git ls-files`
/// in a checkout of it). Returns how many paths were stored.
pub fn import_tree(
    conn: &mut DbConnection,
    slug: &str,
    listing: &str,
    actor: &str,
) -> Result<Imported, ReleaseError> {
    let paths: Vec<String> = listing
        .lines()
        .map(normalise_path)
        .filter(|p| !p.is_empty())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if paths.is_empty() {
        return Err(ReleaseError::invalid(
            "file",
            "The file lists no paths: give the output of git ls-files in a checkout of the upstream.",
        ));
    }
    db::write_transaction(conn, |conn| {
        let upstream = find_by_slug(conn, slug)?.ok_or_else(|| {
            ReleaseError::invalid("upstream", format!("There is no upstream {slug:?}."))
        })?;
        diesel::delete(upstream_files::table.filter(upstream_files::upstream_id.eq(upstream.id)))
            .execute(conn)?;
        for path in &paths {
            diesel::insert_into(upstream_files::table)
                .values((
                    upstream_files::upstream_id.eq(upstream.id),
                    upstream_files::path.eq(path),
                ))
                .execute(conn)?;
        }
        let flagged = recheck_open_patches(conn)?;
        audit::record(
            conn,
            actor,
            "upstream.tree-imported",
            &format!("upstream:{}", upstream.id),
            json!({ "paths": paths.len(), "patches_flagged": flagged }),
        )?;
        Ok(Imported {
            paths: paths.len(),
            flagged,
        })
    })
}

/// What an import of an upstream's tree did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Imported {
    pub paths: usize,
    /// Patches of releases not yet public that the new knowledge flags.
    pub flagged: usize,
}

/// Checks again, with what is known now, every patch of a release not yet public or
/// cancelled that is filed as the project's (or a redistributable upstream's) and no person
/// has classified: one that now shows signals is flagged, and blocks its release until a
/// person sets its origin. A recheck only ever raises flags; lowering one is a person's
/// decision. Returns how many patches it flagged.
pub fn recheck_open_patches(conn: &mut DbConnection) -> Result<usize, DbError> {
    let knowledge = Knowledge::load(conn)?;
    let open: Vec<(i64, Vec<u8>)> = patches::table
        .inner_join(releases::table)
        .left_join(upstreams::table)
        .filter(releases::published_at.is_null())
        .filter(releases::cancelled_at.is_null())
        .filter(patches::looks_like_upstream.eq(false))
        .filter(patches::reclassified_reason.is_null())
        .filter(
            upstreams::may_redistribute
                .nullable()
                .eq(true)
                .or(patches::upstream_id.is_null()),
        )
        .select((patches::id, patches::content))
        .load(conn)?;
    let mut flagged = 0;
    for (id, content) in open {
        let found = match crate::releases::patch::analyse(&content) {
            Ok(analysis) => signals(&analysis, &knowledge),
            // Stored by an earlier version that accepted what is refused today.
            Err(refused) => vec![format!(
                "This upload would be refused today: {refused}. Set its origin, with a reason, or replace it."
            )],
        };
        if found.is_empty() {
            continue;
        }
        diesel::update(patches::table.filter(patches::id.eq(id)))
            .set((
                patches::looks_like_upstream.eq(true),
                patches::upstream_signals.eq(crate::domain::JsonList::to_json(&found)),
            ))
            .execute(conn)?;
        flagged += 1;
    }
    Ok(flagged)
}

/// Declares a path prefix of the project's own that looks like an upstream's (for example a
/// proxy repository's own `source/extensions/filters/http/NAME/`), so its files are not flagged
/// by their paths or content. It is matched from the root of a changed path.
pub fn add_project_path(
    conn: &mut DbConnection,
    prefix: &str,
    reason: &str,
    actor: &str,
) -> Result<String, ReleaseError> {
    let mut prefix = normalise_path(prefix);
    if prefix.split('/').count() < 2 {
        return Err(ReleaseError::invalid(
            "prefix",
            "Give a path of at least two folders, such as source/extensions/filters/http/NAME/.",
        ));
    }
    prefix.push('/');
    if reason.trim().is_empty() {
        return Err(ReleaseError::invalid(
            "reason",
            "Say why these paths are the project's.",
        ));
    }
    db::write_transaction(conn, |conn| {
        let declared: i64 = project_paths::table
            .filter(project_paths::prefix.eq(&prefix))
            .count()
            .get_result(conn)?;
        if declared > 0 {
            return Err(ReleaseError::Refused(format!(
                "{prefix} is declared as the project's already."
            )));
        }
        diesel::insert_into(project_paths::table)
            .values((
                project_paths::prefix.eq(&prefix),
                project_paths::reason.eq(reason.trim()),
                project_paths::added_by.eq(actor),
                project_paths::created_at.eq(db::now()),
            ))
            .execute(conn)?;
        audit::record(
            conn,
            actor,
            "upstream.project-path-added",
            "project-paths",
            json!({ "prefix": prefix, "reason": reason.trim() }),
        )?;
        Ok(prefix.clone())
    })
}

/// The declared project paths with why.
pub fn project_paths(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    Ok(project_paths::table
        .order(project_paths::prefix)
        .select((project_paths::prefix, project_paths::reason))
        .load(conn)?)
}

/// An address at envoyproxy.io or one of its subdomains. GitHub's noreply addresses say nothing
/// about who someone works for, so they never count.
fn is_envoy_address(address: &str) -> bool {
    let address = fold(address).to_lowercase();
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain = domain.trim_end_matches('.');
    domain == "envoyproxy.io" || domain.ends_with(".envoyproxy.io")
}

/// "envoyproxy/envoy" as a repository name (also envoy-setec, where Envoy stages embargoed
/// fixes), not as the tail of some other name.
fn mentions_envoy_repo(line: &str) -> bool {
    let lower = fold(line).to_ascii_lowercase();
    lower.match_indices("envoyproxy/envoy").any(|(i, _)| {
        i == 0 || {
            let before = lower.as_bytes()[i - 1];
            !(before.is_ascii_alphanumeric() || matches!(before, b'-' | b'_' | b'.'))
        }
    })
}

/// A line that points at a specific change rather than a discussion: a pull request, a commit,
/// Envoy's private staging repository, or the words of a port.
fn refers_to_a_change(line: &str) -> bool {
    let lower = fold(line).to_ascii_lowercase();
    lower.contains("envoy-setec")
        || lower.contains("envoyproxy/envoy/pull/")
        || lower.contains("envoyproxy/envoy/commit/")
        || lower.contains("envoyproxy/envoy@")
        || [
            "backport",
            "port of",
            "ported from",
            "cherry-pick",
            "cherry pick",
            "upstream fix",
            "upstream commit",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

/// "a, b, c and 2 more".
fn evidence_list(items: &[&str]) -> String {
    let shown = items[..items.len().min(EVIDENCE_SHOWN)].join(", ");
    match items.len().saturating_sub(EVIDENCE_SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::releases::patch::analyse;

    fn upstream(id: i64, slug: &str, name: &str) -> Upstream {
        Upstream {
            id,
            slug: slug.into(),
            name: name.into(),
            policy_url: format!("https://{slug}.example/security"),
            may_redistribute: false,
            created_at: chrono::NaiveDateTime::default(),
        }
    }

    /// What the guard knows on a fresh list: Envoy, built in, by its layout.
    fn knowledge() -> Knowledge {
        let envoy = upstream(1, ENVOY_SLUG, "Envoy");
        Knowledge {
            envoy: Some(envoy.clone()),
            withheld: vec![envoy],
            trees: Vec::new(),
            project_paths: Vec::new(),
        }
    }

    fn envoy_signals(a: &PatchAnalysis) -> Vec<String> {
        signals(a, &knowledge())
    }

    /// A one-file diff changing one line of `path` to `added`.
    fn diff(old_path: &str, new_path: &str, added: &str) -> PatchAnalysis {
        let text = format!(
            "--- {old_path}\n+++ {new_path}\n@@ -1,2 +1,2 @@\n-  return true;\n+  {added}\n   }}\n"
        );
        analyse(text.as_bytes()).unwrap()
    }
    use crate::releases::patch::test_fixtures::*;
    use crate::releases::patch::PatchFormat;

    #[test]
    fn envoy_patch_with_envoy_sign_off_is_flagged_for_both() {
        let text = mbox(&[
            r#"From 5e0c7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b Mon Sep 17 00:00:00 2001
From: Alex Rivera <arivera@example.com>
Date: Mon, 2 Mar 2026 16:40:11 +0000
Subject: [PATCH] jwt_authn: reject tokens with an empty issuer

Risk Level: Low
Testing: unit tests

Signed-off-by: Envoy Security <security@envoyproxy.io>
---
 .../filters/http/jwt_authn/authenticator.cc          | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/source/extensions/filters/http/jwt_authn/authenticator.cc b/source/extensions/filters/http/jwt_authn/authenticator.cc
index 4c5d6e7..8f9a0b1 100644
--- a/source/extensions/filters/http/jwt_authn/authenticator.cc
+++ b/source/extensions/filters/http/jwt_authn/authenticator.cc
@@ -212,5 +212,5 @@ void AuthenticatorImpl::startVerify() {
   // Check the issuer is configured or not.
   jwks_data_ = provider_ ? jwks_cache_.findByProvider(provider_.value())
                          : jwks_cache_.findByIssuer(jwt_->iss_);
-  if (jwks_data_ == nullptr) {
+  if (jwt_->iss_.empty() || jwks_data_ == nullptr) {
     doneWithStatus(Status::JwtUnknownIssuer);
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.format, PatchFormat::Mbox);
        assert!(!signals.is_empty());
        assert_eq!(signals.len(), 2, "{:?}", signals);
        assert!(signals[0].contains(
            "Envoy's source tree: source/extensions/filters/http/jwt_authn/authenticator.cc."
        ));
        assert!(signals[1].contains("security@envoyproxy.io"));
    }

    #[test]
    fn envoy_paths_are_listed_at_most_three() {
        let mut diff = String::new();
        for name in ["a", "b", "c", "d", "e"] {
            diff.push_str(&format!(
                "diff --git a/source/common/http/{name}.cc b/source/common/http/{name}.cc\n\
                 --- a/source/common/http/{name}.cc\n\
                 +++ b/source/common/http/{name}.cc\n\
                 @@ -1 +1 @@\n\
                 -int x = 0;\n\
                 +int x = 1;\n"
            ));
        }
        let a = analyse(diff.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files.len(), 5);
        assert_eq!(signals.len(), 1);
        assert!(signals[0].contains(
            "source/common/http/a.cc, source/common/http/b.cc, source/common/http/c.cc and 2 more."
        ));
    }

    #[test]
    fn added_envoy_include_is_flagged() {
        // The blank context lines have lost their leading space, as mail clients leave them.
        let diff = r#"diff --git a/extensions/authz/filter.cc b/extensions/authz/filter.cc
index 11aa22b..33cc44d 100644
--- a/extensions/authz/filter.cc
+++ b/extensions/authz/filter.cc
@@ -14,6 +14,7 @@

 #include "extensions/authz/filter.h"

+#include "envoy/http/filter.h"
 #include "absl/strings/str_cat.h"

 namespace Extensions {
"#;
        let a = analyse(diff.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files, ["extensions/authz/filter.cc"]);
        assert_eq!(signals.len(), 1, "{:?}", signals);
        assert!(
            signals[0].contains("includes of Envoy's headers, in extensions/authz/filter.cc."),
            "{signals:?}"
        );
        assert!(
            !signals[0].contains("http/filter.h"),
            "evidence, not content"
        );
    }

    #[test]
    fn commit_message_linking_envoy_is_flagged() {
        let text = mbox(&[
            r#"From 7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4 Mon Sep 17 00:00:00 2001
From: Jane Doe <jane.doe@example.com>
Date: Wed, 4 Mar 2026 08:01:00 +0000
Subject: [PATCH] tools: harden iptables redirect against header smuggling

Port of https://github.com/envoyproxy/envoy/pull/123 to our capture rules.

Signed-off-by: Jane Doe <jane.doe@example.com>
---
diff --git a/tools/istio-iptables/pkg/capture/run.go b/tools/istio-iptables/pkg/capture/run.go
index 1234567..89abcde 100644
--- a/tools/istio-iptables/pkg/capture/run.go
+++ b/tools/istio-iptables/pkg/capture/run.go
@@ -50,2 +50,3 @@ func (cfg *IptablesConfigurator) Run() error {
     cfg.handleInboundPortsInclude()
+    cfg.dropMalformedHeaders()
     cfg.handleOutboundIncludeRules()
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(signals.len(), 1, "{:?}", signals);
        assert!(
            signals[0].contains(
                "envoyproxy/envoy repository, or calls itself a port of one, in a commit message"
            ),
            "{signals:?}"
        );
        assert!(!signals[0].contains("pull/123"), "evidence, not content");
    }

    #[test]
    fn istio_code_that_names_envoy_is_not_flagged() {
        let text = mbox(&[
            r#"From 2468ace02468ace02468ace02468ace02468ace0 Mon Sep 17 00:00:00 2001
From: Sam Lee <12345+samlee@users.noreply.github.com>
Date: Thu, 5 Mar 2026 11:00:00 +0000
Subject: [PATCH] envoyfilter: do not apply patches across namespaces

An EnvoyFilter in one namespace could patch the Envoy listeners of
workloads in another. Scope the match to the filter's namespace.

Signed-off-by: Sam Lee <12345+samlee@users.noreply.github.com>
---
diff --git a/pilot/pkg/networking/core/envoyfilter/listener_patch.go b/pilot/pkg/networking/core/envoyfilter/listener_patch.go
index 0f1e2d3..4c5b6a7 100644
--- a/pilot/pkg/networking/core/envoyfilter/listener_patch.go
+++ b/pilot/pkg/networking/core/envoyfilter/listener_patch.go
@@ -17,3 +17,4 @@ package envoyfilter
 import (
     listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
+    "istio.io/istio/pkg/config/constants"
 )
diff --git a/pkg/envoy/proxy.go b/pkg/envoy/proxy.go
index 1111111..2222222 100644
--- a/pkg/envoy/proxy.go
+++ b/pkg/envoy/proxy.go
@@ -40,2 +40,3 @@ func (e *envoy) args() []string {
     // Envoy's own flags.
+    startupArgs = append(startupArgs, "--reject-unknown-dynamic-fields")
     return startupArgs
diff --git a/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml b/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
index 3333333..4444444 100644
--- a/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
+++ b/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
@@ -1,2 +1,2 @@
-# Envoy bootstrap template
+# Envoy bootstrap template, rendered by the injector
 node:
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files.len(), 3);
        assert_eq!(
            a.authors,
            ["Sam Lee <12345+samlee@users.noreply.github.com>"]
        );
        assert!(signals.is_empty(), "{:?}", signals);
    }

    #[test]
    fn envoys_tree_is_recognised_at_any_depth_and_in_any_case() {
        let code = "validate(headers);";
        for (old, new) in [
            (
                "envoy-1.31.2/source/common/http/utility.cc",
                "envoy-1.31.3/source/common/http/utility.cc",
            ),
            (
                "./source/common/http/utility.cc",
                "./source/common/http/utility.cc",
            ),
            ("old/source/server/server.cc", "new/source/server/server.cc"),
            (
                "vendor/anything/source/common/http/codec.cc",
                "vendor/anything/source/common/http/codec.cc",
            ),
            (
                "third_party/proxy/envoy/http/filter.h",
                "third_party/proxy/envoy/http/filter.h",
            ),
            (
                "Source/Common/Http/Utility.cc",
                "Source/Common/Http/Utility.cc",
            ),
            (
                "a//source//extensions/filters/http/rbac/rbac_filter.cc",
                "b//source//extensions/filters/http/rbac/rbac_filter.cc",
            ),
            (
                "deps/api/envoy/config/route/v3/route.proto",
                "deps/api/envoy/config/route/v3/route.proto",
            ),
            (
                "build/bazel/repository_locations.bzl",
                "build/bazel/repository_locations.bzl",
            ),
        ] {
            let signals = envoy_signals(&diff(old, new, code));
            assert!(
                signals.iter().any(|s| s.contains("Envoy's source tree")),
                "{new}: {signals:?}"
            );
        }
        // The project's own Go, YAML and docs that name Envoy are not Envoy's tree.
        for path in [
            "pkg/envoy/proxy.go",
            "pilot/pkg/networking/core/envoyfilter/listener_patch.go",
            "manifests/charts/istio-control/files/envoy-bootstrap.yaml",
            "docs/source/common/index.md",
            "tools/envoy/README.md",
        ] {
            let signals = envoy_signals(&diff(path, path, code));
            assert!(signals.is_empty(), "{path}: {signals:?}");
        }
    }

    #[test]
    fn envoys_code_is_recognised_whatever_the_file_is_called() {
        for (line, meaning) in [
            ("namespace Envoy {", "Envoy's C++ namespace"),
            (
                "Envoy::Http::HeaderMap& headers = request;",
                "Envoy:: qualifiers",
            ),
            (
                "#include \"source/common/common/assert.h\"",
                "includes of Envoy's headers",
            ),
            (
                "#include <envoy/http/codec.h>",
                "includes of Envoy's headers",
            ),
            ("ENVOY_LOG(debug, \"rejected\");", "Envoy's macros"),
            ("envoy_cc_library(", "Envoy's bazel rules"),
            (
                "load(\"//bazel:repository_locations.bzl\", \"x\")",
                "repository_locations.bzl",
            ),
            (
                "package envoy.config.route.v3;",
                "Envoy's API proto packages",
            ),
            (
                "import \"envoy/config/core/v3/base.proto\";",
                "Envoy's API proto packages",
            ),
        ] {
            let signals = envoy_signals(&diff("src/proxy/fix.cc", "src/proxy/fix.cc", line));
            assert!(
                signals
                    .iter()
                    .any(|s| s.contains(meaning) && s.contains("src/proxy/fix.cc")),
                "{line}: {signals:?}"
            );
        }
        for line in [
            "listener \"github.com/envoyproxy/go-control-plane/envoy/config/listener/v3\"",
            "// Envoy rejects such headers too.",
            "log.Infof(\"envoy exited\")",
            "namespace Istio {",
        ] {
            let signals = envoy_signals(&diff("pkg/a.go", "pkg/a.go", line));
            assert!(signals.is_empty(), "{line}: {signals:?}");
        }
    }

    #[test]
    fn declared_project_paths_are_not_flagged_but_only_from_their_root() {
        let mut k = knowledge();
        k.project_paths = vec!["source/extensions/filters/http/istio_stats/".into()];
        let own = diff(
            "a/source/extensions/filters/http/istio_stats/stats.cc",
            "b/source/extensions/filters/http/istio_stats/stats.cc",
            "Envoy::Http::FilterHeadersStatus status;",
        );
        assert!(signals(&own, &k).is_empty(), "{:?}", signals(&own, &k));
        let vendored = diff(
            "vendor/envoy/source/extensions/filters/http/istio_stats/stats.cc",
            "vendor/envoy/source/extensions/filters/http/istio_stats/stats.cc",
            "validate();",
        );
        assert!(!signals(&vendored, &k).is_empty());
        // `..` cannot make a file elsewhere pass for one under the declared folder.
        let escaping =
            "source/extensions/filters/http/istio_stats/../../../../common/http/utility.cc";
        let escaped = diff(
            &format!("a/{escaping}"),
            &format!("b/{escaping}"),
            "Envoy::Http::Utility::parse(value);",
        );
        assert!(!signals(&escaped, &k).is_empty());
        assert_eq!(normalise_path(escaping), "source/common/http/utility.cc");
        assert_eq!(normalise_path("../../x/./y//z"), "x/y/z");
    }

    #[test]
    fn an_imported_tree_matches_by_exact_path_suffix() {
        let mut k = knowledge();
        let other = upstream(2, "otherproxy", "Other Proxy");
        k.withheld.push(other.clone());
        k.trees.push((
            other,
            Tree::new(["lib/net/parser.c".to_owned(), "lib/net/frame.h".to_owned()]),
        ));
        let caught = |path: &str| {
            signals(&diff(path, path, "x = 1;"), &k)
                .iter()
                .any(|s| s.contains("Other Proxy's source tree"))
        };
        assert!(caught("lib/net/parser.c"));
        assert!(caught("otherproxy-2.1/lib/net/parser.c"));
        assert!(caught("net/parser.c"), "a diff made inside lib/");
        assert!(!caught("parser.c"), "one component says nothing");
        assert!(!caught("lib/net/other.c"));
    }

    #[test]
    fn lookalike_and_invisible_characters_read_as_what_they_show() {
        assert_eq!(fold("source/common"), "source/common");
        assert_eq!(
            normalise_path("ｓｏｕｒｃｅ／ｃｏｍｍｏｎ／http/utility.cc"),
            "source/common/http/utility.cc"
        );
        assert_eq!(
            normalise_path("s\u{43e}ur\u{441}e/\u{441}\u{43e}mm\u{43e}n/http/x.cc"),
            "source/common/http/x.cc"
        );
        assert_eq!(
            normalise_path("sour\u{200b}ce/exten\u{200d}sions/x.cc"),
            "source/extensions/x.cc"
        );
        assert!(code_signal("namespace \u{395}nvoy {").is_some());
        assert!(code_signal("using Env\u{200b}oy::Http::HeaderMap;").is_some());
        assert!(code_signal("#include \"\u{435}nvoy/http/filter.h\"").is_some());
        assert!(is_envoy_address("dev@\u{435}nvoyproxy.io"));
        assert!(free_text_problem("Fixed in Env\u{feff}oy::Http::Utility.").is_some());
        // Text in other scripts is left as it is where nothing looks like Envoy's.
        assert_eq!(free_text_problem("Исправлено в версии 1.9.5."), None);
    }

    #[test]
    fn files_every_repository_has_are_no_evidence() {
        let mut k = knowledge();
        let other = upstream(2, "otherproxy", "Other Proxy");
        k.withheld.push(other.clone());
        let listing = [
            "README.md",
            "docs/README.md",
            "test/BUILD",
            ".github/workflows/ci.yml",
            ".github/dependabot.yml",
            "tools/code_format/check_format.py",
            "docs/root/intro/arch_overview/security/threat_model.rst",
        ];
        k.trees.push((other, Tree::new(listing.map(str::to_owned))));
        let caught = |path: &str| {
            signals(&diff(path, path, "x = 1;"), &k)
                .iter()
                .any(|s| s.contains("Other Proxy's source tree"))
        };
        for own in [
            "README.md",
            "docs/README.md",
            "test/BUILD",
            "mesh/test/BUILD",
            ".github/workflows/ci.yml",
            ".github/dependabot.yml",
        ] {
            assert!(!caught(own), "{own} is in every repository");
        }
        assert!(caught("tools/code_format/check_format.py"));
        assert!(caught(
            "third_party/proxy/tools/code_format/check_format.py"
        ));
        assert!(
            caught("code_format/check_format.py"),
            "a diff made inside tools/"
        );
        assert!(caught("intro/arch_overview/security/threat_model.rst"));
        assert!(
            !caught("vendor/x/docs/README.md"),
            "docs/README.md is generic"
        );
    }

    #[test]
    fn free_text_may_not_carry_a_diff_or_envoys_code() {
        assert_eq!(
            free_text_problem("Header smuggling in HTTP/2, fixed in 1.9.5."),
            None
        );
        assert_eq!(
            free_text_problem("Envoy's codec accepted it; see CVE-2026-1."),
            None
        );
        for text in [
            "Fix:\n@@ -10,7 +10,9 @@ bool validate()\n+  return false;",
            "--- a/source/common/http/utility.cc",
            "diff --git a/x b/x",
            "namespace Envoy { namespace Http {",
            "Use Envoy::Http::Utility::parse.",
            "#include \"envoy/http/filter.h\"",
        ] {
            assert!(free_text_problem(text).is_some(), "{text}");
        }
    }

    #[test]
    fn a_title_may_not_name_a_withheld_upstream() {
        let mut friendly = upstream(2, "friendly-lib", "Friendly Lib");
        friendly.may_redistribute = true;
        let k = [upstream(1, ENVOY_SLUG, "Envoy"), friendly];
        assert!(title_problem("Envoy CVE fix 1.31.3", &k).is_some());
        assert!(title_problem("security release for ENVOY users", &k).is_some());
        assert!(title_problem("Security release 1.9.5", &k).is_none());
        assert!(
            title_problem("Envoyance 2.0", &k).is_none(),
            "a word, not a prefix"
        );
        assert!(
            title_problem("Friendly Lib update 2.1", &k).is_none(),
            "an upstream that may be redistributed has no embargo to reveal"
        );
    }
}
