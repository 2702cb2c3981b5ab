//! Uploaded patch files: checks that an upload is a text patch, records its SHA-256, and lists
//! the files, subjects, people and lines it carries. Judging whether those look like an
//! upstream's code is the upstream rule's job (`releases::upstream`); this module only reads.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The largest upload accepted. Real security patches are kilobytes; anything near this is a
/// mistake (a tarball, a build log) rather than a patch.
pub const MAX_PATCH_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchFormat {
    /// `git format-patch` output: one or more mail messages, each carrying a commit and its diff.
    Mbox,
    /// A unified diff without mail headers (`git diff`, `git show`, `diff -u`).
    Diff,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatchAnalysis {
    pub format: PatchFormat,
    /// Lower-case hex SHA-256 of the exact uploaded bytes, so members can check what they got.
    pub sha256: String,
    /// Paths touched, without the `a/` and `b/` prefixes, deduplicated, in order of appearance;
    /// `/dev/null` is left out.
    pub files: Vec<String>,
    /// The subject of each mbox patch that carries a diff, with "[PATCH n/m]" prefixes removed.
    pub subjects: Vec<String>,
    /// The authors (mbox `From:`, or `Author:` in `git show` output), deduplicated.
    pub authors: Vec<String>,
    /// `Signed-off-by:` trailer values, deduplicated.
    pub signed_off_by: Vec<String>,
    /// Lower-case addresses of everyone credited (authors, sign-offs, co-authors).
    pub addresses: Vec<String>,
    /// Each file the patch changes, with how many lines it adds and removes there.
    pub changes: Vec<FileChange>,
    /// SHA-256 of each hunk's changed lines with all white space removed, for finding the
    /// same change uploaded again under other paths or around other context. Hunks too short to
    /// tell one change from another are left out.
    #[serde(skip)]
    pub hunks: Vec<String>,
    /// Every line of the patch's text with where it came from: subjects, messages, the text
    /// before a diff, and each hunk's added, removed and unchanged (context) lines. Context
    /// lines are the tree's existing code, so they tell whose tree a change was made in.
    #[serde(skip)]
    pub lines: Vec<PatchLine>,
}

/// One file a patch changes: the evidence an approver reads, never the content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub added: u32,
    pub removed: u32,
}

/// How much changed text a hunk must carry before its hash identifies a change: a lone `}` or
/// `return nil;` is in every tree.
const MIN_HUNK_CHARS: usize = 32;

/// One line of a patch that says something about where the patch comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchLine {
    pub place: LinePlace,
    pub text: String,
}

/// Where a line came from, to tell a release manager where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinePlace {
    Subject,
    Message,
    Preamble,
    Added(String),
    Removed(String),
    /// An unchanged line shown around a change: the file's existing code.
    Context(String),
}

impl LinePlace {
    pub fn describe(&self) -> String {
        match self {
            LinePlace::Subject => "the subject of a patch".to_string(),
            LinePlace::Message => "a commit message".to_string(),
            LinePlace::Preamble => "the text before the diff".to_string(),
            LinePlace::Added(file) => format!("an added line of {file}"),
            LinePlace::Removed(file) => format!("a removed line of {file}"),
            LinePlace::Context(file) => format!("the unchanged code around a change to {file}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the file is not text (patches are UTF-8 or ASCII text)")]
    NotText,
    #[error("no diff was found in the file: upload a `git format-patch` file or a unified diff")]
    NoDiff,
    #[error("the file is {0}, not a patch: upload the patch itself")]
    Archive(&'static str),
    #[error("the file contains NUL bytes, so it is not a text patch")]
    Binary,
    #[error("the file carries {0}; upload the patch as git format-patch or git diff writes it")]
    Encoded(String),
    #[error("line {line} could not be read as part of a diff ({why}); a patch that cannot be read is not accepted")]
    Unreadable { line: usize, why: &'static str },
}

/// What the first bytes of a file say it is, when it is an archive or compressed.
fn archive_kind(bytes: &[u8]) -> Option<&'static str> {
    const MAGIC: &[(&[u8], &str)] = &[
        (b"PK\x03\x04", "a zip archive"),
        (b"PK\x05\x06", "a zip archive"),
        (b"\x1f\x8b", "gzip-compressed"),
        (b"BZh", "bzip2-compressed"),
        (b"\xfd7zXZ\x00", "xz-compressed"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"\x28\xb5\x2f\xfd", "zstd-compressed"),
        (b"!<arch>\n", "an ar archive"),
        (b"070701", "a cpio archive"),
        (b"070702", "a cpio archive"),
        (b"070707", "a cpio archive"),
    ];
    if let Some((_, kind)) = MAGIC.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(kind);
    }
    // A tar header names its format at byte 257, whatever the file names inside.
    if bytes.get(257..262) == Some(b"ustar") {
        return Some("a tar archive");
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(2048)]).to_ascii_lowercase();
    if head.contains("this is a shell archive") || head.contains("shar archive") {
        return Some("a shell archive");
    }
    None
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks an uploaded patch and extracts what a release manager and the Envoy check need.
pub fn analyse(bytes: &[u8]) -> Result<PatchAnalysis, PatchError> {
    if bytes.is_empty() {
        return Err(PatchError::Empty);
    }
    if bytes.len() > MAX_PATCH_BYTES {
        return Err(PatchError::TooLarge {
            max: MAX_PATCH_BYTES,
        });
    }
    // A file of blank lines is what an empty editor buffer saves; it is empty to the uploader.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PatchError::Empty);
    }
    if let Some(kind) = archive_kind(bytes) {
        return Err(PatchError::Archive(kind));
    }
    if bytes.contains(&0) {
        return Err(PatchError::Binary);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| PatchError::NotText)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Patches saved on Windows or passed through mail gateways arrive with CRLF line endings.
    let lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();

    let first_diff = first_diff_start(&lines).unwrap_or(lines.len());
    let separators: Vec<usize> = (0..lines.len())
        .filter(|&i| is_mbox_separator(&lines, i))
        .collect();

