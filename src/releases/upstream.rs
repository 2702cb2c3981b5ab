//! The upstream rule: an upstream's embargoed fixes (Envoy's, by default) are never
//! redistributed. Everything about it lives here: what makes a patch look like Envoy's, the
//! flag that blocks approval until a person classifies such a patch, how a mailing groups the
//! fixes it withholds, and the last check before any message leaves, which refuses a
//! non-redistributable patch whatever put it in the message.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit;
use crate::db::schema::{outbox_attachments, patches, upstreams};
use crate::db::{self, DbConnection, DbError};
use crate::mail::transport::Attachment;
use crate::releases::patch::{LinePlace, PatchAnalysis};
use crate::releases::release::{Actor, Patch, ReleaseError};

/// The built-in upstream, seeded by the first migration with may-redistribute off.
pub const ENVOY_SLUG: &str = "envoy";

/// Envoy's security policy, linked wherever Envoy's fixes are withheld. The same URL is seeded
/// into the `upstreams` table by the first migration.
pub const ENVOY_POLICY_URL: &str = "https://github.com/envoyproxy/envoy/security/policy";

/// How many paths or addresses a reason names before it says "and N more": enough to recognise
/// the evidence without turning the reason into a listing.
const EVIDENCE_SHOWN: usize = 3;

/// How much of a line a reason quotes.
const SNIPPET_CHARS: usize = 120;

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = upstreams)]
pub struct Upstream {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub policy_url: String,
    pub may_redistribute: bool,
    pub created_at: NaiveDateTime,
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<Upstream>, DbError> {
    Ok(upstreams::table
        .order(upstreams::name)
        .select(Upstream::as_select())
        .load(conn)?)
}

pub fn find_by_slug(conn: &mut DbConnection, slug: &str) -> Result<Option<Upstream>, DbError> {
    Ok(upstreams::table
        .filter(upstreams::slug.eq(slug))
        .select(Upstream::as_select())
        .first(conn)
        .optional()?)
}

/// Adds an upstream whose embargoed fixes a release may carry. Envoy is built in.
pub fn add(
    conn: &mut DbConnection,
    name: &str,
    policy_url: &str,
    may_redistribute: bool,
    by: &Actor,
) -> Result<i64, ReleaseError> {
    let name = name.trim();
    let slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_owned();
    if slug.is_empty() || name.chars().count() > 100 {
        return Err(ReleaseError::invalid(
            "name",
            "Give the upstream's name (at most 100 characters).",
        ));
    }
    let url_ok = url::Url::parse(policy_url.trim())
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if !url_ok {
        return Err(ReleaseError::invalid(
            "policy_url",
            "Give the upstream's security policy as an https:// address.",
        ));
    }
    db::write_transaction(conn, |conn| {
        if find_by_slug(conn, &slug)?.is_some() {
            return Err(ReleaseError::invalid(
                "name",
                format!("An upstream named {name} already exists."),
            ));
        }
        let id: i64 = diesel::insert_into(upstreams::table)
            .values((
                upstreams::slug.eq(&slug),
                upstreams::name.eq(name),
                upstreams::policy_url.eq(policy_url.trim()),
                upstreams::may_redistribute.eq(may_redistribute),
                upstreams::created_at.eq(db::now()),
            ))
            .returning(upstreams::id)
            .get_result(conn)?;
        audit::record(
            conn,
            &by.email,
            "upstream.added",
            &format!("upstream:{id}"),
            json!({ "name": name, "policy_url": policy_url.trim(), "may_redistribute": may_redistribute }),
        )?;
        Ok(id)
    })
}

/// What the upload of a patch is judged to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Looks like Envoy's but is not filed as Envoy's: approval is blocked until a person
    /// classifies it.
    pub flagged: bool,
    /// Why it looks like Envoy's, one sentence per kind of evidence.
    pub signals: Vec<String>,
}

/// Judges a patch about to be filed under `upstream_id` (`None`: the project's own). A patch
/// that looks like Envoy's and is filed as anything but Envoy's (the project's, or another
/// upstream's that may be redistributed) is flagged.
pub fn classify(
    conn: &mut DbConnection,
    analysis: &PatchAnalysis,
    upstream_id: Option<i64>,
) -> Result<Classification, DbError> {
    let signals = envoy_signals(analysis);
    let envoy = find_by_slug(conn, ENVOY_SLUG)?.map(|u| u.id);
    let flagged = !signals.is_empty() && (envoy.is_none() || upstream_id != envoy);
    Ok(Classification { flagged, signals })
}

/// What stops approval because of the upstream rule: every flagged patch nobody classified.
pub fn blockers(patches: &[Patch]) -> Vec<String> {
    patches
        .iter()
        .filter(|p| p.blocks())
        .map(|p| {
            format!(
                "{} is not filed as Envoy's but looks like an upstream's. {} Set its origin, with a reason.",
                p.filename,
                p.upstream_signals.first().map_or("See the patch.", String::as_str)
            )
        })
        .collect()
}

