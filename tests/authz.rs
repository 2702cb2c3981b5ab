//! The authorization matrix: every route × {anonymous, reviewer, approver, release manager,
//! admin}, with the status each must get. The matrix below must list exactly the routes the
//! service has, so a new route cannot be added without deciding who may use it.

use std::collections::BTreeSet;

use edl::accounts::Role;
use edl::startup::route_table;

use crate::helpers::{Backend, Browser, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "tangerine-kettle-orbit-42";

/// What a persona must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The route serves them: 200 for a page; for a form, anything but a refusal.
    Allowed,
    /// Not signed in: a page sends them to sign in (303), a form is refused (401).
    SignIn,
    /// Signed in without the role: 403.
    Forbidden,
    /// Sent elsewhere (303), e.g. the sign-in page for someone already signed in.
    Redirect,
    /// Let through to the route, whatever it then answers (a page for a token or id that
    /// does not exist answers 404 or 410).
    Served,
    /// An API route that needs a token: a session is not one, so every persona is refused
    /// with 401 and the problem type `token-missing` (what each scope opens is checked in
    /// `api.rs`).
    Token,
}

use Expect::{Allowed as A, Forbidden as F, Redirect as R, Served as V, SignIn as S, Token as T};

/// Columns: anonymous, reviewer, approver, release manager, admin.
const MATRIX: &[(&str, &str, [Expect; 5])] = &[
    ("GET", "/", [A, A, A, A, A]),
    ("GET", "/healthz", [A, A, A, A, A]),
    ("GET", "/readyz", [A, A, A, A, A]),
    ("GET", "/assets/{name}", [A, A, A, A, A]),
    ("GET", "/login", [A, R, R, R, R]),
    ("POST", "/login", [A, A, A, A, A]),
    ("POST", "/logout", [S, A, A, A, A]),
    ("GET", "/account", [S, A, A, A, A]),
    ("POST", "/account/password", [S, A, A, A, A]),
    ("GET", "/login/second-factor", [R, R, R, R, R]),
    ("POST", "/login/second-factor", [A, A, A, A, A]),
    ("GET", "/account/second-factor", [S, A, A, A, A]),
    (
        "POST",
        "/account/second-factor/passkey/start",
        [S, A, A, A, A],
    ),
    (
        "POST",
        "/account/second-factor/passkey/finish",
        [S, A, A, A, A],
    ),
    (
        "POST",
        "/account/second-factor/passkeys/{id}/remove",
        [S, A, A, A, A],
    ),
    (
        "POST",
        "/login/second-factor/passkey/start",
        [A, A, A, A, A],
    ),
    (
        "POST",
        "/login/second-factor/passkey/finish",
        [A, A, A, A, A],
    ),
    ("POST", "/account/second-factor/totp", [S, A, A, A, A]),
    (
        "POST",
        "/account/second-factor/totp/confirm",
        [S, A, A, A, A],
    ),
    (
        "POST",
        "/account/second-factor/recovery-codes",
        [S, A, A, A, A],
    ),
    ("POST", "/account/second-factor/remove", [S, A, A, A, A]),
    (
        "GET",
        "/admin/users/{id}/second-factor/reset",
        [S, F, F, F, A],
    ),
    (
        "POST",
        "/admin/users/{id}/second-factor/reset",
        [S, F, F, F, A],
    ),
    ("GET", "/admin", [S, F, F, F, A]),
    ("GET", "/admin/users", [S, F, F, F, A]),
    ("POST", "/admin/users", [S, F, F, F, A]),
    ("POST", "/admin/users/{id}/roles", [S, F, F, F, A]),
    ("POST", "/admin/users/{id}/disable", [S, F, F, F, A]),
    ("POST", "/admin/users/{id}/enable", [S, F, F, F, A]),
    ("POST", "/admin/users/{id}/reset-password", [S, F, F, F, A]),
    ("GET", "/admin/audit", [S, F, F, F, A]),
    ("GET", "/criteria", [A, A, A, A, A]),
    ("GET", "/embargo-policy", [A, A, A, A, A]),
    ("GET", "/members", [A, A, A, A, A]),
    ("GET", "/openpgp.asc", [A, A, A, A, A]),
    ("GET", "/.well-known/openpgpkey/hu/{hash}", [A, A, A, A, A]),
    ("GET", "/.well-known/openpgpkey/policy", [A, A, A, A, A]),
    (
        "GET",
        "/.well-known/openpgpkey/{domain}/hu/{hash}",
        [A, A, A, A, A],
    ),
    (
        "GET",
        "/.well-known/openpgpkey/{domain}/policy",
        [A, A, A, A, A],
    ),
    ("GET", "/releases", [A, A, A, A, A]),
    ("GET", "/releases/{id}", [V, V, V, V, V]),
    ("GET", "/releases/{id}/osv.json", [V, V, V, V, V]),
    ("GET", "/releases/{id}/osv/{cve}.json", [V, V, V, V, V]),
    ("GET", "/releases/{id}/csaf.json", [V, V, V, V, V]),
    ("GET", "/feed.atom", [A, A, A, A, A]),
    ("GET", "/calendar.ics", [A, A, A, A, A]),
    ("GET", "/members/accept-policy/{token}", [V, V, V, V, V]),
    ("POST", "/members/accept-policy/{token}", [V, V, V, V, V]),
    ("GET", "/members/key/{token}", [V, V, V, V, V]),
    ("POST", "/members/key/{token}", [V, V, V, V, V]),
    ("POST", "/members/key/{token}/confirm", [V, V, V, V, V]),
    ("GET", "/apply", [A, A, A, A, A]),
    ("POST", "/apply", [A, A, A, A, A]),
    ("GET", "/apply/confirm/{token}", [V, V, V, V, V]),
    ("POST", "/apply/confirm/{token}", [V, V, V, V, V]),
    ("GET", "/apply/status/{token}", [V, V, V, V, V]),
    ("GET", "/apply/status/{token}/edit", [V, V, V, V, V]),
    ("POST", "/apply/status/{token}/edit", [V, V, V, V, V]),
    ("POST", "/apply/status/{token}/resend", [V, V, V, V, V]),
    ("POST", "/apply/status/{token}/withdraw", [V, V, V, V, V]),
    ("GET", "/review/applications", [S, A, A, F, F]),
    ("GET", "/review/applications/{id}", [S, V, V, F, F]),
    ("POST", "/review/applications/{id}/vote", [S, V, F, F, F]),
    ("POST", "/review/applications/{id}/comment", [S, V, V, F, F]),
    ("POST", "/review/applications/{id}/approve", [S, F, V, F, F]),
    ("POST", "/review/applications/{id}/decline", [S, F, V, F, F]),
    ("GET", "/manage/releases", [S, F, F, A, A]),
    ("POST", "/manage/releases", [S, F, F, A, A]),
    ("GET", "/manage/releases/{id}", [S, F, F, V, V]),
    ("POST", "/manage/releases/{id}/advisories", [S, F, F, V, V]),
    ("POST", "/manage/releases/{id}/patches", [S, F, F, V, V]),
    (
        "POST",
        "/manage/releases/{id}/patches/{patch}/reclassify",
        [S, F, F, V, V],
    ),
    ("POST", "/manage/releases/{id}/exception", [S, F, F, V, V]),
    ("POST", "/manage/releases/{id}/approve", [S, F, F, V, V]),
    ("GET", "/manage/releases/{id}/cancel", [S, F, F, V, V]),
    ("POST", "/manage/releases/{id}/cancel", [S, F, F, V, V]),
    ("POST", "/manage/releases/{id}/postpone", [S, F, F, V, V]),
    ("GET", "/releases/ack/{token}", [V, V, V, V, V]),
    ("POST", "/releases/ack/{token}", [V, V, V, V, V]),
    ("GET", "/admin/upstreams", [S, F, F, F, A]),
    ("POST", "/admin/upstreams", [S, F, F, F, A]),
    ("GET", "/admin/members", [S, F, F, F, A]),
    ("POST", "/admin/members/{id}/suspend", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/reinstate", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/remove", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/reviewed", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/breach", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/key-link", [S, F, F, F, V]),
    ("GET", "/admin/outbox", [S, F, F, A, A]),
    ("POST", "/admin/outbox/{id}/resend", [S, F, F, V, V]),
    ("GET", "/admin/members.csv", [S, F, F, F, A]),
    ("GET", "/admin/members.json", [S, F, F, F, A]),
    ("GET", "/admin/members/{id}/edit", [S, F, F, F, V]),
    ("POST", "/admin/members/{id}/edit", [S, F, F, F, V]),
    ("GET", "/admin/members/{id}/remove", [S, F, F, F, V]),
    ("GET", "/admin/users/{id}/disable", [S, F, F, F, A]),
    ("GET", "/admin/users/{id}/reset-password", [S, F, F, F, A]),
    ("GET", "/members/alias/{token}", [V, V, V, V, V]),
    ("POST", "/members/alias/{token}", [V, V, V, V, V]),
    ("GET", "/member/sign-in", [A, A, A, A, A]),
    ("POST", "/member/sign-in", [A, A, A, A, A]),
    ("GET", "/member/sign-in/{token}", [V, V, V, V, V]),
    ("POST", "/member/sign-in/{token}", [V, V, V, V, V]),
    ("POST", "/member/sign-out", [S, S, S, S, S]),
    ("GET", "/member", [R, R, R, R, R]),
    ("POST", "/member/acknowledge", [S, S, S, S, S]),
    ("POST", "/member/policy", [S, S, S, S, S]),
    ("GET", "/member/contacts", [R, R, R, R, R]),
    ("POST", "/member/contacts", [S, S, S, S, S]),
    ("GET", "/member/key", [R, R, R, R, R]),
    ("GET", "/account/tokens", [S, A, A, A, A]),
    ("POST", "/account/tokens", [S, A, A, A, A]),
    ("POST", "/account/tokens/{id}/revoke", [S, A, A, A, A]),
    ("GET", "/api/v1/openapi.json", [A, A, A, A, A]),
    ("GET", "/api/v1/docs", [A, A, A, A, A]),
    ("GET", "/api/v1/releases", [A, A, A, A, A]),
    ("GET", "/api/v1/releases/{id}", [V, V, V, V, V]),
    ("GET", "/api/v1/advisories", [A, A, A, A, A]),
    ("GET", "/api/v1/calendar", [A, A, A, A, A]),
    ("GET", "/api/v1/roster", [A, A, A, A, A]),
    ("GET", "/api/v1/applications", [T, T, T, T, T]),
    ("GET", "/api/v1/applications/{id}", [T, T, T, T, T]),
    ("GET", "/api/v1/members", [T, T, T, T, T]),
    ("GET", "/api/v1/manage/releases", [T, T, T, T, T]),
    ("POST", "/api/v1/manage/releases", [T, T, T, T, T]),
    ("GET", "/api/v1/manage/releases/{id}", [T, T, T, T, T]),
    (
        "GET",
        "/api/v1/manage/releases/{id}/deliveries",
        [T, T, T, T, T],
    ),
    (
        "POST",
        "/api/v1/manage/releases/{id}/advisories",
        [T, T, T, T, T],
    ),
    (
        "POST",
        "/api/v1/manage/releases/{id}/patches",
        [T, T, T, T, T],
    ),
];

#[test]
fn the_matrix_lists_exactly_the_routes_of_the_service() {
    let served: BTreeSet<(String, String)> = route_table()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    let decided: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let undecided: Vec<_> = served.difference(&decided).collect();
    let stale: Vec<_> = decided.difference(&served).collect();
    assert!(
        undecided.is_empty(),
        "routes missing from the authorization matrix: {undecided:?}"
    );
    assert!(
        stale.is_empty(),
        "matrix rows for routes that no longer exist: {stale:?}"
    );
}

/// `docs/SECURITY.md` prints the matrix for people; it must say what the test checks.
#[test]
fn the_security_document_prints_this_matrix() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/SECURITY.md"))
        .expect("docs/SECURITY.md");
    let letter = |e: &Expect| match e {
        Expect::Allowed => "A",
        Expect::SignIn => "S",
        Expect::Forbidden => "F",
        Expect::Redirect => "R",
        Expect::Served => "V",
        Expect::Token => "T",
    };
    let printed: Vec<String> = doc
        .lines()
        .filter(|l| l.starts_with("| GET | `") || l.starts_with("| POST | `"))
        .map(str::to_owned)
        .collect();
    let expected: Vec<String> = MATRIX
        .iter()
        .map(|(method, path, cells)| {
            let cells: Vec<&str> = cells.iter().map(letter).collect();
            format!("| {method} | `{path}` | {} |", cells.join(" | "))
        })
        .collect();
    assert_eq!(
        printed, expected,
        "docs/SECURITY.md's route matrix differs from tests/authz.rs"
    );
}

