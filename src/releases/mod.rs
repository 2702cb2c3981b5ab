//! Releases: the Patch Tuesday calendar and, around it, releases, patches and the rule that an
//! upstream's embargoed fixes (Envoy's) are never redistributed.

pub mod calendar;

/// Envoy's security policy, linked wherever Envoy's fixes are withheld. The same URL is seeded
/// into the `upstreams` table by the first migration.
pub const ENVOY_POLICY_URL: &str = "https://github.com/envoyproxy/envoy/security/policy";