/// The fixes of one upstream a mailing withholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Withheld {
    pub name: String,
    pub policy_url: String,
    pub count: usize,
}

/// A mailing's patches split by the rule: those it may attach, and per upstream the number it
/// withholds with that upstream's policy.
pub fn split_for_mail<'a>(
    patches: &'a [Patch],
    upstreams: &[Upstream],
) -> (Vec<&'a Patch>, Vec<Withheld>) {
    let mut attach = Vec::new();
    let mut withheld: Vec<Withheld> = Vec::new();
    for p in patches {
        let upstream = p
            .upstream_id
            .and_then(|u| upstreams.iter().find(|x| x.id == u));
        match upstream {
            Some(upstream) if !upstream.may_redistribute => {
                match withheld.iter_mut().find(|w| w.name == upstream.name) {
                    Some(entry) => entry.count += 1,
                    None => withheld.push(Withheld {
                        name: upstream.name.clone(),
                        policy_url: upstream.policy_url.clone(),
                        count: 1,
                    }),
                }
            }
            _ => attach.push(p),
        }
    }
    (attach, withheld)
}

/// The last check before a message leaves: the files it attaches, read through its
/// attachment rows. Refuses (with the reason) if any of them belongs to an upstream whose
/// fixes may not be redistributed, whatever path put the patch in the message.
pub fn attachments_for_send(
    conn: &mut DbConnection,
    outbox_id: i64,
) -> Result<Result<Vec<Attachment>, String>, DbError> {
    type Row = (i64, String, Vec<u8>, Option<String>, Option<bool>);
    let rows: Vec<Row> = outbox_attachments::table
        .inner_join(patches::table.left_join(upstreams::table))
        .filter(outbox_attachments::outbox_id.eq(outbox_id))
        .order(patches::id)
        .select((
            patches::id,
            patches::filename,
            patches::content,
            upstreams::name.nullable(),
            upstreams::may_redistribute.nullable(),
        ))
        .load(conn)?;
    let mut files = Vec::with_capacity(rows.len());
    for (id, filename, content, upstream, may_redistribute) in rows {
        if may_redistribute == Some(false) {
            return Ok(Err(format!(
                "refused to attach patch {id}: it comes from {} under its embargo and may not be redistributed",
                upstream.unwrap_or_default()
            )));
        }
        files.push(Attachment { filename, content });
    }
    Ok(Ok(files))
}

/// Why a patch looks like Envoy's, one sentence per kind of evidence; empty when it does not.
pub fn envoy_signals(analysis: &PatchAnalysis) -> Vec<String> {
    let mut signals = Vec::new();
    let paths: Vec<&str> = analysis
        .files
        .iter()
        .map(String::as_str)
        .filter(|p| is_envoy_path(p))
        .collect();
    if !paths.is_empty() {
        signals.push(format!(
            "It touches Envoy's source tree: {}. Set its origin to Envoy if it is Envoy's fix; \
             reclassify it as the project's only if these files belong to the project (for \
             example its own proxy build).",
            evidence_list(&paths)
        ));
    }
    let addresses: Vec<&str> = analysis
        .addresses
        .iter()
        .map(String::as_str)
        .filter(|a| is_envoy_address(a))
        .collect();
    if !addresses.is_empty() {
        signals.push(format!(
            "It was written or signed off from Envoy's domain: {}. Set its origin to Envoy if \
             it is Envoy's fix; reclassify it as the project's only if this person wrote it \
             for the project.",
            evidence_list(&addresses)
        ));
    }
    if let Some(line) = analysis.lines.iter().find(|l| mentions_envoy_repo(&l.text)) {
        signals.push(format!(
            "It mentions envoyproxy/envoy in {}: \"{}\". Set its origin to Envoy if it is \
             Envoy's fix or a backport of it; reclassify it as the project's only if it merely \
             refers to Envoy.",
            line.place.describe(),
            snippet(&line.text)
        ));
    }
    let include = analysis.lines.iter().find_map(|l| match &l.place {
        LinePlace::Added(file) if is_envoy_include(&l.text) => Some((file, &l.text)),
        _ => None,
    });
    if let Some((file, line)) = include {
        signals.push(format!(
            "It adds an include of Envoy's C++ headers to {file}: {}. Set its origin to \
             Envoy if it is Envoy's code; reclassify it as the project's only if this is the \
             project's own proxy code.",
            snippet(line)
        ));
    }
    signals
}

/// An address at envoyproxy.io or one of its subdomains. GitHub's noreply addresses say nothing
/// about who someone works for, so they never count.
fn is_envoy_address(address: &str) -> bool {
    let Some((_, domain)) = address.rsplit_once('@') else {
        return false;
    };
    let domain = domain.trim_end_matches('.');
    domain == "envoyproxy.io" || domain.ends_with(".envoyproxy.io")
}

