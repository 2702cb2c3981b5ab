//! The API's OpenAPI document, checked three ways: against the route table (every API route is
//! in it with the scope the table gives it, and nothing else is); by an independent validator
//! of the OpenAPI 3.1 specification (`openapi-spec-validator`); and by an independent API
//! fuzzer driven by the document (`schemathesis`) against a running instance with data in it,
//! which must find no 5xx and no answer the document does not describe. Both tools run from
//! the validators' virtualenv (tests/validators/requirements.txt).

use std::path::PathBuf;
use std::process::Command;

use edl::accounts::api_tokens::Scope;
use edl::accounts::Role;
use edl::startup::route_table;
use edl::web::auth::Access;
use serde_json::Value;

use crate::api::{three_releases, token_for};
use crate::helpers::{validators, Backend, Browser, TestApp};
use crate::on_both_backends;

on_both_backends!(an_api_fuzzer_finds_no_server_error_and_no_answer_outside_the_document);

/// A tool of the validators' virtualenv; a clear failure when it is not installed.
fn tool(name: &str) -> PathBuf {
    let path = validators::venv().join("bin").join(name);
    let works = Command::new(&path)
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "{} is not installed. Install the validators with `{}` (from the repository root; {} \
         chooses another virtualenv).",
        path.display(),
        validators::install_command(),
        validators::VENV_VAR
    );
    path
}

#[test]
fn the_document_lists_exactly_the_api_routes_with_their_scopes() {
    let doc = serde_json::to_value(edl::web::api::document("https://lists.example"))
        .expect("the document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let scope = op["security"][0]["token"][0].as_str().map(str::to_owned);
            documented.push((method.to_uppercase(), path.clone(), scope));
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String, Option<String>)> = route_table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
        // The document itself and the page that presents it.
        .filter(|r| !["/api/v1/openapi.json", "/api/v1/docs"].contains(&r.path))
        .map(|r| {
            let scope = match r.access {
                Access::Token(scope) => Some(scope.as_str().to_owned()),
                Access::Public => None,
                other => panic!(
                    "{} {}: an API route is public or needs a token, not {other:?}",
                    r.method, r.path
                ),
            };
            (r.method.to_string(), r.path.to_owned(), scope)
        })
        .collect();
    routed.sort();
    assert_eq!(documented, routed);
    // Every scope opens something.
    for scope in Scope::ALL {
        assert!(
            routed
                .iter()
                .any(|(_, _, s)| s.as_deref() == Some(scope.as_str())),
            "{scope} opens no route"
        );
    }
}

/// A running instance with something behind every endpoint: three releases in three states,
/// members, an application, and a token with every scope. Returns the token.
async fn populated(app: &TestApp) -> String {
    three_releases(app).await;
    app.add_member("Northwind", "northwind.example", "active", 1)
        .await;
    app.add_member("Southwind", "southwind.example", "suspended", 1)
        .await;
    let applicant = Browser::open(app).await;
    let fields = crate::membership::application("Eastwind Systems", "eastwind.example");
    let refs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(applicant.post("/apply", &refs).await.status(), 303);
    let everyone = app
        .add_account(
            "all@project.example",
            "All",
            &[Role::Reviewer, Role::ReleaseManager, Role::Admin],
            "tangerine-kettle-orbit-42",
        )
        .await;
    token_for(app, everyone, "all@project.example", Scope::ALL).await
}

async fn an_api_fuzzer_finds_no_server_error_and_no_answer_outside_the_document(backend: Backend) {
    let validator = tool("openapi-spec-validator");
    let fuzzer = tool("schemathesis");
    let Some(app) = TestApp::spawn_with(
        backend,
        &[
            ("EDL_API_RATE_LIMIT", "100000/1m"),
            ("EDL_PUBLIC_POST_RATE_LIMIT", "1000/1m"),
        ],
        None,
    )
    .await
    else {
        return;
    };
    let token = populated(&app).await;

    // The document as served, through the independent validator.
    let served = app.get("/api/v1/openapi.json").await;
    assert_eq!(served.status(), 200);
    let document: Value = served.json().await.expect("JSON");
    assert!(document["servers"][0]["url"]
        .as_str()
        .is_some_and(|u| u.starts_with("http") && u.ends_with('/')));
    let operations: usize = document["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, serde_json::Map::len))
        .sum();
    let folder = tempfile::tempdir().expect("folder");
    let file = folder.path().join("openapi.json");
    std::fs::write(&file, document.to_string()).expect("write");
    let out = Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The fuzzer, against the running instance. Every check but one: `positive_data_acceptance`
    // expects any request the schema allows to succeed, which an API with rules beyond types
    // cannot promise (a cursor this API never gave, a Patch Tuesday that is no Tuesday, a CVE
    // id already in the release: each is a 400, 409 or 422 with a problem document, as the
    // document says). A fixed seed keeps runs comparable.
    let report = folder.path().join("report");
    let out = tokio::process::Command::new(&fuzzer)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", app.address))
        .args(["--url", &format!("{}/", app.address)])
        .args(["-H", &format!("Authorization: Bearer {token}")])
        .args(["--checks", "all"])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--max-examples", "25"])
        // One worker: with several, Python 3.11's parser can fail inside the fuzzer's own
        // bookkeeping (an `ast` recursion-depth error reported as a runtime error).
        .args(["--workers", "1"])
        .args(["--seed", "20261207"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        .env("NO_COLOR", "1")
        // It keeps a cache of what it found in its working folder: the test's, not the
        // repository.
        .current_dir(folder.path())
        .output()
        .await
        .expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the API fuzzer found answers outside the document:\n{text}"
    );
    // It reached every operation and made real requests.
    assert!(text.contains(&format!("Tested: {operations}")), "{text}");
    assert!(!text.contains("Runtime Error"), "{text}");
}
