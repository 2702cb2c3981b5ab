//! Searching text columns the same way on both backends: lower case on both sides (SQLite's
//! `lower` folds ASCII letters only), and the search term's `%`, `_` and `\` taken literally.
//! Queries write `lower(column).like(contains(term)).escape('\\')`.

use diesel::sql_types::Text;

diesel::define_sql_function! {
    /// Lower case, on both backends.
    fn lower(x: Text) -> Text;
}

/// The character [`contains`] escapes with; the query says `ESCAPE '\'`.
pub const ESCAPE: char = '\\';

/// A LIKE pattern that finds `term` anywhere, in lower case, with the wildcards `%` and `_`
/// and the escape character itself taken literally.
pub fn contains(term: &str) -> String {
    let mut pattern = ends_with(term);
    pattern.push('%');
    pattern
}

/// A LIKE pattern that finds text ending in `term`, in lower case, with the wildcards taken
/// literally as in [`contains`].
pub fn ends_with(term: &str) -> String {
    let mut pattern = String::with_capacity(term.len() + 2);
    pattern.push('%');
    for c in term.to_lowercase().chars() {
        if matches!(c, '%' | '_' | ESCAPE) {
            pattern.push(ESCAPE);
        }
        pattern.push(c);
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_a_term_are_taken_literally() {
        assert_eq!(contains("Acme"), "%acme%");
        assert_eq!(contains("100%_off"), "%100\\%\\_off%");
        assert_eq!(contains("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn a_suffix_takes_wildcards_literally() {
        assert_eq!(ends_with(".Example.com"), "%.example.com");
        assert_eq!(ends_with("a_b%"), "%a\\_b\\%");
    }

    #[test]
    fn a_recipient_filter_takes_wildcards_literally_in_any_case() {
        assert_eq!(contains("Alpha"), "%alpha%");
        assert_eq!(contains("sec_ops"), "%sec\\_ops%");
        assert_eq!(contains("100%"), "%100\\%%");
        assert_eq!(contains("a\\b"), "%a\\\\b%");
    }
}