    let mut c = Collector::default();
    match separators.first() {
        Some(&first) if first < first_diff => {
            c.format = PatchFormat::Mbox;
            scan_body(&lines[..first], 0, Place::Preamble, &mut c)?;
            for (k, &start) in separators.iter().enumerate() {
                let end = separators.get(k + 1).copied().unwrap_or(lines.len());
                scan_message(&lines[start + 1..end], start + 1, &mut c)?;
            }
        }
        _ => {
            if let Some(start) = mail_header_block(&lines[..first_diff]) {
                // A single mail saved from a client: headers, but no "From <sha>" line.
                c.format = PatchFormat::Mbox;
                scan_body(&lines[..start], 0, Place::Preamble, &mut c)?;
                scan_message(&lines[start..], start, &mut c)?;
            } else {
                c.format = PatchFormat::Diff;
                scan_body(&lines, 0, Place::Preamble, &mut c)?;
            }
        }
    }
    if !c.has_diff {
        return Err(PatchError::NoDiff);
    }

    Ok(PatchAnalysis {
        format: c.format,
        sha256: sha256_hex(bytes),
        files: c.files,
        subjects: c.subjects,
        authors: c.authors,
        signed_off_by: c.signed_off_by,
        addresses: c.addresses,
        changes: c.changes,
        hunks: c.hunks,
        lines: c.lines,
    })
}

/// A file name safe to use in a Content-Disposition header and on disk: ASCII letters, digits,
/// '.', '-', '_' only, no leading dot, at most 100 chars, non-empty (fallback "patch.diff").
pub fn safe_file_name(name: &str) -> String {
    const FALLBACK: &str = "patch.diff";
    const MAX: usize = 100;
    // Some browsers send the client's full path; only its last component is the file's name.
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mapped: String = base
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_') {
                ch
            } else {
                '_'
            }
        })
        .collect();
    // A leading dot hides the file on disk; a leading dash reads as an option to shell tools.
    let name = mapped.trim_start_matches(['.', '-']);
    if !name.bytes().any(|b| b.is_ascii_alphanumeric()) {
        return FALLBACK.to_string();
    }
    if name.len() <= MAX {
        return name.to_string();
    }
    // Everything is ASCII now, so byte offsets are character boundaries. Keep a short extension
    // so the shortened name still opens as a patch.
    match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => {
            let ext = &name[dot..];
            format!("{}{}", &name[..MAX - ext.len()], ext)
        }
        _ => name[..MAX].to_string(),
    }
}

/// Where text outside the diffs sits.
#[derive(Clone, Copy)]
enum Place {
    Subject,
    Message,
    Preamble,
}

impl Place {
    fn line_place(self) -> LinePlace {
        match self {
            Place::Subject => LinePlace::Subject,
            Place::Message => LinePlace::Message,
            Place::Preamble => LinePlace::Preamble,
        }
    }
}

/// What the scan finds, accumulated over every message of the file.
struct Collector {
    format: PatchFormat,
    has_diff: bool,
    files: Vec<String>,
    subjects: Vec<String>,
    authors: Vec<String>,
    signed_off_by: Vec<String>,
    /// Lower-case e-mail addresses of everyone credited (authors, sign-offs, co-authors).
    addresses: Vec<String>,
    lines: Vec<PatchLine>,
    changes: Vec<FileChange>,
    hunks: Vec<String>,
    /// The current hunk's changed lines, white space removed.
    hunk: String,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            format: PatchFormat::Diff,
            has_diff: false,
            files: Vec::new(),
            subjects: Vec::new(),
            authors: Vec::new(),
            signed_off_by: Vec::new(),
            addresses: Vec::new(),
            lines: Vec::new(),
            changes: Vec::new(),
            hunks: Vec::new(),
            hunk: String::new(),
        }
    }
}

impl Collector {
    fn add_file(&mut self, path: &str) {
        if !path.is_empty() && path != "/dev/null" {
            push_unique(&mut self.files, path);
        }
    }

    fn add_person(&mut self, value: &str) {
        if let Some(address) = email_address(value) {
            push_unique(&mut self.addresses, &address);
        }
    }

    /// A line outside any hunk: commit message, diffstat, `git show` header or free text.
    fn text(&mut self, line: &str, place: Place) {
        let trimmed = line.trim();
        if let Some(value) = strip_prefix_ci(trimmed, "signed-off-by:") {
            let value = decode_rfc2047(value.trim());
            if !value.is_empty() {
                push_unique(&mut self.signed_off_by, &value);
                self.add_person(&value);
            }
        } else if let Some(value) = strip_prefix_ci(trimmed, "co-authored-by:") {
            self.add_person(value);
        } else if self.format == PatchFormat::Diff {
            // `git show` and `git log -p` name the author this way instead of a From: header.
            if let Some(value) = line.strip_prefix("Author: ") {
                let value = value.trim();
                if !value.is_empty() {
                    push_unique(&mut self.authors, value);
                    self.add_person(value);
                }
            }
        }
        if !trimmed.is_empty() {
            self.lines.push(PatchLine {
                place: place.line_place(),
                text: line.to_string(),
            });
        }
    }

    /// A `+` or `-` line of a hunk.
    fn changed(&mut self, file: &str, added: bool, content: &str) {
        match self.changes.iter_mut().find(|f| f.path == file) {
            Some(f) if added => f.added += 1,
            Some(f) => f.removed += 1,
            None => self.changes.push(FileChange {
                path: file.to_string(),
                added: u32::from(added),
                removed: u32::from(!added),
            }),
        }
        self.hunk.push(if added { '+' } else { '-' });
        self.hunk
            .extend(content.chars().filter(|c| !c.is_whitespace()));
        self.hunk.push('\n');
        let place = if added {
            LinePlace::Added(file.to_string())
        } else {
            LinePlace::Removed(file.to_string())
        };
        self.lines.push(PatchLine {
            place,
            text: content.to_string(),
        });
    }

    /// An unchanged line of a hunk: kept for what it says about the file, not counted as a
    /// change.
    fn context(&mut self, file: &str, content: &str) {
        if !content.trim().is_empty() {
            self.lines.push(PatchLine {
                place: LinePlace::Context(file.to_string()),
                text: content.to_string(),
            });
        }
    }

    /// Ends the current hunk: its hash is kept if it carries enough to identify the change.
    fn end_hunk(&mut self) {
        let hunk = std::mem::take(&mut self.hunk);
        let meaningful = hunk
            .chars()
            .filter(|c| !matches!(c, '+' | '-' | '\n'))
            .count();
        if meaningful >= MIN_HUNK_CHARS {
            push_unique(&mut self.hunks, &sha256_hex(hunk.as_bytes()));
        }
    }
}

