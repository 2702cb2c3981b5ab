//! Email templates: one folder per mail in `email-templates/` with `subject.txt`, `body.txt`
//! and `body.html` over the shared `base.txt` and `base.html`, and `sample.json` for previews.
//! They are embedded in the binary; an operator's `EDL_TEMPLATES_DIR` overrides any file.
//! HTML parts are autoescaped; text parts and subjects are not HTML and are not escaped.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use include_dir::{include_dir, Dir};
use minijinja::Environment;
use serde::Serialize;

static EMBEDDED: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/email-templates");

/// The three parts of one rendered mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("there is no email template named {0:?}")]
    Unknown(String),
    #[error("email template {name}: {source}")]
    Render {
        name: String,
        #[source]
        source: minijinja::Error,
    },
    #[error("sample data of email template {name}: {reason}")]
    Sample { name: String, reason: String },
}

/// Values every mail may use: the list's name and where it lives.
#[derive(Debug, Clone, Serialize)]
pub struct Globals {
    pub list_name: String,
    pub project_name: String,
    pub base_url: String,
    /// The list key's fingerprint, in groups of four, for every mail's footer.
    pub list_key_fingerprint: String,
    /// Where leaks are reported (`EDL_SECURITY_CONTACT`), for every mail that says so.
    pub security_contact: String,
    /// The list's zone, in which every time in a mail is shown (with UTC beside it).
    #[serde(skip)]
    pub timezone: chrono_tz::Tz,
}

#[derive(Clone)]
pub struct MailTemplates {
    env: Arc<Environment<'static>>,
    override_dir: Option<PathBuf>,
}

impl MailTemplates {
    pub fn new(globals: &Globals, override_dir: Option<&Path>) -> Self {
        let mut env = crate::templating::environment();
        env.set_keep_trailing_newline(true);
        let dir = override_dir.map(Path::to_path_buf);
        env.set_loader(move |name| Ok(load(dir.as_deref(), name)));
        env.add_global("list_name", globals.list_name.clone());
        env.add_global("project_name", globals.project_name.clone());
        env.add_global(
            "base_url",
            globals.base_url.trim_end_matches('/').to_owned(),
        );
        env.add_global("list_key_fingerprint", globals.list_key_fingerprint.clone());
        env.add_global("security_contact", globals.security_contact.clone());
        crate::templating::add_time_filters(&mut env, globals.timezone);
        // `{{ release_lines|lines_and_versions }}` and `{% if title is a_release_name %}`: the
        // release wording's one home, for the built-in templates and an operator's alike.
        env.add_filter("lines_and_versions", |lines: Vec<String>| {
            crate::releases::wording::lines_and_versions_phrase(&lines)
        });
        env.add_test("a_release_name", |title: &str| {
            crate::releases::wording::is_a_release_name(title)
        });
        Self {
            env: Arc::new(env),
            override_dir: override_dir.map(Path::to_path_buf),
        }
    }

    /// Every mail template name, built-in and overridden, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = EMBEDDED
            .dirs()
            .filter(|d| d.get_file(d.path().join("subject.txt")).is_some())
            .filter_map(|d| d.path().to_str().map(str::to_owned))
            .collect();
        if let Some(dir) = &self.override_dir {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if entry.path().join("subject.txt").is_file() {
                        if let Some(name) = entry.file_name().to_str() {
                            names.push(name.to_owned());
                        }
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }

    /// What a template is for, from the first line of its folder's `description.txt`.
    pub fn description(&self, name: &str) -> Option<String> {
        if !is_template_name(name) {
            return None;
        }
        load(
            self.override_dir.as_deref(),
            &format!("{name}/description.txt"),
        )
        .and_then(|text| {
            text.lines()
                .map(str::trim)
                .find(|l| !l.is_empty())
                .map(str::to_owned)
        })
    }

    /// Render the subject, text and HTML parts of one mail.
    pub fn render(
        &self,
        name: &str,
        context: impl Serialize,
    ) -> Result<RenderedMail, TemplateError> {
        if !is_template_name(name)
            || load(self.override_dir.as_deref(), &format!("{name}/subject.txt")).is_none()
        {
            return Err(TemplateError::Unknown(name.to_owned()));
        }
        let context = minijinja::Value::from_serialize(&context);
        let part = |file: &str| -> Result<String, TemplateError> {
            let path = format!("{name}/{file}");
            self.env
                .get_template(&path)
                .and_then(|t| t.render(&context))
                .map_err(|source| TemplateError::Render { name: path, source })
        };
        // A subject is one header line: fold any line breaks a template or a value brought in.
        let subject = part("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(RenderedMail {
            subject,
            text: part("body.txt")?,
            html: part("body.html")?,
        })
    }