/// Paths laid out like Envoy's repository. The project's own tree mentions Envoy too (Istio's
/// `pilot/.../envoyfilter/*.go`, chart YAML), so the rules are about Envoy's C++ and proto layout,
/// not the word.
fn is_envoy_path(path: &str) -> bool {
    const TREES: [&str; 8] = [
        "envoy/",
        "source/common/",
        "source/extensions/",
        "source/server/",
        "source/exe/",
        "api/envoy/",
        "test/extensions/",
        "test/common/",
    ];
    let name = path.rsplit('/').next().unwrap_or(path);
    let cpp_or_proto = name
        .rsplit_once('.')
        .is_some_and(|(_, ext)| matches!(ext, "h" | "hh" | "hpp" | "cc" | "cpp" | "cxx" | "proto"));
    TREES.iter().any(|tree| path.starts_with(tree))
        || (path.starts_with("contrib/") && cpp_or_proto)
        || (path.contains("/envoy/") && cpp_or_proto)
        || name == "envoy.bzl"
        || (path.starts_with("bazel/") && name.starts_with("envoy_") && name.ends_with(".bzl"))
}

/// "envoyproxy/envoy" as a repository name (also envoy-setec, where Envoy stages embargoed
/// fixes), not as the tail of some other name.
fn mentions_envoy_repo(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.match_indices("envoyproxy/envoy").any(|(i, _)| {
        i == 0 || {
            let before = lower.as_bytes()[i - 1];
            !(before.is_ascii_alphanumeric() || matches!(before, b'-' | b'_' | b'.'))
        }
    })
}

/// `#include "envoy/…"` or `#include <envoy/…>`: code written against Envoy's C++ API.
fn is_envoy_include(content: &str) -> bool {
    content
        .trim_start()
        .strip_prefix('#')
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("include"))
        .map(str::trim_start)
        .is_some_and(|target| target.starts_with("\"envoy/") || target.starts_with("<envoy/"))
}