/// One mail message of an mbox, without its "From " separator line; `offset` is the index of
/// its first line in the file, for error messages.
fn scan_message(lines: &[&str], offset: usize, c: &mut Collector) -> Result<(), PatchError> {
    let (mut headers, body_start) = parse_header_block(lines);
    refuse_encoded_parts(&headers)?;
    let body = lines.get(body_start..).unwrap_or(&[]);
    // `git format-patch` puts the real author's From: (and sometimes Subject:) at the top of the
    // body when the sender differs; `git am` lets those win, and so do we.
    let (in_body, skip) = parse_in_body_headers(body);
    for (name, value) in in_body {
        headers.retain(|(n, _)| *n != name);
        headers.push((name, value));
    }
    let body = body.get(skip..).unwrap_or(&[]);

    let subject = header(&headers, "subject").map(|s| strip_patch_prefix(&decode_rfc2047(s)));
    let author = header(&headers, "from").map(|f| decode_rfc2047(f).trim().to_string());
    if let Some(subject) = &subject {
        c.text(subject, Place::Subject);
    }
    if let Some(author) = &author {
        c.add_person(author);
    }
    // A cover letter ("[PATCH 0/2]") carries no diff; it is not one of the patches.
    if scan_body(body, offset + body_start + skip, Place::Message, c)? {
        if let Some(subject) = subject.filter(|s| !s.is_empty()) {
            c.subjects.push(subject);
        }
        if let Some(author) = author.filter(|a| !a.is_empty()) {
            push_unique(&mut c.authors, &author);
        }
    }
    Ok(())
}

/// A mail whose body is multipart MIME or encoded (base64, quoted-printable) hides its diff
/// from a reader of the text: such an upload is refused, not decoded, so that what is checked
/// is exactly what a member would apply.
fn refuse_encoded_parts(headers: &[(String, String)]) -> Result<(), PatchError> {
    if let Some(encoding) = header(headers, "content-transfer-encoding") {
        let encoding = encoding.trim().to_ascii_lowercase();
        if !matches!(encoding.as_str(), "7bit" | "8bit" | "binary") {
            return Err(PatchError::Encoded(format!("a part encoded as {encoding}")));
        }
    }
    if header(headers, "content-type")
        .is_some_and(|t| t.trim().to_ascii_lowercase().starts_with("multipart/"))
    {
        return Err(PatchError::Encoded("MIME parts (multipart mail)".into()));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum State {
    /// Outside any diff: commit message, diffstat, signature, free text.
    Text,
    /// After "diff --git", before the first hunk.
    Header,
    /// Inside a hunk, with the old and new line counts still to come.
    Hunk { old: u64, new: u64 },
    /// Inside a hunk of a combined diff (a merge), whose lines carry one marker per parent.
    Combined { parents: usize },
    /// Inside a "GIT binary patch" block.
    Binary,
}

/// Walks text that may contain diffs, reporting files, changed lines and other text to `c`.
/// Hunks are followed by their line counts, so a removed line that happens to start with
/// "-- " (a SQL or Lua comment) is not mistaken for a file header. A diff section that cannot
/// be read (a file header whose paths do not parse, a hunk header that does not, a changed
/// line outside its hunk) is a refusal, never skipped. `offset` is the index of `lines[0]`
/// in the file. Returns whether a diff was found.
fn scan_body(
    lines: &[&str],
    offset: usize,
    place: Place,
    c: &mut Collector,
) -> Result<bool, PatchError> {
    let unreadable = |i: usize, why: &'static str| PatchError::Unreadable {
        line: offset + i + 1,
        why,
    };
    let mut found = false;
    let mut state = State::Text;
    // A file header or hunk was the last thing seen, so "@@" starts another hunk of `file`.
    let mut in_file = false;
    let mut file = String::new();
    let mut git_paths: Vec<String> = Vec::new();
    let mut header_paths: Vec<String> = Vec::new();

    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        match state {
            State::Hunk { mut old, mut new } => {
                match line.as_bytes().first() {
                    Some(b'\\') => {}
                    Some(b'+') if new > 0 => {
                        new -= 1;
                        c.changed(&file, true, &line[1..]);
                    }
                    Some(b'-') if old > 0 => {
                        old -= 1;
                        c.changed(&file, false, &line[1..]);
                    }
                    // Mail clients strip the lone space of an empty context line.
                    Some(b' ') | None if old > 0 && new > 0 => {
                        old -= 1;
                        new -= 1;
                        c.context(&file, line.get(1..).unwrap_or_default());
                    }
                    // Trailing context lines lost in transit, before the next section or the
                    // mail signature: the hunk's changes are all there.
                    _ if old == new && starts_section(lines, i) => {
                        c.end_hunk();
                        state = State::Text;
                        continue;
                    }
                    Some(b'+' | b'-') => {
                        return Err(unreadable(
                            i,
                            "a changed line beyond its hunk's line counts",
                        ))
                    }
                    _ => {
                        return Err(unreadable(
                            i,
                            "a hunk ends before the lines its header counts",
                        ))
                    }
                }
                state = if old == 0 && new == 0 {
                    c.end_hunk();
                    State::Text
                } else {
                    State::Hunk { old, new }
                };
                i += 1;
            }
            State::Combined { parents } => {
                let markers = line.get(..parents);
                let is_hunk_line =
                    markers.is_some_and(|m| m.bytes().all(|b| matches!(b, b' ' | b'+' | b'-')));
                if is_hunk_line {
                    let markers = markers.unwrap_or_default();
                    let rest = &line[parents..];
                    if markers.contains(['+', '-']) {
                        c.changed(&file, markers.contains('+'), rest);
                    } else {
                        c.context(&file, rest);
                    }
                    i += 1;
                } else {
                    c.end_hunk();
                    state = State::Text;
                }
            }
            State::Binary => {
                if line.is_empty()
                    || line.starts_with("literal ")
                    || line.starts_with("delta ")
                    || is_base85_line(line)
                {
                    i += 1;
                } else {
                    state = State::Text;
                }
            }
            State::Header => {
                if let Some(rest) = line.strip_prefix("--- ") {
                    header_paths.extend(header_path(rest, "a/"));
                } else if let Some(rest) = line.strip_prefix("+++ ") {
                    header_paths.extend(header_path(rest, "b/"));
                } else if let Some(rest) = ["rename from ", "rename to ", "copy from ", "copy to "]
                    .iter()
                    .find_map(|p| line.strip_prefix(p))
                {
                    header_paths.push(unquote_path(rest));
                } else if line.starts_with("@@") {
                    file = flush_paths(&mut git_paths, &mut header_paths, c);
                    state = State::Text;
                    continue;
                } else if line.starts_with("GIT binary patch") {
                    file = flush_paths(&mut git_paths, &mut header_paths, c);
                    state = State::Binary;
                } else if !is_extended_header(line) {
                    file = flush_paths(&mut git_paths, &mut header_paths, c);
                    state = State::Text;
                    continue;
                }
                i += 1;
            }
            State::Text => {
                if let Some(rest) = line.strip_prefix("diff --git ") {
                    found = true;
                    in_file = true;
                    git_paths = split_git_paths(rest);
                    if git_paths.is_empty() {
                        return Err(unreadable(i, "a diff --git line whose paths do not parse"));
                    }
                    header_paths.clear();
                    state = State::Header;
                } else if let Some(rest) = line
                    .strip_prefix("diff --cc ")
                    .or_else(|| line.strip_prefix("diff --combined "))
                {
                    // A merge commit's combined diff names the one resulting path.
                    found = true;
                    in_file = true;
                    git_paths = vec![unquote_path(rest.trim())];
                    header_paths.clear();
                    state = State::Header;
                } else if in_file && line.starts_with("@@@") {
                    let parents = line.bytes().take_while(|b| *b == b'@').count() - 1;
                    state = State::Combined { parents };
                } else if in_file && line.starts_with("@@ ") {
                    match parse_hunk_header(line) {
                        Some((old, new)) if old > 0 || new > 0 => state = State::Hunk { old, new },
                        Some(_) => {}
                        None => return Err(unreadable(i, "a hunk header that does not parse")),
                    }
                } else if in_file && line.starts_with('\\') {
                    // "\ No newline at end of file" after a hunk's last line.
                } else if let Some(old) = plain_file_header(lines, i) {
                    // "--- a/x", "+++ b/x", "@@": a diff without a "diff --git" line.
                    found = true;
                    in_file = true;
                    header_paths.extend(header_path(old, "a/"));
                    header_paths.extend(lines.get(i + 1).and_then(|l| {
                        l.strip_prefix("+++ ")
                            .and_then(|rest| header_path(rest, "b/"))
                    }));
                    git_paths.clear();
                    file = flush_paths(&mut git_paths, &mut header_paths, c);
                    i += 1;
                } else if in_file
                    && (line.starts_with('+') || line.starts_with('-'))
                    && !matches!(line, "-- " | "--" | "---")
                {
                    return Err(unreadable(
                        i,
                        "a changed line outside any hunk; the hunk line counts do not match",
                    ));
                } else {
                    in_file = false;
                    c.text(line, place);
                }
                i += 1;
            }
        }
    }
    match state {
        State::Header => {
            flush_paths(&mut git_paths, &mut header_paths, c);
        }
        // Only trailing context missing at the end of the file: the changes are all there.
        State::Hunk { old, new } if old == new => c.end_hunk(),
        State::Hunk { .. } => {
            return Err(unreadable(
                lines.len().saturating_sub(1),
                "the file ends inside a hunk",
            ))
        }
        State::Combined { .. } => c.end_hunk(),
        State::Text | State::Binary => {}
    }
    if found {
        c.has_diff = true;
    }
    Ok(found)
}

