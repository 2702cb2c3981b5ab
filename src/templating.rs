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

/// Adds the `when` filter: an instant (RFC 3339, or a UTC date and time as the database
/// stores it) shown in the list's zone with UTC beside it. In HTML it is marked up as
/// `<time datetime="…">`; in text parts it is the plain words. `{{ t|when("day") }}` gives
/// the local weekday and date alone.
pub fn add_time_filters(env: &mut Environment<'static>, timezone: chrono_tz::Tz) {
    env.add_filter(
        "when",
        move |state: &State<'_, '_>, value: Value, form: Option<String>| -> Result<Value, Error> {
            let text = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            let at = crate::releases::calendar::parse_instant(&text).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{text:?} is not an instant"),
                )
            })?;
            let moment = crate::releases::calendar::Moment::new(at, timezone);
            let words = match form.as_deref() {
                None => moment.text(),
                Some("day") => moment.local_day(),
                Some(other) => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!("when: unknown form {other:?}"),
                    ))
                }
            };
            Ok(if matches!(state.auto_escape(), AutoEscape::Html) {
                Value::from_safe_string(format!(
                    "<time datetime=\"{}\">{}</time>",
                    moment.machine(),
                    escape_html(&words)
                ))
            } else {
                Value::from(words)
            })
        },
    );
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
    fn instants_show_in_the_list_zone_and_are_marked_up_on_pages() {
        let mut env = environment();
        add_time_filters(&mut env, chrono_tz::America::Los_Angeles);
        env.add_template("t.html", "{{ at|when }}")
            .expect("template");
        env.add_template("t.txt", "{{ at|when }} / {{ at|when(\"day\") }}")
            .expect("template");
        let html = env
            .get_template("t.html")
            .and_then(|t| t.render(minijinja::context! { at => "2027-01-13T00:00:00" }));
        assert_eq!(
            html.expect("render"),
            "<time datetime=\"2027-01-13T00:00:00Z\">2027-01-12 16:00 PST (2027-01-13 00:00 UTC)</time>"
        );
        let text = env
            .get_template("t.txt")
            .and_then(|t| t.render(minijinja::context! { at => "2027-01-13T00:00:00Z" }));
        assert_eq!(
            text.expect("render"),
            "2027-01-12 16:00 PST (2027-01-13 00:00 UTC) / Tuesday 12 January 2027"
        );
        // Something that is not an instant fails loudly rather than printing nonsense.
        let bad = env
            .get_template("t.txt")
            .and_then(|t| t.render(minijinja::context! { at => "soon" }));
        assert!(bad.is_err());
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
