//! The embargo policy members accept: its text and its version. Built in from
//! `data/embargo-policy.md`, or read from `EDL_POLICY_FILE`; the first line is `Version: N`.

use serde::Serialize;

use crate::templating::escape_html;

static BUILT_IN: &str = include_str!("../../data/embargo-policy.md");

#[derive(Debug, Clone, Serialize)]
pub struct Policy {
    pub version: i32,
    /// The text as written, without the version line.
    pub text: String,
    /// The text as safe HTML: headings, paragraphs and lists, everything else escaped.
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("embargo policy {source_name}: {reason}")]
pub struct PolicyError {
    source_name: String,
    reason: String,
}

impl Policy {
    pub fn built_in() -> Result<Self, PolicyError> {
        Self::parse("built-in", BUILT_IN)
    }

    pub fn load(file: Option<&std::path::Path>) -> Result<Self, PolicyError> {
        match file {
            None => Self::built_in(),
            Some(path) => {
                let name = path.display().to_string();
                let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
                    source_name: name.clone(),
                    reason: e.to_string(),
                })?;
                Self::parse(&name, &text)
            }
        }
    }

    pub fn parse(source_name: &str, text: &str) -> Result<Self, PolicyError> {
        let error = |reason: &str| PolicyError {
            source_name: source_name.to_owned(),
            reason: reason.to_owned(),
        };
        let mut lines = text.lines();
        let first = lines.next().unwrap_or_default();
        let version = first
            .strip_prefix("Version:")
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|v| *v > 0)
            .ok_or_else(|| error("the first line must be 'Version: N' with N a positive number"))?;
        let body: String = lines.collect::<Vec<_>>().join("\n").trim().to_owned();
        if body.is_empty() {
            return Err(error("the policy has no text"));
        }
        Ok(Self {
            version,
            html: to_html(&body),
            text: body,
        })
    }
}

/// A small, safe subset of Markdown: `## ` headings, `- ` list items (continued on indented
/// lines), and paragraphs. Everything is escaped; nothing else is interpreted.
fn to_html(text: &str) -> String {
    let mut html = String::new();
    let mut paragraph: Vec<String> = Vec::new();
    let mut items: Vec<String> = Vec::new();
    let flush = |html: &mut String, paragraph: &mut Vec<String>, items: &mut Vec<String>| {
        if !paragraph.is_empty() {
            html.push_str(&format!("<p>{}</p>\n", escape_html(&paragraph.join(" "))));
            paragraph.clear();
        }
        if !items.is_empty() {
            html.push_str("<ul>\n");
            for item in items.iter() {
                html.push_str(&format!("<li>{}</li>\n", escape_html(item)));
            }
            html.push_str("</ul>\n");
            items.clear();
        }
    };
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut html, &mut paragraph, &mut items);
        } else if let Some(heading) = trimmed.strip_prefix("## ") {
            flush(&mut html, &mut paragraph, &mut items);
            html.push_str(&format!("<h2>{}</h2>\n", escape_html(heading)));
        } else if let Some(item) = trimmed.strip_prefix("- ") {
            if !paragraph.is_empty() {
                flush(&mut html, &mut paragraph, &mut items);
            }
            items.push(item.to_owned());
        } else if line.starts_with(' ') && !items.is_empty() {
            if let Some(last) = items.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
        } else {
            paragraph.push(trimmed.to_owned());
        }
    }
    flush(&mut html, &mut paragraph, &mut items);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_policy_has_a_version_and_the_envoy_rule() {
        let policy = Policy::built_in().expect("built-in policy parses");
        assert_eq!(policy.version, 1);
        assert!(policy.text.contains("Envoy"));
        assert!(policy.html.contains("<h2>The embargo</h2>"));
        assert!(policy
            .html
            .contains("<li>Nothing received from the list may be made public"));
    }

    #[test]
    fn text_is_escaped_and_a_version_is_required() {
        let policy =
            Policy::parse("test", "Version: 3\n\nUse <b>care</b> & caution.").expect("parse");
        assert_eq!(policy.version, 3);
        assert_eq!(
            policy.html,
            "<p>Use &lt;b&gt;care&lt;/b&gt; &amp; caution.</p>\n"
        );
        assert!(Policy::parse("test", "no version\ntext").is_err());
        assert!(Policy::parse("test", "Version: 0\ntext").is_err());
        assert!(Policy::parse("test", "Version: 2\n").is_err());
    }
}