/// Whether line `i` begins something other than a hunk line: another file's diff, a hunk, or
/// the signature `git format-patch` ends a message with.
fn starts_section(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    line.starts_with("diff --")
        || line.starts_with("@@")
        || line == "-- "
        || plain_file_header(lines, i).is_some()
}

/// Records a file section's paths and returns the one its hunks belong to. The ---/+++ and
/// rename lines are exact; the "diff --git" line is ambiguous when paths contain spaces, so it
/// is used only when a section has nothing else (mode changes, binary files).
fn flush_paths(
    git_paths: &mut Vec<String>,
    header_paths: &mut Vec<String>,
    c: &mut Collector,
) -> String {
    let paths = if header_paths.is_empty() {
        std::mem::take(git_paths)
    } else {
        git_paths.clear();
        std::mem::take(header_paths)
    };
    for path in &paths {
        c.add_file(path);
    }
    paths.into_iter().next_back().unwrap_or_default()
}

fn is_extended_header(line: &str) -> bool {
    [
        "index ",
        "new file mode ",
        "deleted file mode ",
        "old mode ",
        "new mode ",
        "similarity index ",
        "dissimilarity index ",
        "Binary files ",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// A line of git's base85 binary data: a length letter, then base85 characters.
fn is_base85_line(line: &str) -> bool {
    let mut bytes = line.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b',' | b'.'))
}

/// If line `i` starts a "---"/"+++"/"@@" triple, the text after "--- ".
fn plain_file_header<'a>(lines: &[&'a str], i: usize) -> Option<&'a str> {
    let old = lines.get(i)?.strip_prefix("--- ")?;
    lines.get(i + 1)?.strip_prefix("+++ ")?;
    lines.get(i + 2)?.strip_prefix("@@ ")?;
    Some(old)
}

/// Where the first diff starts, for telling mail headers from text inside a diff.
fn first_diff_start(lines: &[&str]) -> Option<usize> {
    (0..lines.len())
        .find(|&i| lines[i].starts_with("diff --git ") || plain_file_header(lines, i).is_some())
}