    /// The sample data shipped beside a template, for `edl mail preview`.
    pub fn sample(&self, name: &str) -> Result<serde_json::Value, TemplateError> {
        if !is_template_name(name) {
            return Err(TemplateError::Unknown(name.to_owned()));
        }
        let Some(text) = load(self.override_dir.as_deref(), &format!("{name}/sample.json")) else {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        };
        serde_json::from_str(&text).map_err(|e| TemplateError::Sample {
            name: name.to_owned(),
            reason: e.to_string(),
        })
    }

    /// Render a template with its sample data.
    pub fn preview(&self, name: &str) -> Result<RenderedMail, TemplateError> {
        let sample = self.sample(name)?;
        self.render(name, sample)
    }
}

/// Template names are folder names: no path tricks reach outside the template folders.
fn is_template_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn load(override_dir: Option<&Path>, name: &str) -> Option<String> {
    if name
        .split('/')
        .any(|part| part.is_empty() || part == ".." || part == ".")
    {
        return None;
    }
    if let Some(dir) = override_dir {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            return Some(text);
        }
    }
    EMBEDDED
        .get_file(name)
        .and_then(|f| f.contents_utf8())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn globals() -> Globals {
        Globals {
            list_name: "Example early-disclosure list".into(),
            project_name: "Example".into(),
            base_url: "https://edl.example.org/".into(),
            list_key_fingerprint: "ABCD 0123".into(),
            security_contact: "leaks@example.org".into(),
            timezone: chrono_tz::UTC,
        }
    }

    #[test]
    fn every_built_in_template_previews() {
        let templates = MailTemplates::new(&globals(), None);
        let names = templates.names();
        assert!(names.contains(&"test_message".to_owned()), "{names:?}");
        for name in names {
            let mail = templates
                .preview(&name)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                !mail.subject.is_empty() && !mail.subject.contains('\n'),
                "{name}"
            );
            assert!(
                mail.text.contains("Example early-disclosure list"),
                "{name}: {}",
                mail.text
            );
            assert!(
                mail.html.contains("<html") && mail.html.contains("</html>"),
                "{name}"
            );
        }
    }

    #[test]
    fn html_parts_escape_and_text_parts_do_not() {
        let templates = MailTemplates::new(&globals(), None);
        let evil = "<script>alert(1)</script> & \"friends\"";
        let mail = templates
            .render("test_message", serde_json::json!({ "requested_by": evil }))
            .expect("render");
        assert!(!mail.html.contains("<script>"), "{}", mail.html);
        assert!(
            mail.html
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;"),
            "{}",
            mail.html
        );
        assert!(mail.text.contains(evil));
    }

    #[test]
    fn subjects_cannot_carry_header_breaks() {
        let templates = MailTemplates::new(&globals(), None);
        let mail = templates
            .render(
                "test_message",
                serde_json::json!({ "requested_by": "x\r\nBcc: victim@example.org" }),
            )
            .expect("render");
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
    }

    #[test]
    fn an_operator_folder_overrides_single_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("test_message")).expect("mkdir");
        std::fs::write(
            dir.path().join("test_message/subject.txt"),
            "Custom: {{ list_name }}",
        )
        .expect("write");
        let templates = MailTemplates::new(&globals(), Some(dir.path()));
        let mail = templates.preview("test_message").expect("render");
        assert_eq!(mail.subject, "Custom: Example early-disclosure list");
        // The parts not overridden still come from the built-in folder.
        assert!(mail.text.contains("test message"), "{}", mail.text);
    }

    /// The embargoed release mail of the sample, with `title` and `lines` in place of its own.
    fn release_mail(title: &str, lines: &[&str]) -> RenderedMail {
        let templates = MailTemplates::new(&globals(), None);
        let mut sample = templates.sample("embargoed_release").expect("sample");
        sample["title"] = title.into();
        sample["release_lines"] = lines.into();
        templates
            .render("embargoed_release", sample)
            .expect("render")
    }

    /// Text with its line breaks and runs of spaces as single spaces, as it reads.
    fn prose(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_release_for_one_line_is_named_once_and_in_the_singular() {
        let mail = release_mail("Security release 1.9.6", &["1.9.6"]);
        let text = prose(&mail.text);
        assert!(
            text.contains(
                "Example will publish Security release 1.9.6 on 2026-12-08 16:00 UTC, \
                 for release line 1.9 (version 1.9.6)."
            ),
            "{text}"
        );
        assert!(!text
            .to_lowercase()
            .contains("a security release, security release"));
        assert!(!text.contains("release lines"), "{text}");
        let html = prose(&mail.html);
        assert!(
            html.contains(
                "Example will publish <strong>Security release 1.9.6</strong> on <time \
                 datetime=\"2026-12-08T16:00:00Z\">2026-12-08 16:00 UTC</time>, for release \
                 line 1.9 (version 1.9.6)."
            ),
            "{html}"
        );
    }

    #[test]
    fn a_release_for_several_lines_lists_them_and_a_plain_title_is_introduced() {
        let mail = release_mail("HTTP/2 header fixes", &["1.9", "1.8"]);
        let text = prose(&mail.text);
        assert!(
            text.contains(
                "Example will publish a security release, HTTP/2 header fixes, on \
                 2026-12-08 16:00 UTC, for release lines 1.8 and 1.9."
            ),
            "{text}"
        );
        let mail = release_mail("Security release 1.9.6, 1.8.7", &["1.9.6", "1.8.7"]);
        assert!(
            prose(&mail.text).contains("for release lines 1.8 and 1.9 (versions 1.8.7 and 1.9.6)."),
            "{}",
            mail.text
        );
    }

    #[test]
    fn cancelling_a_release_named_so_does_not_say_security_release_twice() {
        let templates = MailTemplates::new(&globals(), None);
        let mut sample = templates.sample("release_cancelled").expect("sample");
        sample["title"] = "Security release 1.9.6".into();
        let mail = templates
            .render("release_cancelled", &sample)
            .expect("render");
        assert!(
            prose(&mail.text)
                .contains("Security release 1.9.6, which you were told about, has been cancelled."),
            "{}",
            mail.text
        );
        sample["title"] = "HTTP/2 header fixes".into();
        let mail = templates
            .render("release_cancelled", &sample)
            .expect("render");
        assert!(
            prose(&mail.html).contains(
                "The security release <strong>HTTP/2 header fixes</strong>, which you were told \
                 about, has been cancelled."
            ),
            "{}",
            mail.html
        );
    }

    #[test]
    fn a_rejection_lists_each_reason_on_its_own_line() {
        let templates = MailTemplates::new(&globals(), None);
        let context = serde_json::json!({
            "org_name": "Northwind",
            "reasons": [
                "The evidence pages describe internal use only.",
                "The alias is one person's mailbox.\nGive an address the team reads.",
            ],
            "reason": "",
            "criteria_url": "https://edl.example.org/criteria",
            "apply_url": "https://edl.example.org/apply",
        });
        let mail = templates
            .render("decision_rejected", &context)
            .expect("render");
        assert!(
            mail.text.contains(
                "The reasons the working group gave:\n\n\
                 - The evidence pages describe internal use only.\n\
                 - The alias is one person's mailbox.\n  Give an address the team reads.\n"
            ),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("Fix what the reasons above name."));
        let items: Vec<&str> = mail.html.split("<li ").skip(1).collect();
        assert!(
            items[0].contains(">The evidence pages describe internal use only.</li>")
                && items[1].contains(">The alias is one person&#39;s mailbox.\nGive"),
            "{}",
            mail.html
        );

        let one = serde_json::json!({
            "org_name": "Northwind",
            "reasons": ["The evidence pages describe internal use only."],
            "reason": "",
            "criteria_url": "https://edl.example.org/criteria",
            "apply_url": "https://edl.example.org/apply",
        });
        let mail = templates.render("decision_rejected", &one).expect("render");
        assert!(
            mail.text.contains(
                "The reason the working group gave:\n\n\
                 The evidence pages describe internal use only.\n"
            ),
            "{}",
            mail.text
        );
        assert!(!mail.text.contains("- The evidence"), "{}", mail.text);
        assert!(mail.text.contains("Fix what the reason above names."));
    }

    #[test]
    fn mail_that_says_where_to_report_a_leak_names_the_security_contact() {
        let templates = MailTemplates::new(&globals(), None);
        for name in ["embargoed_release", "decision_approved", "key_changed"] {
            let mail = templates.preview(name).expect("render");
            assert!(
                mail.text.contains("leaks@example.org"),
                "{name}: {}",
                mail.text
            );
            assert!(
                mail.html.contains("href=\"mailto:leaks@example.org\""),
                "{name}: {}",
                mail.html
            );
        }
    }

    #[test]
    fn templates_describe_themselves_for_the_list() {
        let templates = MailTemplates::new(&globals(), None);
        let about = templates
            .description("decision_rejected")
            .expect("a description");
        assert!(about.contains("reasons"), "{about}");
        assert_eq!(templates.description("../src"), None);
        assert_eq!(templates.description("no_such_mail"), None);
    }

    #[test]
    fn unknown_and_path_like_names_are_refused() {
        let templates = MailTemplates::new(&globals(), None);
        assert!(matches!(
            templates.preview("nope"),
            Err(TemplateError::Unknown(_))
        ));
        assert!(matches!(
            templates.preview("../src"),
            Err(TemplateError::Unknown(_))
        ));
    }
}
