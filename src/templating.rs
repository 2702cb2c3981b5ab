//! What page and mail templates share: how values are escaped into HTML.

use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, Value};

/// Escapes the five characters that matter in HTML text and quoted attributes, and nothing
/// else, so URLs and dates read as themselves in the source of a page or a mail.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn formatter(out: &mut Output<'_>, state: &State<'_, '_>, value: &Value) -> Result<(), Error> {
    let plain_value = !value.is_safe() && !value.is_undefined() && !value.is_none();
    if matches!(state.auto_escape(), AutoEscape::Html) && plain_value {
        return write!(out, "{}", escape_html(&value.to_string()))
            .map_err(|e| Error::new(ErrorKind::WriteFailure, e.to_string()));
    }
    minijinja::escape_formatter(out, state, value)
}

/// An environment with the settings both kinds of template use: strict about undefined values when printed
/// (a typo fails loudly in tests rather than rendering blank), autoescaped by file extension.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.set_trim_blocks(true);
    env.set_formatter(formatter);
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_urls_are_not_mangled() {
        let mut env = environment();
        env.add_template("t.html", "<a href=\"{{ url }}\">{{ text }}</a>")
            .expect("template");
        let out = env
            .get_template("t.html")
            .and_then(|t| {
                t.render(minijinja::context! {
                    url => "https://github.com/envoyproxy/envoy/security/policy",
                    text => "<b>\"x\" & 'y'</b>",
                })
            })
            .expect("render");
        assert_eq!(
            out,
            "<a href=\"https://github.com/envoyproxy/envoy/security/policy\">&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;</a>"
        );
    }

    #[test]
    fn text_templates_are_not_escaped() {
        let mut env = environment();
        env.add_template("t.txt", "{{ text }}").expect("template");
        let out = env
            .get_template("t.txt")
            .and_then(|t| t.render(minijinja::context! { text => "<b>&</b>" }));
        assert_eq!(out.expect("render"), "<b>&</b>");
    }
}