/// "@@ -l[,s] +l[,s] @@": the old and new line counts (a missing count is 1).
fn parse_hunk_header(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("@@ -")?;
    let (old, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('+')?;
    let (new, rest) = rest.split_once(' ')?;
    if !rest.starts_with("@@") {
        return None;
    }
    let count = |range: &str| -> Option<u64> {
        match range.split_once(',') {
            Some((start, count)) => {
                start.parse::<u64>().ok()?;
                count.parse().ok()
            }
            None => range.parse::<u64>().ok().map(|_| 1),
        }
    };
    Some((count(old)?, count(new)?))
}

/// The path on a "--- " or "+++ " line, without its prefix, or `None` for /dev/null.
fn header_path(rest: &str, prefix: &str) -> Option<String> {
    let raw = if rest.starts_with('"') {
        unquote(rest).map(|(path, _)| path)?
    } else {
        // `diff -u` appends a tab and a timestamp; git appends a tab to names with spaces.
        rest.split('\t')
            .next()
            .unwrap_or(rest)
            .trim_end()
            .to_string()
    };
    if raw == "/dev/null" || raw.is_empty() {
        return None;
    }
    Some(raw.strip_prefix(prefix).map(str::to_string).unwrap_or(raw))
}

fn unquote_path(rest: &str) -> String {
    if rest.starts_with('"') {
        if let Some((path, _)) = unquote(rest) {
            return path;
        }
    }
    rest.to_string()
}

/// The two paths of "diff --git a/X b/Y", without prefixes.
fn split_git_paths(rest: &str) -> Vec<String> {
    let strip = |path: String, prefix: &str| -> String {
        path.strip_prefix(prefix)
            .map(str::to_string)
            .unwrap_or(path)
    };
    let (old, new) = if rest.starts_with('"') {
        let Some((old, used)) = unquote(rest) else {
            return Vec::new();
        };
        (old, unquote_path(rest[used..].trim_start()))
    } else if let Some(pos) = rest.rfind(" \"") {
        match unquote(&rest[pos + 1..]) {
            Some((new, _)) => (rest[..pos].to_string(), new),
            None => return Vec::new(),
        }
    } else {
        // "a/P b/P" is by far the common case and is unambiguous even when P has spaces.
        let half = rest.len().saturating_sub(1) / 2;
        match (
            rest.get(..half),
            rest.get(half..half + 1),
            rest.get(half + 1..),
        ) {
            (Some(a), Some(" "), Some(b)) if a.get(2..) == b.get(2..) => {
                (a.to_string(), b.to_string())
            }
            _ => match rest.find(" b/") {
                Some(pos) => (rest[..pos].to_string(), rest[pos + 1..].to_string()),
                None => return Vec::new(),
            },
        }
    };
    vec![strip(old, "a/"), strip(new, "b/")]
}

/// A C-style quoted path as git writes it (octal escapes for non-ASCII bytes), and the number
/// of bytes consumed.
fn unquote(s: &str) -> Option<(String, usize)> {
    let bytes = s.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), i + 1)),
            b'\\' => {
                let escaped = *bytes.get(i + 1)?;
                i += 2;
                match escaped {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'a' => out.push(7),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'v' => out.push(11),
                    b'0'..=b'7' => {
                        let digits = bytes.get(i - 1..i + 2)?;
                        let mut value: u32 = 0;
                        for &d in digits {
                            if !(b'0'..=b'7').contains(&d) {
                                return None;
                            }
                            value = value * 8 + u32::from(d - b'0');
                        }
                        out.push(u8::try_from(value).ok()?);
                        i += 2;
                    }
                    other => out.push(other),
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    None
}

/// "From <40-hex> <date>" as `git format-patch` writes it, or a classic mbox "From sender date"
/// line that starts a paragraph and is followed by a header.
fn is_mbox_separator(lines: &[&str], i: usize) -> bool {
    let Some(rest) = lines[i].strip_prefix("From ") else {
        return false;
    };
    let git_style = rest
        .get(..40)
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()) && rest[40..].starts_with(' '));
    git_style
        || ((i == 0 || lines[i - 1].trim().is_empty())
            && rest.split_whitespace().count() >= 2
            && rest.bytes().any(|b| b.is_ascii_digit())
            && lines
                .get(i + 1)
                .is_some_and(|next| header_name(next).is_some()))
}

/// For a mail without a "From " separator: where its header block (holding From: and Subject:)
/// starts.
fn mail_header_block(lines: &[&str]) -> Option<usize> {
    let from = lines
        .iter()
        .position(|l| header_name(l).is_some_and(|n| n.eq_ignore_ascii_case("from")))?;
    let is_part = |l: &str| header_name(l).is_some() || l.starts_with([' ', '\t']);
    let mut start = from;
    while start > 0 && is_part(lines[start - 1]) {
        start -= 1;
    }
    while start < from && header_name(lines[start]).is_none() {
        start += 1;
    }
    let has_subject = lines[start..]
        .iter()
        .take_while(|l| is_part(l))
        .any(|l| header_name(l).is_some_and(|n| n.eq_ignore_ascii_case("subject")));
    has_subject.then_some(start)
}

/// The name of a "Name: value" header line.
fn header_name(line: &str) -> Option<&str> {
    let (name, _) = line.split_once(':')?;
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic())).then_some(name)
}

/// Headers up to the first blank line, with folded lines joined; names are lower-cased.
/// Returns them and where the body starts.
fn parse_header_block(lines: &[&str]) -> (Vec<(String, String)>, usize) {
    let mut headers: Vec<(String, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            return (headers, i + 1);
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
        }
        match header_name(line) {
            Some(name) => {
                let value = line[name.len() + 1..].trim().to_string();
                headers.push((name.to_ascii_lowercase(), value));
            }
            None => return (headers, i),
        }
    }
    (headers, lines.len())
}

