//! How mail and announcements name a release and the lines it is for, in one place: one line
//! reads "release line 1.9", several "release lines 1.8 and 1.9", and a title that already says
//! "release" is not called "a security release" again.
//!
//! A release's lines hold what the planner typed: usually the versions being released
//! (`1.9.6`), sometimes the line itself (`1.9`). A version names its line by its first two
//! numbers, so both read the same way: "release line 1.9 (version 1.9.6)".

use std::cmp::Ordering;

/// "1.9", "1.8 and 1.9", "1.7, 1.8 and 1.9".
pub fn and_list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => format!(
            "{} and {}",
            rest.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

/// `1.9.6`, `v1.9.6` or `1.9.6-rc1`: three or more parts, the first two numbers.
fn is_version(entry: &str) -> bool {
    let parts: Vec<&str> = entry.trim_start_matches('v').split('.').collect();
    let number = |p: &str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    parts.len() >= 3
        && number(parts[0])
        && number(parts[1])
        && parts[2].starts_with(|c: char| c.is_ascii_digit())
}

/// The line a version belongs to (`1.9.6` is on `1.9`); anything else is a line already.
fn line_of(entry: &str) -> &str {
    if !is_version(entry) {
        return entry;
    }
    let mut dots = entry.match_indices('.').map(|(i, _)| i);
    let second = dots.nth(1).unwrap_or(entry.len());
    &entry[..second]
}

/// Orders versions as numbers (1.10 after 1.9), and anything that is not a number after them.
fn by_version(a: &str, b: &str) -> Ordering {
    let key = |s: &str| -> Vec<(u64, String)> {
        s.trim_start_matches('v')
            .split('.')
            .map(|part| {
                let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
                (digits.parse().unwrap_or(u64::MAX), part.to_owned())
            })
            .collect()
    };
    key(a).cmp(&key(b))
}

fn sorted_unique<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = items.collect();
    out.sort_by(|a, b| by_version(a, b));
    out.dedup();
    out
}

fn entries<S: AsRef<str>>(entries: &[S]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e.as_ref().trim())
        .filter(|e| !e.is_empty())
        .collect()
}

/// The release's lines as words, without the versions: "release line 1.9", "release lines 1.8
/// and 1.9". Sorted, each named once. For what the public reads before the release, which
/// names no fixed version.
pub fn lines_phrase<S: AsRef<str>>(entries: &[S]) -> String {
    let lines = sorted_unique(self::entries(entries).into_iter().map(line_of));
    match lines.as_slice() {
        [] => "no release line".to_owned(),
        [one] => format!("release line {one}"),
        many => format!("release lines {}", and_list(many)),
    }
}

/// The release's lines and the versions typed for them: "release line 1.9 (version 1.9.6)",
/// "release lines 1.8 and 1.9 (versions 1.8.7 and 1.9.6)"; for members' mail.
pub fn lines_and_versions_phrase<S: AsRef<str>>(entries: &[S]) -> String {
    let versions = sorted_unique(self::entries(entries).into_iter().filter(|e| is_version(e)));
    let mut out = lines_phrase(entries);
    match versions.as_slice() {
        [] => {}
        [one] => out.push_str(&format!(" (version {one})")),
        many => out.push_str(&format!(" (versions {})", and_list(many))),
    }
    out
}

/// Whether a title already calls the thing a release ("Security release 1.9.6", "1.9.6
/// Release"), so that the text around it should not say "a security release" again.
pub fn is_a_release_name(title: &str) -> bool {
    title
        .split(|c: char| !c.is_alphanumeric())
        .any(|word| word.eq_ignore_ascii_case("release"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_is_singular_and_several_are_listed_in_order() {
        assert_eq!(lines_phrase(&["1.9"]), "release line 1.9");
        assert_eq!(lines_phrase(&["1.9", "1.8"]), "release lines 1.8 and 1.9");
        assert_eq!(
            lines_phrase(&["1.10", "1.8", "1.9"]),
            "release lines 1.8, 1.9 and 1.10"
        );
    }

    #[test]
    fn versions_name_their_line_and_themselves_for_members() {
        assert_eq!(
            lines_and_versions_phrase(&["1.9.6"]),
            "release line 1.9 (version 1.9.6)"
        );
        assert_eq!(
            lines_and_versions_phrase(&["1.9.6", "1.8.7"]),
            "release lines 1.8 and 1.9 (versions 1.8.7 and 1.9.6)"
        );
        // Two versions of one line are still one line.
        assert_eq!(
            lines_and_versions_phrase(&["1.9.6", "1.9.5"]),
            "release line 1.9 (versions 1.9.5 and 1.9.6)"
        );
        assert_eq!(
            lines_and_versions_phrase(&["v2.0.0-rc1"]),
            "release line v2.0 (version v2.0.0-rc1)"
        );
        assert_eq!(
            lines_and_versions_phrase(&["1.9", "1.8"]),
            "release lines 1.8 and 1.9"
        );
    }

    #[test]
    fn the_public_phrase_names_lines_and_no_version() {
        assert_eq!(lines_phrase(&["1.9.6"]), "release line 1.9");
        assert_eq!(
            lines_phrase(&["1.9.6", "1.8.7"]),
            "release lines 1.8 and 1.9"
        );
    }

    #[test]
    fn what_is_not_a_version_is_taken_as_a_line() {
        assert_eq!(lines_phrase(&["2.x"]), "release line 2.x");
        assert_eq!(lines_phrase(&["main", "1.9"]), "release lines 1.9 and main");
        assert_eq!(lines_phrase(&[" 1.9 ", "1.9", ""]), "release line 1.9");
        assert_eq!(lines_phrase::<&str>(&[]), "no release line");
    }

    #[test]
    fn lists_read_as_english() {
        assert_eq!(and_list::<&str>(&[]), "");
        assert_eq!(and_list(&["a"]), "a");
        assert_eq!(and_list(&["a", "b"]), "a and b");
        assert_eq!(and_list(&["a", "b", "c"]), "a, b and c");
    }

    #[test]
    fn a_title_that_says_release_is_a_release_name() {
        assert!(is_a_release_name("Security release 1.9.6"));
        assert!(is_a_release_name("1.9.6 RELEASE"));
        assert!(!is_a_release_name("HTTP/2 header fixes"));
        assert!(!is_a_release_name("Prerelease hardening"));
    }
}
