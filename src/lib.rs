//! `edl` runs a project's security early-disclosure list: membership applications and their
//! review, and the embargoed distribution of patches ahead of Patch Tuesday.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod links;
pub mod mail;
pub mod membership;
pub mod openpgp;
pub mod releases;
pub mod startup;
pub mod telemetry;
pub mod templating;
pub mod web;