/// In-body "From:", "Subject:" and "Date:" lines at the very top of a message body, ended by a
/// blank line. Anything else there means they were ordinary text.
fn parse_in_body_headers(body: &[&str]) -> (Vec<(String, String)>, usize) {
    let allowed = |line: &str| {
        header_name(line).is_some_and(|n| {
            ["from", "subject", "date"]
                .iter()
                .any(|a| n.eq_ignore_ascii_case(a))
        })
    };
    let count = body
        .iter()
        .take_while(|l| allowed(l) || (l.starts_with([' ', '\t']) && !l.trim().is_empty()))
        .count();
    if count == 0 || !body.get(count).is_some_and(|l| l.trim().is_empty()) {
        return (Vec::new(), 0);
    }
    let (headers, _) = parse_header_block(&body[..count]);
    (headers, count + 1)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Removes leading bracketed groups that name a patch ("[PATCH 1/2]", "[PATCH v2 3/5]",
/// "[RFC PATCH]"), keeping other tags such as "[release-1.24]" that say something.
fn strip_patch_prefix(subject: &str) -> String {
    let mut rest = subject.trim();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        if !inner[..end].to_ascii_uppercase().contains("PATCH") {
            break;
        }
        rest = inner[end + 1..].trim_start();
    }
    rest.to_string()
}

/// Decodes RFC 2047 encoded words ("=?UTF-8?q?Ren=C3=A9e?="), which `git format-patch` uses for
/// non-ASCII names and subjects, as a mail reader would.
fn decode_rfc2047(value: &str) -> String {
    let line = format!("X: {value}");
    match mailparse::parse_header(line.as_bytes()) {
        Ok((header, _)) => header.get_value(),
        Err(_) => value.to_string(),
    }
}

/// The address in "Name <addr>" or a bare "addr", lower-cased.
fn email_address(value: &str) -> Option<String> {
    let candidate = match (value.rfind('<'), value.rfind('>')) {
        (Some(open), Some(close)) if open < close => &value[open + 1..close],
        _ => value
            .split_whitespace()
            .find(|token| token.contains('@'))?
            .trim_matches(|ch: char| matches!(ch, '<' | '>' | '(' | ')' | '"' | ',' | ';')),
    };
    let candidate = candidate.trim();
    let (local, domain) = candidate.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| candidate.to_ascii_lowercase())
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn push_unique(list: &mut Vec<String>, value: &str) {
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
}

#[cfg(test)]
pub(crate) mod test_fixtures {
    //! Patches as `git format-patch` writes them, shared by the reader's and the upstream rule's tests.

    /// What `git format-patch` writes after each patch. Added in code so that the fixtures have
    /// no trailing white space for an editor to strip.
    pub const SIGNATURE: &str = "-- \n2.43.0\n\n";

    pub fn mbox(patches: &[&str]) -> String {
        patches.iter().map(|p| format!("{p}{SIGNATURE}")).collect()
    }

    pub const ISTIO_PATCH_1: &str = r#"From 3f1c2a9e8b7d6c5f4e3a2b1c0d9e8f7a6b5c4d3e Mon Sep 17 00:00:00 2001
From: Jane Doe <jane.doe@example.com>
Date: Tue, 3 Mar 2026 10:12:44 +0000
Subject: [PATCH 1/2] pilot: limit the size of fetched JWKS documents

A hostile issuer could make istiod read an unbounded JWKS response and
exhaust its memory. Cap the body at maxJwksBytes.

Signed-off-by: Jane Doe <jane.doe@example.com>
---
 pilot/pkg/model/jwks_resolver.go | 4 +++-
 1 file changed, 3 insertions(+), 1 deletion(-)

diff --git a/pilot/pkg/model/jwks_resolver.go b/pilot/pkg/model/jwks_resolver.go
index 1a2b3c4..5d6e7f8 100644
--- a/pilot/pkg/model/jwks_resolver.go
+++ b/pilot/pkg/model/jwks_resolver.go
@@ -410,7 +410,9 @@ func (r *JwksResolver) getRemoteContent(uri string) ([]byte, error) {
     if resp.StatusCode != http.StatusOK {
         return nil, fmt.Errorf("status %d", resp.StatusCode)
     }
-    body, err := io.ReadAll(resp.Body)
+    // A JWKS document is a few kilobytes; refuse anything far larger.
+    limited := io.LimitReader(resp.Body, maxJwksBytes+1)
+    body, err := io.ReadAll(limited)
     if err != nil {
         return nil, err
     }
"#;

    pub const ISTIO_PATCH_2: &str = r#"From 9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b Mon Sep 17 00:00:00 2001
From: =?UTF-8?q?Ren=C3=A9e=20Okafor?= <renee@example.org>
Date: Tue, 3 Mar 2026 10:14:02 +0000
Subject: [PATCH 2/2] security: check that a CSR's SANs match the caller's
 identity

The CA signed any SPIFFE identity present in a CSR. Reject CSRs whose
SANs are not among the authenticated caller's identities.

Signed-off-by: Renée Okafor <renee@example.org>
Signed-off-by: Jane Doe <jane.doe@example.com>
---
 security/pkg/server/ca/server.go      | 4 ++++
 security/pkg/server/ca/server_test.go | 2 +-
 2 files changed, 5 insertions(+), 1 deletion(-)

diff --git a/security/pkg/server/ca/server.go b/security/pkg/server/ca/server.go
index 0a1b2c3..4d5e6f7 100644
--- a/security/pkg/server/ca/server.go
+++ b/security/pkg/server/ca/server.go
@@ -120,6 +120,10 @@ func (s *Server) CreateCertificate(ctx context.Context,
     sans := caller.Identities
     crMetadata := request.Metadata.GetFields()
     certSigner := crMetadata[security.CertSigner].GetStringValue()
+    if err := checkCSRSANs(request.Csr, sans); err != nil {
+        s.monitoring.CSRError.Increment()
+        return nil, status.Error(codes.PermissionDenied, err.Error())
+    }
     _, _, certChainBytes, rootCertBytes := s.ca.GetCAKeyCertBundle().GetAll()
     cert, signErr := s.sign(sans, request.Csr, certSigner)
     if signErr != nil {
diff --git a/security/pkg/server/ca/server_test.go b/security/pkg/server/ca/server_test.go
index 8e9f0a1..b2c3d4e 100644
--- a/security/pkg/server/ca/server_test.go
+++ b/security/pkg/server/ca/server_test.go
@@ -88,3 +88,3 @@ func TestCreateCertificate(t *testing.T) {
         {
-            name: "successful signing",
+            name: "successful signing with matching SANs",
             code: codes.OK,
"#;
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_fixtures::*;

    #[test]
    fn two_patch_mbox_of_istio_code() {
        let text = mbox(&[ISTIO_PATCH_1, ISTIO_PATCH_2]);
        let a = analyse(text.as_bytes()).unwrap();
        assert_eq!(a.format, PatchFormat::Mbox);
        assert_eq!(
            a.subjects,
            [
                "pilot: limit the size of fetched JWKS documents",
                "security: check that a CSR's SANs match the caller's identity",
            ]
        );
        assert_eq!(
            a.authors,
            [
                "Jane Doe <jane.doe@example.com>",
                "Renée Okafor <renee@example.org>"
            ]
        );
        assert_eq!(
            a.signed_off_by,
            [
                "Jane Doe <jane.doe@example.com>",
                "Renée Okafor <renee@example.org>"
            ]
        );
        assert_eq!(
            a.files,
            [
                "pilot/pkg/model/jwks_resolver.go",
                "security/pkg/server/ca/server.go",
                "security/pkg/server/ca/server_test.go",
            ]
        );
        assert_eq!(a.sha256, sha256_hex(text.as_bytes()));
    }

    #[test]
    fn crlf_mbox_parses_like_lf() {
        let lf = mbox(&[ISTIO_PATCH_1, ISTIO_PATCH_2]);
        let crlf = lf.replace('\n', "\r\n");
        let a = analyse(crlf.as_bytes()).unwrap();
        let b = analyse(lf.as_bytes()).unwrap();
        assert_eq!(a.format, PatchFormat::Mbox);
        assert_eq!(a.files, b.files);
        assert_eq!(a.subjects, b.subjects);
        assert_eq!(a.authors, b.authors);
        assert_eq!(a.signed_off_by, b.signed_off_by);
        // The digest is of the bytes as uploaded, not of the normalised text.
        assert_eq!(a.sha256, sha256_hex(crlf.as_bytes()));
        assert_ne!(a.sha256, b.sha256);
    }

    #[test]
    fn plain_unified_diff() {
        // The SQL hunk removes a "-- " comment, which appears as "--- …" and must not be read
        // as a file header.
        let diff = "--- a/pilot/pkg/xds/ads.go\t2026-02-10 09:00:00.000000000 +0000
+++ b/pilot/pkg/xds/ads.go\t2026-03-01 12:00:00.000000000 +0000
@@ -301,4 +301,6 @@ func (s *DiscoveryServer) Stream(stream DiscoveryStream) error {
     if err := s.authenticate(ctx); err != nil {
         return status.Error(codes.Unauthenticated, err.Error())
     }
+    // Reject streams before the cache is warm instead of serving partial config.
+    s.WaitForRequestLimit(ctx)
     con := newConnection(peerAddr, stream)
--- a/samples/bookinfo/src/mysql/mysqldb-init.sql
+++ b/samples/bookinfo/src/mysql/mysqldb-init.sql
@@ -1,3 +1,3 @@
--- Initialize a mysql db with a 'test' db and be able test productpage with it.
+-- Initialise a MySQL db with a 'test' db to test productpage with it.
 CREATE DATABASE test;
 USE test;
";
        let a = analyse(diff.as_bytes()).unwrap();
        assert_eq!(a.format, PatchFormat::Diff);
        assert_eq!(
            a.files,
            [
                "pilot/pkg/xds/ads.go",
                "samples/bookinfo/src/mysql/mysqldb-init.sql"
            ]
        );
        assert!(a.subjects.is_empty());
        assert!(a.authors.is_empty());
    }

    #[test]
    fn git_show_output_is_a_diff_with_its_author() {
        let diff = r#"commit 0123456789abcdef0123456789abcdef01234567
Author: Jane Doe <jane.doe@example.com>
Date:   Tue Mar 3 10:12:44 2026 +0000

    istioctl: quote user input in generated YAML

    Signed-off-by: Jane Doe <jane.doe@example.com>

diff --git a/istioctl/pkg/tag/generate.go b/istioctl/pkg/tag/generate.go
new file mode 100644
index 0000000..1a2b3c4
--- /dev/null
+++ b/istioctl/pkg/tag/generate.go
@@ -0,0 +1,2 @@
+package tag
+
"#;
        let a = analyse(diff.as_bytes()).unwrap();
        assert_eq!(a.format, PatchFormat::Diff);
        assert_eq!(a.files, ["istioctl/pkg/tag/generate.go"]);
        assert_eq!(a.authors, ["Jane Doe <jane.doe@example.com>"]);
        assert_eq!(a.signed_off_by, ["Jane Doe <jane.doe@example.com>"]);
    }

    #[test]
    fn rejects_empty_large_binary_and_diffless_files() {
        assert_eq!(analyse(b""), Err(PatchError::Empty));
        assert_eq!(analyse(b"\n  \r\n"), Err(PatchError::Empty));
        let large = vec![b'+'; MAX_PATCH_BYTES + 1];
        assert_eq!(
            analyse(&large),
            Err(PatchError::TooLarge {
                max: MAX_PATCH_BYTES
            })
        );
        assert_eq!(
            analyse(b"diff --git a/x b/x\n\xff\xfe\x00binary"),
            Err(PatchError::Binary)
        );
        assert_eq!(
            analyse(b"diff --git a/x b/x\n\xff\xfebinary"),
            Err(PatchError::NotText)
        );
        assert_eq!(
            analyse(
                "Hi team,\n\nthe fix for CVE-2026-1234 is in the attached tarball.\n\n— Jane\n"
                    .as_bytes()
            ),
            Err(PatchError::NoDiff)
        );
        // A cover letter on its own has mail headers but no patch.
        let cover = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
                     From: Jane Doe <jane.doe@example.com>\n\
                     Subject: [PATCH 0/2] JWKS and CSR fixes\n\n\
                     Two fixes for the March release.\n";
        assert_eq!(analyse(cover.as_bytes()), Err(PatchError::NoDiff));
    }

    #[test]
    fn mail_without_separator_line_is_mbox() {
        let text = format!(
            "Return-Path: <jane.doe@example.com>\n{}",
            ISTIO_PATCH_1
                .split_once('\n')
                .map(|(_, rest)| rest)
                .unwrap_or_default()
        );
        let a = analyse(text.as_bytes()).unwrap();
        assert_eq!(a.format, PatchFormat::Mbox);
        assert_eq!(
            a.subjects,
            ["pilot: limit the size of fetched JWKS documents"]
        );
        assert_eq!(a.authors, ["Jane Doe <jane.doe@example.com>"]);
    }

    #[test]
    fn sha256_matches_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn format_serialises_in_kebab_case() {
        assert_eq!(
            serde_json::to_string(&PatchFormat::Mbox).unwrap(),
            "\"mbox\""
        );
    }

    #[test]
    fn safe_file_names() {
        let traversal = safe_file_name("../../etc/passwd");
        assert!(!traversal.contains('/') && !traversal.starts_with('.'));
        assert_eq!(
            safe_file_name("fix CVE-2026-1.patch"),
            "fix_CVE-2026-1.patch"
        );
        assert_eq!(
            safe_file_name(r"C:\Users\jane\0001-fix.patch"),
            "0001-fix.patch"
        );
        assert_eq!(safe_file_name(".hidden.diff"), "hidden.diff");
        assert_eq!(safe_file_name(""), "patch.diff");
        assert_eq!(safe_file_name(".."), "patch.diff");
        let long = safe_file_name(&format!("{}.patch", "x".repeat(300)));
        assert_eq!(long.len(), 100);
        assert!(long.ends_with(".patch"));
    }

    #[test]
    fn decodes_encoded_words_and_quoted_paths() {
        assert_eq!(
            decode_rfc2047("=?UTF-8?q?Ren=C3=A9e?= =?UTF-8?b?T2thZm9y?= <r@example.org>"),
            "RenéeOkafor <r@example.org>"
        );
        assert_eq!(
            split_git_paths(r#""a/docs/caf\303\251.md" "b/docs/caf\303\251.md""#),
            ["docs/café.md", "docs/café.md"]
        );
        assert_eq!(
            split_git_paths("a/my dir/x.go b/my dir/x.go"),
            ["my dir/x.go", "my dir/x.go"]
        );
    }

    /// A small, well-formed diff of `path` whose hunk adds `added`.
    fn diff_of(path: &str, context: &str, added: &str) -> String {
        format!(
            "diff --git a/{path} b/{path}\n--- a/{path}\n+++ b/{path}\n@@ -10,2 +10,3 @@\n {context}\n+{added}\n {context}\n"
        )
    }

    #[test]
    fn archives_and_nul_bytes_are_refused_whatever_they_contain() {
        let diff = diff_of("src/a.go", "x := 1", "y := 2");
        let mut tar = vec![0u8; 512];
        tar[..9].copy_from_slice(b"fix.patch");
        tar[257..262].copy_from_slice(b"ustar");
        tar.extend_from_slice(diff.as_bytes());
        assert_eq!(analyse(&tar), Err(PatchError::Archive("a tar archive")));
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(diff.as_bytes());
        assert_eq!(analyse(&zip), Err(PatchError::Archive("a zip archive")));
        assert_eq!(
            analyse(b"\x1f\x8b\x08\x00"),
            Err(PatchError::Archive("gzip-compressed"))
        );
        // An ASCII-only archive format is still an archive.
        let cpio = format!("070701000000010000{diff}");
        assert_eq!(
            analyse(cpio.as_bytes()),
            Err(PatchError::Archive("a cpio archive"))
        );
        let with_nul = format!("{diff}\0{diff}");
        assert_eq!(analyse(with_nul.as_bytes()), Err(PatchError::Binary));
    }

    #[test]
    fn encoded_or_multipart_mail_is_refused_not_decoded() {
        let head = "From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n\
                    From: Jane Doe <jane.doe@example.com>\n\
                    Subject: [PATCH] fix\n";
        let body = diff_of("src/a.go", "x := 1", "y := 2");
        for (headers, why) in [
            ("Content-Transfer-Encoding: base64\n", "base64"),
            (
                "Content-Transfer-Encoding: quoted-printable\n",
                "quoted-printable",
            ),
            (
                "Content-Type: multipart/mixed; boundary=\"b\"\n",
                "multipart",
            ),
        ] {
            let mail = format!("{head}{headers}\n{body}");
            match analyse(mail.as_bytes()) {
                Err(PatchError::Encoded(what)) => assert!(what.contains(why), "{what}"),
                other => panic!("{why}: {other:?}"),
            }
        }
        let plain = format!("{head}Content-Transfer-Encoding: 8bit\n\n{body}");
        assert!(analyse(plain.as_bytes()).is_ok());
    }

    #[test]
    fn a_section_that_cannot_be_read_is_a_refusal() {
        let cases = [
            ("diff --git nonsense\n@@ -1 +1 @@\n-a\n+b\n", "paths do not parse"),
            (
                "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,1 +1,1 @@\n-a\n+b\n+namespace Envoy {\n",
                "outside any hunk",
            ),
            (
                "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -1,3 +1,5 @@\n a\n+b\n",
                "ends inside a hunk",
            ),
            (
                "diff --git a/x.c b/x.c\n--- a/x.c\n+++ b/x.c\n@@ -one +two @@\n-a\n+b\n",
                "hunk header",
            ),
        ];
        for (text, why) in cases {
            match analyse(text.as_bytes()) {
                Err(e @ PatchError::Unreadable { .. }) => {
                    assert!(e.to_string().contains(why), "{e}")
                }
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn combined_diffs_are_read_for_paths_and_changed_lines() {
        let text = "diff --cc source/common/http/utility.cc\n\
                    index 1111111,2222222..3333333\n\
                    --- a/source/common/http/utility.cc\n\
                    +++ b/source/common/http/utility.cc\n\
                    @@@ -1,2 -1,2 +1,3 @@@\n\
                    \x20 namespace Envoy {\n\
                    ++  validate(headers);\n\
                    \x20 }\n";
        let a = analyse(text.as_bytes()).expect("a combined diff");
        assert_eq!(a.files, ["source/common/http/utility.cc"]);
        assert!(a.lines.iter().any(|l| l.text.contains("validate(headers)")
            && matches!(&l.place, LinePlace::Added(f) if f == "source/common/http/utility.cc")));
    }

    #[test]
    fn files_are_counted_and_the_same_hunk_hashes_alike_elsewhere() {
        let one = diff_of(
            "source/common/http/utility.cc",
            "int x = 0;",
            "if (!HeaderUtility::isValid(headers)) { return false; }",
        );
        let other = diff_of(
            "vendor/proxy/common/utility.cc",
            "// different context",
            "if (!HeaderUtility::isValid( headers ))   { return false; }",
        );
        let (a, b) = (
            analyse(one.as_bytes()).unwrap(),
            analyse(other.as_bytes()).unwrap(),
        );
        assert_eq!(
            a.changes,
            [FileChange {
                path: "source/common/http/utility.cc".into(),
                added: 1,
                removed: 0
            }]
        );
        assert_eq!(a.hunks.len(), 1);
        assert_eq!(
            a.hunks, b.hunks,
            "paths, context and white space do not matter"
        );
        // A trivial hunk identifies nothing.
        let trivial = analyse(diff_of("a.go", "x", "}").as_bytes()).unwrap();
        assert!(trivial.hunks.is_empty());
    }
}