/// "a, b, c and 2 more".
fn evidence_list(items: &[&str]) -> String {
    let shown = items[..items.len().min(EVIDENCE_SHOWN)].join(", ");
    match items.len().saturating_sub(EVIDENCE_SHOWN) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

fn snippet(line: &str) -> String {
    let line = line.trim();
    if line.chars().count() > SNIPPET_CHARS {
        let mut short: String = line.chars().take(SNIPPET_CHARS - 1).collect();
        short.push('…');
        short
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::releases::patch::analyse;
    use crate::releases::patch::test_fixtures::*;
    use crate::releases::patch::PatchFormat;

    #[test]
    fn envoy_patch_with_envoy_sign_off_is_flagged_for_both() {
        let text = mbox(&[
            r#"From 5e0c7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b Mon Sep 17 00:00:00 2001
From: Alex Rivera <arivera@example.com>
Date: Mon, 2 Mar 2026 16:40:11 +0000
Subject: [PATCH] jwt_authn: reject tokens with an empty issuer

Risk Level: Low
Testing: unit tests

Signed-off-by: Envoy Security <security@envoyproxy.io>
---
 .../filters/http/jwt_authn/authenticator.cc          | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/source/extensions/filters/http/jwt_authn/authenticator.cc b/source/extensions/filters/http/jwt_authn/authenticator.cc
index 4c5d6e7..8f9a0b1 100644
--- a/source/extensions/filters/http/jwt_authn/authenticator.cc
+++ b/source/extensions/filters/http/jwt_authn/authenticator.cc
@@ -212,5 +212,5 @@ void AuthenticatorImpl::startVerify() {
   // Check the issuer is configured or not.
   jwks_data_ = provider_ ? jwks_cache_.findByProvider(provider_.value())
                          : jwks_cache_.findByIssuer(jwt_->iss_);
-  if (jwks_data_ == nullptr) {
+  if (jwt_->iss_.empty() || jwks_data_ == nullptr) {
     doneWithStatus(Status::JwtUnknownIssuer);
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.format, PatchFormat::Mbox);
        assert!(!signals.is_empty());
        assert_eq!(signals.len(), 2, "{:?}", signals);
        assert!(signals[0].contains(
            "Envoy's source tree: source/extensions/filters/http/jwt_authn/authenticator.cc."
        ));
        assert!(signals[1].contains("security@envoyproxy.io"));
    }

    #[test]
    fn envoy_paths_are_listed_at_most_three() {
        let mut diff = String::new();
        for name in ["a", "b", "c", "d", "e"] {
            diff.push_str(&format!(
                "diff --git a/source/common/http/{name}.cc b/source/common/http/{name}.cc\n\
                 --- a/source/common/http/{name}.cc\n\
                 +++ b/source/common/http/{name}.cc\n\
                 @@ -1 +1 @@\n\
                 -int x = 0;\n\
                 +int x = 1;\n"
            ));
        }
        let a = analyse(diff.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files.len(), 5);
        assert_eq!(signals.len(), 1);
        assert!(signals[0].contains(
            "source/common/http/a.cc, source/common/http/b.cc, source/common/http/c.cc and 2 more."
        ));
    }

    #[test]
    fn added_envoy_include_is_flagged() {
        // The blank context lines have lost their leading space, as mail clients leave them.
        let diff = r#"diff --git a/extensions/authz/filter.cc b/extensions/authz/filter.cc
index 11aa22b..33cc44d 100644
--- a/extensions/authz/filter.cc
+++ b/extensions/authz/filter.cc
@@ -14,6 +14,7 @@

 #include "extensions/authz/filter.h"

+#include "envoy/http/filter.h"
 #include "absl/strings/str_cat.h"

 namespace Extensions {
"#;
        let a = analyse(diff.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files, ["extensions/authz/filter.cc"]);
        assert_eq!(signals.len(), 1, "{:?}", signals);
        assert!(
            signals[0].contains("to extensions/authz/filter.cc: #include \"envoy/http/filter.h\".")
        );
    }

    #[test]
    fn commit_message_linking_envoy_is_flagged() {
        let text = mbox(&[
            r#"From 7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6b5a4 Mon Sep 17 00:00:00 2001
From: Jane Doe <jane.doe@example.com>
Date: Wed, 4 Mar 2026 08:01:00 +0000
Subject: [PATCH] tools: harden iptables redirect against header smuggling

Port of https://github.com/envoyproxy/envoy/pull/123 to our capture rules.

Signed-off-by: Jane Doe <jane.doe@example.com>
---
diff --git a/tools/istio-iptables/pkg/capture/run.go b/tools/istio-iptables/pkg/capture/run.go
index 1234567..89abcde 100644
--- a/tools/istio-iptables/pkg/capture/run.go
+++ b/tools/istio-iptables/pkg/capture/run.go
@@ -50,2 +50,3 @@ func (cfg *IptablesConfigurator) Run() error {
     cfg.handleInboundPortsInclude()
+    cfg.dropMalformedHeaders()
     cfg.handleOutboundIncludeRules()
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(signals.len(), 1, "{:?}", signals);
        assert!(signals[0].contains("in a commit message"));
        assert!(signals[0].contains("https://github.com/envoyproxy/envoy/pull/123"));
    }

    #[test]
    fn istio_code_that_names_envoy_is_not_flagged() {
        let text = mbox(&[
            r#"From 2468ace02468ace02468ace02468ace02468ace0 Mon Sep 17 00:00:00 2001
From: Sam Lee <12345+samlee@users.noreply.github.com>
Date: Thu, 5 Mar 2026 11:00:00 +0000
Subject: [PATCH] envoyfilter: do not apply patches across namespaces

An EnvoyFilter in one namespace could patch the Envoy listeners of
workloads in another. Scope the match to the filter's namespace.

Signed-off-by: Sam Lee <12345+samlee@users.noreply.github.com>
---
diff --git a/pilot/pkg/networking/core/envoyfilter/listener_patch.go b/pilot/pkg/networking/core/envoyfilter/listener_patch.go
index 0f1e2d3..4c5b6a7 100644
--- a/pilot/pkg/networking/core/envoyfilter/listener_patch.go
+++ b/pilot/pkg/networking/core/envoyfilter/listener_patch.go
@@ -17,3 +17,4 @@ package envoyfilter
 import (
     listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
+    "istio.io/istio/pkg/config/constants"
 )
diff --git a/pkg/envoy/proxy.go b/pkg/envoy/proxy.go
index 1111111..2222222 100644
--- a/pkg/envoy/proxy.go
+++ b/pkg/envoy/proxy.go
@@ -40,2 +40,3 @@ func (e *envoy) args() []string {
     // Envoy's own flags.
+    startupArgs = append(startupArgs, "--reject-unknown-dynamic-fields")
     return startupArgs
diff --git a/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml b/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
index 3333333..4444444 100644
--- a/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
+++ b/manifests/charts/istio-control/istio-discovery/files/envoy-bootstrap.yaml
@@ -1,2 +1,2 @@
-# Envoy bootstrap template
+# Envoy bootstrap template, rendered by the injector
 node:
"#,
        ]);
        let a = analyse(text.as_bytes()).unwrap();
        let signals = envoy_signals(&a);
        assert_eq!(a.files.len(), 3);
        assert_eq!(
            a.authors,
            ["Sam Lee <12345+samlee@users.noreply.github.com>"]
        );
        assert!(signals.is_empty(), "{:?}", signals);
    }
}