on_both_backends!(every_route_answers_every_persona_as_the_matrix_says);

async fn every_route_answers_every_persona_as_the_matrix_says(backend: Backend) {
    let vars = [
        ("EDL_LOGIN_RATE_LIMIT", "10000/1m"),
        ("EDL_PUBLIC_POST_RATE_LIMIT", "10000/1m"),
        // A host name, so that the passkey routes are offered and checked too.
        ("EDL_BASE_URL", "http://localhost:8080"),
    ];
    let Some(app) = TestApp::spawn_with(backend, &vars, None).await else {
        return;
    };
    let personas: [(&str, Option<Role>); 5] = [
        ("anonymous", None),
        ("reviewer", Some(Role::Reviewer)),
        ("approver", Some(Role::Approver)),
        ("release-manager", Some(Role::ReleaseManager)),
        ("admin", Some(Role::Admin)),
    ];
    for (name, role) in personas.iter() {
        if let Some(role) = role {
            app.add_account(&format!("{name}@example.org"), name, &[*role], PASSWORD)
                .await;
        }
    }
    // The account the admin routes act on, so no persona changes itself.
    let target = app
        .add_account("target@example.org", "Target", &[Role::Reviewer], PASSWORD)
        .await;

    for (path_pattern, method, expectations) in MATRIX.iter().map(|(m, p, e)| (*p, *m, e)) {
        let path = path_pattern
            .replace("{id}", &target.to_string())
            .replace("{name}", "style.css")
            .replace("{token}", "0123456789abcdef")
            .replace("{patch}", "1")
            .replace("{cve}", "CVE-2026-0001")
            // The Web Key Directory of the default From address, edl@localhost.
            .replace("{domain}", "localhost")
            .replace("{hash}", "yhuces14hjpupkd5ncq377tktssajs4j");
        for (column, (persona, role)) in personas.iter().enumerate() {
            let browser = Browser::open(&app).await;
            if role.is_some() {
                browser
                    .sign_in(&format!("{persona}@example.org"), PASSWORD)
                    .await;
            }
            let response = match method {
                "GET" => browser.get(&path).await,
                // The passkey routes take JSON from the page's script, the CSRF token in a
                // header; a form post to them is refused before the route is reached.
                _ if path.contains("/passkey/") => browser
                    .client
                    .post(format!("{}{path}", browser.base))
                    .header("x-csrf-token", &browser.csrf)
                    .json(&serde_json::json!({}))
                    .send()
                    .await
                    .expect("the server answers"),
                _ => browser.post(&path, &[]).await,
            };
            let status = response.status().as_u16();
            for header in [
                "content-security-policy",
                "x-content-type-options",
                "referrer-policy",
                "x-frame-options",
            ] {
                assert!(
                    response.headers().contains_key(header),
                    "{method} {path} as {persona}: no {header}"
                );
            }
            let expected = expectations[column];
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(str::to_owned);
            let content_type = response.headers().get("content-type").cloned();
            let body = response.text().await.unwrap_or_default();
            // A refusal by the access guard says "Sign in first"; a 401 from the sign-in form
            // itself (wrong credentials) is the route serving the request.
            let guard_said_sign_in =
                status == 401 && body.contains("Sign in first, then try again.");
            let ok = match (expected, method) {
                (Expect::Allowed, "GET") => status == 200,
                (Expect::Allowed, _) => {
                    !guard_said_sign_in && !matches!(status, 403..=405) && status < 500
                }
                (Expect::SignIn, "GET") => {
                    status == 303 && location.is_some_and(|l| l.starts_with("/login?next="))
                }
                (Expect::SignIn, _) => guard_said_sign_in,
                (Expect::Forbidden, _) => status == 403,
                (Expect::Redirect, _) => status == 303,
                (Expect::Token, _) => status == 401 && body.contains("problem-token-missing"),
                (Expect::Served, _) => {
                    !guard_said_sign_in && !matches!(status, 403 | 405) && status < 500
                }
            };
            assert!(
                ok,
                "{method} {path} as {persona}: expected {expected:?}, got {status}"
            );
            if method == "GET" {
                // HEAD answers as GET does, with the same status and headers and no body.
                let head = browser.head(&path).await;
                assert_eq!(
                    head.status().as_u16(),
                    status,
                    "HEAD {path} as {persona} answers differently from GET"
                );
                assert_eq!(
                    head.headers().get("content-type"),
                    content_type.as_ref(),
                    "HEAD {path} as {persona}: content type"
                );
                assert!(
                    head.bytes().await.expect("HEAD response").is_empty(),
                    "HEAD {path} as {persona} sent a body"
                );
            }
        }
    }
}
