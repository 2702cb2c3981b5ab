//! The examples in `docs/API.md` are run: each ```` ```http ```` request block is sent to a
//! running instance holding the data the document describes (three releases: 1 published,
//! 2 announced, 3 under embargo; two members; one application), and the ```` ```http ````
//! block right after it is the answer: its status must be the one received, each header shown
//! must be there, and its JSON must be found in the body received: every key shown with the
//! value shown, where `"…"` stands for any value, `…` inside a string for any text there, and a
//! trailing `"…"` in an array for any further items. `edl_…` in a request stands for a token with every scope.

use std::path::Path;

use edl::accounts::api_tokens::Scope;
use edl::accounts::Role;
use serde_json::Value;

use crate::api::{three_releases, token_for};
use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(every_example_in_the_api_document_answers_as_shown);

const ANY: &str = "…";

struct Exchange {
    line: usize,
    request: String,
    response: String,
}

/// The request blocks of the document, each with the answer block after it.
fn exchanges(text: &str) -> Vec<Exchange> {
    let mut blocks: Vec<(usize, String)> = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "```http" {
            let start = i + 1;
            let mut body = Vec::new();
            i += 1;
            while i < lines.len() && lines[i].trim() != "```" {
                body.push(lines[i]);
                i += 1;
            }
            blocks.push((start, body.join("\n")));
        }
        i += 1;
    }
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (line, body) in blocks {
        match pending.take() {
            None => pending = Some((line, body)),
            Some((request_line, request)) => {
                assert!(
                    body.starts_with("HTTP/"),
                    "docs/API.md:{request_line}: the request has no answer block after it"
                );
                out.push(Exchange {
                    line: request_line,
                    request,
                    response: body,
                });
            }
        }
    }
    assert!(
        pending.is_none(),
        "docs/API.md: a request block has no answer"
    );
    out
}

/// Whether `actual` holds everything `shown` shows.
fn holds(shown: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (shown, actual) {
        (Value::String(s), _) if s == ANY => Ok(()),
        (Value::String(s), Value::String(a)) if s.contains(ANY) => {
            let (before, after) = s.split_once(ANY).unwrap_or((s, ""));
            if a.starts_with(before) && a.ends_with(after) && a.len() >= before.len() + after.len()
            {
                Ok(())
            } else {
                Err(format!("{at} is {a:?}, the document shows {s:?}"))
            }
        }
        (Value::Object(shown), Value::Object(actual)) => {
            for (key, value) in shown {
                let inner = actual
                    .get(key)
                    .ok_or_else(|| format!("{at}.{key} is missing"))?;
                holds(value, inner, &format!("{at}.{key}"))?;
            }
            Ok(())
        }
        (Value::Array(shown), Value::Array(actual)) => {
            let open = shown.last() == Some(&Value::String(ANY.to_owned()));
            let items = if open {
                &shown[..shown.len() - 1]
            } else {
                &shown[..]
            };
            if (open && actual.len() < items.len()) || (!open && actual.len() != items.len()) {
                return Err(format!(
                    "{at} has {} items, the document shows {}",
                    actual.len(),
                    items.len()
                ));
            }
            for (n, (s, a)) in items.iter().zip(actual).enumerate() {
                holds(s, a, &format!("{at}[{n}]"))?;
            }
            Ok(())
        }
        _ if shown == actual => Ok(()),
        _ => Err(format!("{at} is {actual}, the document shows {shown}")),
    }
}

