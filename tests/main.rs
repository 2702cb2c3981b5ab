//! The one integration-test binary. Every test that touches storage runs twice, on SQLite and
//! on PostgreSQL (`on_both_backends!`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a failed expectation is a failed test"
)]

mod helpers;

mod accounts;
mod admin_members;
mod advisory_formats;
mod api;
mod api_docs;
mod api_validators;
mod authz;
mod browser;
mod cli;
mod docs;
mod envoy_guard;
mod feed_validators;
mod member_keys;
mod member_page;
mod membership;
mod migrations;
mod openpgp;
mod openpgp_key;
mod outbox;
mod outbox_page;
mod passkeys;
mod releases;
mod second_factor;
mod smtp_stall;
mod times;
mod web;
mod wording;