async fn every_example_in_the_api_document_answers_as_shown(backend: Backend) {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/API.md"))
        .expect("docs/API.md");
    let examples = exchanges(&text);
    assert!(examples.len() >= 8, "the document lost its examples");
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (published, announced, embargoed) = three_releases(&app).await;
    assert_eq!((published, announced, embargoed), (1, 2, 3));
    app.add_member("Northwind Systems", "northwind.example", "active", 1)
        .await;
    app.add_member("Southwind Ltd", "southwind.example", "suspended", 1)
        .await;
    let applicant = Browser::open(&app).await;
    let fields = crate::membership::application("Eastwind Systems", "eastwind.example");
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(applicant.post("/apply", &refs).await.status(), 303);
    let everyone = app
        .add_account(
            "ada@project.example",
            "Ada",
            &[Role::Reviewer, Role::ReleaseManager, Role::Admin],
            "tangerine-kettle-orbit-42",
        )
        .await;
    let token = token_for(&app, everyone, "ada@project.example", Scope::ALL).await;

    let client = reqwest::Client::new();
    let mut failures = Vec::new();
    for example in &examples {
        let (head, body) = example
            .request
            .split_once("\n\n")
            .unwrap_or((example.request.as_str(), ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default();
        let mut words = first.split_whitespace();
        let (method, target) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let mut request = client.request(
            method.parse().expect("a method"),
            format!("{}{target}", app.address),
        );
        for header in lines {
            let (name, value) = header.split_once(':').expect("a header line");
            let value = value.trim().replace("edl_…", &token);
            request = request.header(name.trim(), value);
        }
        if !body.trim().is_empty() {
            request = request.body(body.to_owned());
        }
        let response = request.send().await.expect("the server answers");

        let (head, shown_body) = example
            .response
            .split_once("\n\n")
            .unwrap_or((example.response.as_str(), ""));
        let mut lines = head.lines();
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("a status line");
        let mut problems = Vec::new();
        if response.status().as_u16() != status {
            problems.push(format!("status {} instead of {status}", response.status()));
        }
        for header in lines {
            let (name, value) = header.split_once(':').expect("a header line");
            let value = value.trim();
            match response
                .headers()
                .get(name.trim())
                .and_then(|v| v.to_str().ok())
            {
                Some(actual) if value == ANY || actual == value => {}
                Some(actual) if value.contains(ANY) => {
                    let (before, after) = value.split_once(ANY).unwrap_or((value, ""));
                    if !(actual.starts_with(before) && actual.ends_with(after)) {
                        problems.push(format!("{name}: {actual}"));
                    }
                }
                other => problems.push(format!("{name}: {other:?}")),
            }
        }
        let received = response.text().await.unwrap_or_default();
        if !shown_body.trim().is_empty() {
            let shown: Value = serde_json::from_str(shown_body).unwrap_or_else(|e| {
                panic!(
                    "docs/API.md:{}: the answer shown is not JSON: {e}",
                    example.line
                )
            });
            match serde_json::from_str::<Value>(&received) {
                Ok(actual) => {
                    if let Err(why) = holds(&shown, &actual, "body") {
                        problems.push(why);
                    }
                }
                Err(e) => problems.push(format!("the body is not JSON ({e}): {received}")),
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "docs/API.md:{}: {first}: {}\n--- received ---\n{received}",
                example.line,
                problems.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_matcher_reads_ellipses_as_anything() {
    let actual = serde_json::json!({ "a": 1, "b": ["x", "y"], "c": { "d": "e" } });
    assert!(holds(&serde_json::json!({ "a": 1 }), &actual, "body").is_ok());
    assert!(holds(&serde_json::json!({ "b": ["x", ANY] }), &actual, "body").is_ok());
    assert!(holds(&serde_json::json!({ "b": ["x"] }), &actual, "body").is_err());
    assert!(holds(&serde_json::json!({ "c": ANY }), &actual, "body").is_ok());
    assert!(holds(&serde_json::json!({ "a": 2 }), &actual, "body").is_err());
    assert!(holds(&serde_json::json!({ "c": { "d": "…e" } }), &actual, "body").is_ok());
    assert!(holds(&serde_json::json!({ "c": { "d": "x…" } }), &actual, "body").is_err());
    assert!(holds(&serde_json::json!({ "z": ANY }), &actual, "body").is_err());
}
