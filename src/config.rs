//! Typed settings. Each key has a built-in default, may be set in an optional `edl.toml`, and
//! may be overridden by an `EDL_*` environment variable, in that order. A value that does not
//! parse stops start-up with an error that names the key, the value and what is wrong with it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::NaiveTime;
use chrono_tz::Tz;
use lettre::message::Mailbox;
use lettre::Address;
use url::Url;

use crate::domain::alias::AliasError;
use crate::domain::{OrgDomain, SecurityAlias};

/// A value that must not appear in logs or in `check-config` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it (a connection, a key derivation).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([masked])")
    }
}

/// `development` is forgiving (mail to files, a generated key); `production` insists on the
/// settings a real list needs and refuses to start without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Development,
    Production,
}

/// Where the data lives. The scheme of `EDL_DATABASE_URL` picks the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(Secret),
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            let parsed =
                Url::parse(value).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
            if parsed.host_str().is_none_or(str::is_empty) && !value.contains("host=") {
                return Err(
                    "a PostgreSQL URL needs a host, e.g. postgres://user@localhost/edl".into(),
                );
            }
            return Ok(Self::Postgres(Secret::new(value)));
        }
        let path = value
            .strip_prefix("sqlite://")
            .or_else(|| value.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                let scheme = value.split_once(':').map_or(value, |(s, _)| s);
                format!(
                    "unsupported database {scheme:?}: use sqlite://PATH (embedded) or postgres://USER@HOST/DB"
                )
            })?;
        if path.is_empty() {
            return Err("an SQLite URL needs a file path, e.g. sqlite://edl.sqlite3".into());
        }
        if path.contains(":memory:") {
            return Err("an in-memory SQLite database would be lost at exit and is not shared by the connection pool; give a file path".into());
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgresql",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The URL with any password replaced, for logs and `check-config`.
    pub fn masked(&self) -> String {
        match self {
            Self::Postgres(url) => mask_url_password(url.expose()),
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

/// How the outbox workers pace themselves.
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub workers: u32,
    pub poll_interval: Duration,
    pub lease: Duration,
    pub batch_size: u32,
    pub max_attempts: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Mode,
    pub database_url: DatabaseUrl,
    pub database_pool_size: u32,
    pub bind: SocketAddr,
    pub base_url: Url,
    pub list_name: String,
    pub project_name: String,
    pub smtp_url: Option<Secret>,
    pub smtp_timeout: Duration,
    pub mail_dir: PathBuf,
    pub mail_from: Mailbox,
    /// Where leaks are reported: every page and mail that says where names this address.
    pub security_contact: SecurityContact,
    pub templates_dir: Option<PathBuf>,
    pub timezone: Tz,
    pub lead_days: u32,
    pub disclosure_time: NaiveTime,
    pub release_time: NaiveTime,
    pub approvals_required: u32,
    pub secret_key: Option<Secret>,
    pub scheduler_interval: Duration,
    pub outbox: OutboxSettings,
    pub data_dir: PathBuf,
    pub security: SecuritySettings,
    pub membership: MembershipSettings,
    /// The list's armored OpenPGP secret key; unset, one is generated into `data_dir`.
    pub openpgp_key_file: Option<PathBuf>,
    pub openpgp_key_passphrase: Option<Secret>,
    /// Whether embargoed mail must be, may be, or is not encrypted to each member.
    pub encryption: Encryption,
}

/// The address members and applicants are told to report a leak to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityContact {
    /// `EDL_SECURITY_CONTACT`: a mailbox the people who handle leaks read.
    Configured(SecurityAlias),
    /// Development without `EDL_SECURITY_CONTACT`: the address of `EDL_MAIL_FROM`, which is
    /// often a sending-only address; production refuses to start this way.
    SendingAddress(Address),
}

impl SecurityContact {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Configured(alias) => alias.as_str(),
            Self::SendingAddress(address) => address.as_ref(),
        }
    }
}

impl fmt::Display for SecurityContact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::text_enum! {
    /// Whether embargoed mail is encrypted to each member's key.
    pub enum Encryption ("encryption setting") {
        /// Only encrypted: a member without a usable key gets a notice instead of the content.
        Required = "required",
        /// Encrypted when the member's key is usable, in clear otherwise.
        WhenKey = "when-key",
        /// Never encrypted (every mail is still signed).
        Off = "off",
    }
}

/// How applications are judged and decided (`approvals_required` is a top-level setting).
#[derive(Debug, Clone)]
pub struct MembershipSettings {
    pub rejections_required: u32,
    /// Whether an approver's final approval is needed after the reviewers' quorum.
    pub final_approval: bool,
    pub voucher_required: bool,
    pub max_days_to_fix: u32,
    pub required_checks: Vec<String>,
    pub review_reminder_days: u32,
    /// How long an application that was never confirmed is kept after it closed, before it
    /// is deleted.
    pub unconfirmed_retention: Duration,
    pub policy_file: Option<PathBuf>,
}

/// A number of events allowed per period, e.g. `10/1m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: u32,
    pub per: Duration,
}

impl RateLimit {
    pub fn parse(value: &str) -> Result<Self, String> {
        let bad = || format!("must be COUNT/DURATION such as 10/1m (got {value:?})");
        let (count, per) = value.trim().split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err("the count must be at least 1".into());
        }
        Ok(Self {
            count,
            per: parse_duration(per)?,
        })
    }
}

/// Sessions, sign-in lockout and request limits.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    pub session_idle_timeout: Duration,
    pub session_max_age: Duration,
    pub lockout_threshold: u32,
    pub lockout_window: Duration,
    pub login_rate_limit: RateLimit,
    pub public_post_rate_limit: RateLimit,
    /// Requests per API token.
    pub api_rate_limit: RateLimit,
    pub trust_forwarded_for: bool,
    /// Roles whose accounts must have a second factor before doing anything else.
    pub require_2fa: Vec<crate::accounts::Role>,
    /// How long a proven second factor covers the sensitive actions (step-up).
    pub step_up_window: Duration,
}

/// Where an effective value came from, shown by `check-config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Environment,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::File => "edl.toml",
            Self::Environment => "environment",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    /// `setting` names the key as it was given: `EDL_TIMEZONE`, or `timezone in edl.toml`.
    #[error("invalid setting {setting} = {value:?}: {reason}")]
    Invalid {
        setting: String,
        value: String,
        reason: String,
    },
    #[error("{0}")]
    Production(String),
}

/// One documented key: its name in `edl.toml`, its default, and whether it is a secret.
pub struct Key {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub secret: bool,
    pub help: &'static str,
}

impl Key {
    pub fn env_name(&self) -> String {
        format!("EDL_{}", self.name.to_ascii_uppercase())
    }
}

const fn key(name: &'static str, default: Option<&'static str>, help: &'static str) -> Key {
    Key {
        name,
        default,
        secret: false,
        help,
    }
}

const fn secret(name: &'static str, help: &'static str) -> Key {
    Key {
        name,
        default: None,
        secret: true,
        help,
    }
}

/// Every setting the service reads. `docs/CONFIGURATION.md` describes each at length.
pub const KEYS: &[Key] = &[
    key("mode", Some("development"), "development or production"),
    key(
        "database_url",
        Some("sqlite://edl.sqlite3"),
        "sqlite://PATH or postgres://USER@HOST/DB",
    ),
    key("database_pool_size", Some("10"), "connections in the pool"),
    key(
        "bind",
        Some("127.0.0.1:8080"),
        "address and port to listen on",
    ),
    key(
        "base_url",
        None,
        "public URL used in links; default http://BIND",
    ),
    key(
        "list_name",
        Some("Security early-disclosure list"),
        "name shown on pages and in mail",
    ),
    key(
        "project_name",
        Some("the project"),
        "the project whose releases the list carries",
    ),
    secret("smtp_url", "smtp://, smtps:// URL; unset writes .eml files"),
    key(
        "smtp_timeout",
        Some("30s"),
        "deadline for one message's whole SMTP exchange",
    ),
    key(
        "mail_dir",
        Some("./mail-out"),
        "folder for .eml files when no SMTP is set",
    ),
    key(
        "mail_from",
        Some("Early Disclosure List <edl@localhost>"),
        "From: of every mail",
    ),
    key(
        "security_contact",
        None,
        "address leaks are reported to; required in production, else EDL_MAIL_FROM's",
    ),
    key(
        "templates_dir",
        None,
        "folder whose email templates override the built-in ones",
    ),
    key(
        "timezone",
        Some("UTC"),
        "IANA time zone of the list's calendar",
    ),
    key(
        "lead_days",
        Some("14"),
        "days between early disclosure and Patch Tuesday",
    ),
    key(
        "disclosure_time",
        Some("16:00"),
        "local time of day of the early-disclosure mailing",
    ),
    key(
        "release_time",
        Some("16:00"),
        "local time of day of a Patch Tuesday release",
    ),
    key(
        "approvals_required",
        Some("2"),
        "reviewer approvals that recommend an application",
    ),
    secret(
        "secret_key",
        "key for signed cookies and links; at least 32 bytes",
    ),
    key(
        "scheduler_interval",
        Some("60s"),
        "how often the scheduler looks for due work",
    ),
    key(
        "outbox_workers",
        Some("2"),
        "mail workers inside edl serve / edl worker",
    ),
    key(
        "outbox_poll_interval",
        Some("2s"),
        "how often an idle worker looks for due mail",
    ),
    key(
        "outbox_lease",
        Some("5m"),
        "how long a claimed message is reserved for its worker",
    ),
    key(
        "outbox_batch_size",
        Some("20"),
        "messages a worker claims at once",
    ),
    key(
        "outbox_max_attempts",
        Some("10"),
        "attempts before a message is marked failed",
    ),
    key(
        "outbox_retry_base",
        Some("30s"),
        "first retry delay, doubled each attempt",
    ),
    key("outbox_retry_max", Some("1h"), "longest retry delay"),
    key(
        "data_dir",
        Some("."),
        "folder for generated state such as the development secret key",
    ),
    key(
        "openpgp_key_file",
        None,
        "the list's armored OpenPGP secret key; unset, one is generated in DATA_DIR/openpgp",
    ),
    secret(
        "openpgp_key_passphrase",
        "passphrase of EDL_OPENPGP_KEY_FILE, if it has one",
    ),
    key(
        "encryption",
        Some("required"),
        "embargoed mail: required, when-key or off",
    ),
    key(
        "session_idle_timeout",
        Some("30m"),
        "a session ends after this long without a request",
    ),
    key(
        "session_max_age",
        Some("12h"),
        "a session ends this long after sign-in, whatever happens",
    ),
    key(
        "login_lockout_threshold",
        Some("5"),
        "failed sign-ins that lock an email address",
    ),
    key(
        "login_lockout_window",
        Some("15m"),
        "window for counting failures, and lock duration",
    ),
    key(
        "login_rate_limit",
        Some("20/1m"),
        "sign-in attempts per client IP",
    ),
    key(
        "public_post_rate_limit",
        Some("30/10m"),
        "public form submissions per client IP",
    ),
    key("api_rate_limit", Some("600/1m"), "API requests per token"),
    key(
        "require_2fa",
        None,
        "roles that must have a second factor; unset: release-manager,admin,approver in production, none in development",
    ),
    key(
        "step_up_window",
        Some("5m"),
        "approvals, role and key changes ask for the second factor again after this",
    ),
    key(
        "trust_forwarded_for",
        Some("false"),
        "take the client IP from X-Forwarded-For (behind a proxy)",
    ),
    key(
        "rejections_required",
        Some("2"),
        "reviewer rejections that reject an application",
    ),
    key(
        "final_approval",
        Some("true"),
        "an approver must confirm after the reviewers' quorum",
    ),
    key(
        "voucher_required",
        Some("false"),
        "applications must name a current member as voucher",
    ),
    key(
        "max_days_to_fix",
        Some("21"),
        "longest time to ship a fix an applicant may state",
    ),
    key(
        "required_checks",
        None,
        "comma-separated automatic checks that must pass; default Istio's",
    ),
    key(
        "review_reminder_days",
        Some("7"),
        "remind reviewers after an application waits this long",
    ),
    key(
        "unconfirmed_retention",
        Some("30d"),
        "how long a closed application whose alias was never confirmed is kept",
    ),
    key(
        "policy_file",
        None,
        "Markdown embargo policy replacing the built-in one; first line 'Version: N'",
    ),
];

/// Variables with the `EDL_` prefix that are not settings but are still expected.
const OTHER_VARIABLES: &[&str] = &["EDL_CONFIG", "EDL_LOG", "EDL_TEST_DATABASE_URL"];

/// The merged raw values, before parsing: what `check-config` shows alongside the typed result.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Source)>,
    /// `EDL_*` variables that name no setting, most likely typos.
    pub unknown_variables: Vec<String>,
}

impl RawSettings {
    /// Defaults, then the file (if any), then the environment.
    pub fn collect(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut raw = Self::default();
        for k in KEYS {
            if let Some(default) = k.default {
                raw.values
                    .insert(k.name, (default.to_owned(), Source::Default));
            }
        }
        if let Some(path) = file {
            raw.apply_file(path)?;
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("EDL_") else {
                continue;
            };
            match KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(rest)) {
                Some(k) => {
                    raw.values.insert(k.name, (value, Source::Environment));
                }
                None if OTHER_VARIABLES.contains(&name.as_str()) => {}
                None => raw.unknown_variables.push(name),
            }
        }
        Ok(raw)
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |reason: String| ConfigError::File {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.message().to_owned()))?;
        for (name, value) in table {
            let Some(k) = KEYS.iter().find(|k| k.name == name) else {
                return Err(file_error(format!("unknown key {name:?}")));
            };
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(file_error(format!(
                        "{name} must be a string or a number, not a {}",
                        other.type_str()
                    )))
                }
            };
            self.values.insert(k.name, (text, Source::File));
        }
        Ok(())
    }

    fn get(&self, name: &str) -> Option<(&str, Source)> {
        self.values.get(name).map(|(v, s)| (v.as_str(), *s))
    }

    /// Each key with its effective value (secrets masked) and where it came from.
    pub fn describe(&self, settings: &Settings) -> Vec<(String, String, String)> {
        KEYS.iter()
            .map(|k| {
                let (value, source) = match self.get(k.name) {
                    Some((v, s)) => (v.to_owned(), s.to_string()),
                    None => (String::new(), "unset".to_owned()),
                };
                let shown = match k.name {
                    "database_url" => settings.database_url.masked(),
                    "smtp_url" if !value.is_empty() => mask_url_password(&value),
                    "base_url" => settings.base_url.to_string(),
                    "security_contact" if value.is_empty() => format!(
                        "{} (the address of EDL_MAIL_FROM)",
                        settings.security_contact
                    ),
                    _ if k.secret && !value.is_empty() => "******** (set)".to_owned(),
                    _ => value,
                };
                (k.env_name(), shown, source)
            })
            .collect()
    }

    fn parse<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((value, source)) = self.get(name) else {
            return Ok(None);
        };
        parse(value).map(Some).map_err(|reason| {
            let spec = KEYS.iter().find(|k| k.name == name);
            let secret = spec.is_some_and(|k| k.secret);
            ConfigError::Invalid {
                setting: setting_label(name, source),
                value: if secret {
                    "********".to_owned()
                } else if URL_KEYS.contains(&name) {
                    mask_url_password(value)
                } else {
                    value.to_owned()
                },
                reason,
            }
        })
    }

    fn required<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        self.parse(name, parse)?
            .ok_or_else(|| ConfigError::Invalid {
                setting: setting_label(name, Source::Environment),
                value: String::new(),
                reason: "a value is required".into(),
            })
    }

    /// The required checks: as configured, or Istio's; a required voucher makes its check
    /// required too.
    fn required_checks(&self) -> Result<Vec<String>, ConfigError> {
        let mut list = match self.parse("required_checks", parse_check_list)? {
            Some(list) => list,
            None => crate::membership::checks::DEFAULT_REQUIRED
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
        };
        if self.parse("voucher_required", parse_bool)? == Some(true)
            && !list.iter().any(|k| k == "voucher")
        {
            list.push("voucher".to_owned());
        }
        Ok(list)
    }

    /// Parse every key into [`Settings`], stopping at the first bad value.
    pub fn into_settings(&self) -> Result<Settings, ConfigError> {
        let mode = self.required("mode", |v| match v.trim() {
            "development" => Ok(Mode::Development),
            "production" => Ok(Mode::Production),
            _ => Err("must be \"development\" or \"production\"".into()),
        })?;
        let bind: SocketAddr = self.required("bind", |v| {
            v.trim()
                .parse()
                .map_err(|_| "must be an IP address and port, e.g. 127.0.0.1:8080".into())
        })?;
        let base_url = match self.parse("base_url", parse_base_url)? {
            Some(url) => url,
            None => parse_base_url(&format!("http://{bind}")).map_err(ConfigError::Production)?,
        };
        let outbox = OutboxSettings {
            workers: self.required("outbox_workers", |v| parse_int(v, 0, 64))?,
            poll_interval: self.required("outbox_poll_interval", parse_duration)?,
            lease: self.required("outbox_lease", parse_duration)?,
            batch_size: self.required("outbox_batch_size", |v| parse_int(v, 1, 1000))?,
            max_attempts: self.required("outbox_max_attempts", |v| parse_int(v, 1, 100))?,
            retry_base: self.required("outbox_retry_base", parse_duration)?,
            retry_max: self.required("outbox_retry_max", parse_duration)?,
        };
        let mail_from: Mailbox = self.required("mail_from", |v| {
            v.trim()
                .parse::<Mailbox>()
                .map_err(|e| format!("must be an address like \"List <edl@example.org>\" ({e})"))
        })?;
        let security_contact = match self.parse("security_contact", parse_security_contact)? {
            Some(alias) => SecurityContact::Configured(alias),
            None => SecurityContact::SendingAddress(mail_from.email.clone()),
        };
        let settings = Settings {
            mode,
            database_url: self.required("database_url", DatabaseUrl::parse)?,
            database_pool_size: self.required("database_pool_size", |v| parse_int(v, 1, 500))?,
            bind,
            base_url,
            list_name: self.required("list_name", non_empty)?,
            project_name: self.required("project_name", non_empty)?,
            smtp_url: self.parse("smtp_url", parse_smtp_url)?,
            smtp_timeout: self.required("smtp_timeout", parse_duration)?,
            mail_dir: self.required("mail_dir", |v| non_empty(v).map(PathBuf::from))?,
            mail_from,
            security_contact,
            templates_dir: self.parse("templates_dir", |v| {
                let path = PathBuf::from(v.trim());
                if path.is_dir() {
                    Ok(path)
                } else {
                    Err("is not a folder that exists".into())
                }
            })?,
            timezone: self.required("timezone", |v| {
                v.trim().parse::<Tz>().map_err(|_| {
                    "is not an IANA time zone name (for example \"UTC\" or \"Europe/Berlin\")"
                        .into()
                })
            })?,
            lead_days: self.required("lead_days", |v| parse_int(v, 1, 60))?,
            disclosure_time: self.required("disclosure_time", parse_time)?,
            release_time: self.required("release_time", parse_time)?,
            approvals_required: self.required("approvals_required", |v| parse_int(v, 1, 50))?,
            secret_key: self.parse("secret_key", |v| {
                if v.len() < 32 {
                    Err("must be at least 32 bytes long (e.g. 64 random hex digits)".into())
                } else {
                    Ok(Secret::new(v))
                }
            })?,
            scheduler_interval: self.required("scheduler_interval", parse_duration)?,
            outbox,
            data_dir: self.required("data_dir", |v| non_empty(v).map(PathBuf::from))?,
            openpgp_key_file: self.parse("openpgp_key_file", |v| {
                let path = PathBuf::from(v.trim());
                if path.is_file() {
                    Ok(path)
                } else {
                    Err("is not a file that exists".into())
                }
            })?,
            openpgp_key_passphrase: self.parse("openpgp_key_passphrase", |v| Ok(Secret::new(v)))?,
            encryption: self.required("encryption", |v| {
                v.trim()
                    .parse::<Encryption>()
                    .map_err(|_| "must be \"required\", \"when-key\" or \"off\"".to_owned())
            })?,
            membership: MembershipSettings {
                rejections_required: self
                    .required("rejections_required", |v| parse_int(v, 1, 50))?,
                final_approval: self.required("final_approval", parse_bool)?,
                voucher_required: self.required("voucher_required", parse_bool)?,
                max_days_to_fix: self.required("max_days_to_fix", |v| parse_int(v, 1, 365))?,
                required_checks: self.required_checks()?,
                review_reminder_days: self
                    .required("review_reminder_days", |v| parse_int(v, 1, 365))?,
                unconfirmed_retention: self.required("unconfirmed_retention", parse_duration)?,
                policy_file: self.parse("policy_file", |v| {
                    let path = PathBuf::from(v.trim());
                    if path.is_file() {
                        Ok(path)
                    } else {
                        Err("is not a file that exists".into())
                    }
                })?,
            },
            security: SecuritySettings {
                session_idle_timeout: self.required("session_idle_timeout", parse_duration)?,
                session_max_age: self.required("session_max_age", parse_duration)?,
                lockout_threshold: self
                    .required("login_lockout_threshold", |v| parse_int(v, 1, 100))?,
                lockout_window: self.required("login_lockout_window", parse_duration)?,
                login_rate_limit: self.required("login_rate_limit", RateLimit::parse)?,
                public_post_rate_limit: self
                    .required("public_post_rate_limit", RateLimit::parse)?,
                api_rate_limit: self.required("api_rate_limit", RateLimit::parse)?,
                trust_forwarded_for: self.required("trust_forwarded_for", parse_bool)?,
                require_2fa: match self.parse("require_2fa", parse_role_list)? {
                    Some(roles) => roles,
                    None if mode == Mode::Production => vec![
                        crate::accounts::Role::Approver,
                        crate::accounts::Role::ReleaseManager,
                        crate::accounts::Role::Admin,
                    ],
                    None => Vec::new(),
                },
                step_up_window: self.required("step_up_window", parse_duration)?,
            },
        };
        settings.check_production()?;
        settings.check_lease()?;
        Ok(settings)
    }
}

/// The process environment as text. Variables that are not the service's may hold anything
/// (a non-UTF-8 value elsewhere must not stop every command); an `EDL_` variable whose value
/// is not UTF-8 is an error that names it.
fn environment(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in vars {
        let Ok(name) = name.into_string() else {
            continue;
        };
        match value.into_string() {
            Ok(value) => out.push((name, value)),
            Err(value) if name.starts_with("EDL_") => {
                return Err(ConfigError::Invalid {
                    setting: name,
                    value: value.to_string_lossy().into_owned(),
                    reason: "is not valid UTF-8 text".to_owned(),
                })
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

impl Settings {
    /// Settings from `edl.toml` (the given file, or `./edl.toml` when present) and the process
    /// environment.
    pub fn load(config_file: Option<&Path>) -> Result<(Self, RawSettings), ConfigError> {
        let default_file = Path::new("edl.toml");
        let file = match config_file {
            Some(path) => Some(path),
            None if default_file.is_file() => Some(default_file),
            None => None,
        };
        let raw = RawSettings::collect(file, environment(std::env::vars_os())?)?;
        let settings = raw.into_settings()?;
        Ok((settings, raw))
    }

    /// Settings from defaults and the given variables only: for tests and tools.
    pub fn from_vars<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ConfigError> {
        RawSettings::collect(
            None,
            vars.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())),
        )?
        .into_settings()
    }

    /// A worker renews a message's lease just before sending it; if the lease could end during
    /// the SMTP exchange, another worker could claim the message and send it a second time.
    fn check_lease(&self) -> Result<(), ConfigError> {
        let lease = self.outbox.lease;
        if lease < self.smtp_timeout * 2 {
            return Err(ConfigError::Invalid {
                setting: "EDL_OUTBOX_LEASE".to_owned(),
                value: format!("{}s", lease.as_secs_f64()),
                reason: format!(
                    "must be at least twice EDL_SMTP_TIMEOUT ({}s): a lease that ends while a message is being sent lets another worker send it again",
                    self.smtp_timeout.as_secs_f64()
                ),
            });
        }
        Ok(())
    }

    fn check_production(&self) -> Result<(), ConfigError> {
        if self.mode != Mode::Production {
            return Ok(());
        }
        let mut missing = Vec::new();
        if self.smtp_url.is_none() {
            missing.push("EDL_SMTP_URL (production mail goes over SMTP)");
        }
        if self.secret_key.is_none() {
            missing.push("EDL_SECRET_KEY");
        }
        if self.base_url.scheme() != "https" {
            missing.push("EDL_BASE_URL with https:// (links in mail and Secure cookies)");
        }
        if self.openpgp_key_file.is_none() {
            missing
                .push("EDL_OPENPGP_KEY_FILE (the list's signing key, kept and backed up by you)");
        }
        if matches!(self.security_contact, SecurityContact::SendingAddress(_)) {
            missing.push(
                "EDL_SECURITY_CONTACT (the address leaks are reported to, read by the people who handle them)",
            );
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Production(format!(
                "production mode needs {}",
                missing.join(", ")
            )))
        }
    }

    /// The calendar these settings describe.
    pub fn calendar(&self) -> crate::releases::calendar::Calendar {
        crate::releases::calendar::Calendar {
            timezone: self.timezone,
            lead_days: self.lead_days,
            disclosure_time: self.disclosure_time,
            release_time: self.release_time,
        }
    }
}

fn setting_label(name: &str, source: Source) -> String {
    let env = format!("EDL_{}", name.to_ascii_uppercase());
    match source {
        Source::Environment => env,
        Source::File => format!("{name} in edl.toml"),
        Source::Default => format!("{env} (built-in default)"),
    }
}

fn non_empty(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(v.to_owned())
    }
}

fn parse_check_list(v: &str) -> Result<Vec<String>, String> {
    let known: Vec<&str> = crate::membership::checks::ALL_CHECKS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    let mut out = Vec::new();
    for key in v.split(',').map(str::trim).filter(|k| !k.is_empty()) {
        if !known.contains(&key) {
            return Err(format!(
                "{key:?} is not a check; the checks are {}",
                known.join(", ")
            ));
        }
        out.push(key.to_owned());
    }
    Ok(out)
}

/// A plain address (no display name) on a real domain: people copy it into a mail by hand.
fn parse_security_contact(v: &str) -> Result<SecurityAlias, String> {
    let alias = SecurityAlias::parse(v).map_err(|e| match e {
        AliasError::Empty => "must not be empty (unset it instead)".to_owned(),
        other => format!("{other}; give a plain address such as security@example.org"),
    })?;
    OrgDomain::parse(alias.domain()).map_err(|_| {
        format!(
            "{} is not a domain name such as example.org; give an address people can write to",
            alias.domain()
        )
    })?;
    Ok(alias)
}

/// Roles separated by commas; `none` (or nothing) for no role.
fn parse_role_list(v: &str) -> Result<Vec<crate::accounts::Role>, String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut roles = v
        .split(',')
        .map(|r| r.trim().parse::<crate::accounts::Role>())
        .collect::<Result<Vec<_>, _>>()?;
    roles.sort();
    roles.dedup();
    Ok(roles)
}

fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err("must be true or false".into()),
    }
}

fn parse_int(v: &str, min: u32, max: u32) -> Result<u32, String> {
    match v.trim().parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {min} to {max}")),
    }
}

fn parse_base_url(v: &str) -> Result<Url, String> {
    let url = Url::parse(v.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(url)
}

fn parse_smtp_url(v: &str) -> Result<Secret, String> {
    let url = Url::parse(v.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
        return Err("must be smtp://HOST[:PORT] or smtps://HOST[:PORT], optionally with user:password@ and ?tls=required|opportunistic".into());
    }
    Ok(Secret::new(v.trim()))
}

/// "HH:MM" on a 24-hour clock.
pub fn parse_time(v: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(v.trim(), "%H:%M")
        .map_err(|_| "must be a time of day as HH:MM, e.g. 16:00".into())
}

/// "250ms", "30s", "5m", "1h", "2d", or a bare number of seconds.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let bad = || format!("must be a duration such as 30s, 5m or 1h (got {v:?})");
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (digits, unit) = v.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86_400),
        _ => return Err(bad()),
    };
    if duration.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(duration)
}

/// Keys whose values are URLs that may carry a password.
const URL_KEYS: &[&str] = &["database_url", "smtp_url"];

/// `scheme://user:password@host` becomes `scheme://user:********@host`. A value that does not
/// parse as a URL has everything between `://` and the last `@` hidden, since it may still
/// hold a password.
pub fn mask_url_password(value: &str) -> String {
    match Url::parse(value) {
        Ok(mut url) if url.password().is_some() => {
            // Setting a password only fails for URLs that cannot have one, which this has.
            let _ = url.set_password(Some("********"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => match (value.find("://"), value.rfind('@')) {
            (Some(start), Some(at)) if at > start => {
                format!("{}********{}", &value[..start + 3], &value[at..])
            }
            _ => value.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_shorter_than_two_smtp_deadlines_is_refused() {
        let error = Settings::from_vars([("EDL_OUTBOX_LEASE", "50s"), ("EDL_SMTP_TIMEOUT", "30s")])
            .expect_err("refused");
        assert!(
            error.to_string().starts_with(
                "invalid setting EDL_OUTBOX_LEASE = \"50s\": must be at least twice EDL_SMTP_TIMEOUT (30s)"
            ),
            "{error}"
        );
        assert!(
            Settings::from_vars([("EDL_OUTBOX_LEASE", "60s"), ("EDL_SMTP_TIMEOUT", "30s")]).is_ok()
        );
        // The defaults hold.
        assert!(Settings::from_vars([]).is_ok());
    }

    #[test]
    fn a_non_utf8_variable_is_an_error_only_when_it_is_the_services() {
        use std::os::unix::ffi::OsStringExt;
        let bad = || std::ffi::OsString::from_vec(vec![b'x', 0xff, b'y']);
        let others = environment([
            ("LESSCHARSET".into(), bad()),
            ("EDL_LIST_NAME".into(), "Lattice list".into()),
        ])
        .expect("another program's variable does not matter");
        assert_eq!(
            others,
            vec![("EDL_LIST_NAME".to_owned(), "Lattice list".to_owned())]
        );
        let error = environment([("EDL_LIST_NAME".into(), bad())]).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "invalid setting EDL_LIST_NAME = \"x\u{fffd}y\": is not valid UTF-8 text"
        );
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_vars(vars.iter().copied())
    }

    #[test]
    fn defaults_need_no_configuration() {
        let s = settings(&[]).expect("defaults parse");
        assert_eq!(
            s.database_url,
            DatabaseUrl::Sqlite(PathBuf::from("edl.sqlite3"))
        );
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.base_url.as_str(), "http://127.0.0.1:8080/");
        assert_eq!(s.timezone, chrono_tz::UTC);
        assert_eq!(s.lead_days, 14);
        assert_eq!(s.approvals_required, 2);
        assert!(s.smtp_url.is_none());
        assert_eq!(s.mail_dir, PathBuf::from("./mail-out"));
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("edl.toml");
        std::fs::write(&file, "lead_days = 10\ntimezone = \"Europe/Berlin\"\n").expect("write");
        let raw = RawSettings::collect(Some(&file), [("EDL_LEAD_DAYS".to_owned(), "7".to_owned())])
            .expect("collect");
        let s = raw.into_settings().expect("parse");
        assert_eq!(s.lead_days, 7);
        assert_eq!(s.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(s.approvals_required, 2);
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = settings(&[("EDL_TIMEZONE", "Mars/Olympus")]).expect_err("bad zone");
        let text = err.to_string();
        assert!(
            text.contains("EDL_TIMEZONE") && text.contains("Mars/Olympus"),
            "{text}"
        );
        assert!(text.contains("IANA"), "{text}");

        let err = settings(&[("EDL_DATABASE_URL", "mysql://db/edl")]).expect_err("bad url");
        assert!(err.to_string().contains("EDL_DATABASE_URL"), "{err}");

        let err = settings(&[("EDL_LEAD_DAYS", "fourteen")]).expect_err("bad number");
        assert!(err.to_string().contains("from 1 to 60"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("edl.toml");
        std::fs::write(&file, "lead_dayz = 10\n").expect("write");
        let err = RawSettings::collect(Some(&file), []).expect_err("unknown key");
        assert!(err.to_string().contains("lead_dayz"), "{err}");
    }

    #[test]
    fn secrets_are_masked_in_errors_and_descriptions() {
        let err = settings(&[("EDL_SECRET_KEY", "short-but-secret")]).expect_err("too short");
        assert!(!err.to_string().contains("short-but-secret"), "{err}");

        let raw = RawSettings::collect(
            None,
            [
                (
                    "EDL_SMTP_URL".to_owned(),
                    "smtp://mailer:hunter2@mail.example.org:587".to_owned(),
                ),
                (
                    "EDL_DATABASE_URL".to_owned(),
                    "postgres://edl:pw123@db.example.org/edl".to_owned(),
                ),
                ("EDL_SECRET_KEY".to_owned(), "k".repeat(40)),
            ],
        )
        .expect("collect");
        let s = raw.into_settings().expect("parse");
        let shown = format!("{:?}", raw.describe(&s));
        assert!(
            !shown.contains("hunter2") && !shown.contains("pw123"),
            "{shown}"
        );
        assert!(!shown.contains(&"k".repeat(40)), "{shown}");
        assert!(
            shown.contains("mailer:********@mail.example.org"),
            "{shown}"
        );
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn a_malformed_url_does_not_echo_its_password() {
        let err = settings(&[("EDL_DATABASE_URL", "postgres://edl:pa ss@[bad/edl")])
            .expect_err("malformed");
        assert!(!err.to_string().contains("pa ss"), "{err}");
        let err = settings(&[("EDL_SMTP_URL", "ftp://u:topsecret@mail.example.org")])
            .expect_err("wrong scheme");
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn production_mode_requires_smtp_keys_and_https() {
        let err = settings(&[("EDL_MODE", "production")]).expect_err("incomplete");
        let text = err.to_string();
        assert!(
            text.contains("EDL_SMTP_URL")
                && text.contains("EDL_SECRET_KEY")
                && text.contains("EDL_OPENPGP_KEY_FILE"),
            "{text}"
        );
        let key = "x".repeat(64);
        let dir = tempfile::tempdir().expect("dir");
        let key_file = dir.path().join("list-key.asc");
        std::fs::write(&key_file, "a key").expect("file");
        let key_file = key_file.to_str().expect("path");
        let complete = [
            ("EDL_MODE", "production"),
            ("EDL_SMTP_URL", "smtps://mail.example.org"),
            ("EDL_SECRET_KEY", key.as_str()),
            ("EDL_BASE_URL", "https://edl.example.org"),
            ("EDL_SECURITY_CONTACT", "security@example.org"),
            ("EDL_OPENPGP_KEY_FILE", key_file),
        ];
        settings(&complete).expect("complete production settings");
        let without_key: Vec<_> = complete[..5].to_vec();
        let err = settings(&without_key).expect_err("no list key");
        assert!(err.to_string().contains("EDL_OPENPGP_KEY_FILE"), "{err}");
    }

    #[test]
    fn production_requires_a_second_factor_of_the_powerful_roles_unless_told_otherwise() {
        use crate::accounts::Role;
        let key = "x".repeat(64);
        let dir = tempfile::tempdir().expect("dir");
        let key_file = dir.path().join("list-key.asc");
        std::fs::write(&key_file, "a key").expect("file");
        let key_file = key_file.to_str().expect("path");
        let production = vec![
            ("EDL_MODE", "production"),
            ("EDL_SMTP_URL", "smtps://mail.example.org"),
            ("EDL_SECRET_KEY", key.as_str()),
            ("EDL_BASE_URL", "https://edl.example.org"),
            ("EDL_SECURITY_CONTACT", "security@example.org"),
            ("EDL_OPENPGP_KEY_FILE", key_file),
        ];
        let s = settings(&production).expect("production");
        assert_eq!(
            s.security.require_2fa,
            vec![Role::Approver, Role::ReleaseManager, Role::Admin]
        );
        let mut all = production.clone();
        all.push((
            "EDL_REQUIRE_2FA",
            "reviewer, admin,approver,release-manager",
        ));
        assert_eq!(
            settings(&all).expect("all").security.require_2fa,
            Role::ALL.to_vec()
        );
        let mut none = production.clone();
        none.push(("EDL_REQUIRE_2FA", "none"));
        assert!(settings(&none)
            .expect("none")
            .security
            .require_2fa
            .is_empty());
        let mut wrong = production;
        wrong.push(("EDL_REQUIRE_2FA", "admin,root"));
        let err = settings(&wrong).expect_err("not a role");
        assert!(err.to_string().contains("EDL_REQUIRE_2FA"), "{err}");
        assert!(settings(&[]).expect("dev").security.require_2fa.is_empty());
    }

    #[test]
    fn production_refuses_to_send_leak_reports_to_the_sending_address() {
        let key = "x".repeat(64);
        let dir = tempfile::tempdir().expect("dir");
        let key_file = dir.path().join("list-key.asc");
        std::fs::write(&key_file, "a key").expect("file");
        let key_file = key_file.to_str().expect("path");
        let without_contact = [
            ("EDL_MODE", "production"),
            ("EDL_SMTP_URL", "smtps://mail.example.org"),
            ("EDL_SECRET_KEY", key.as_str()),
            ("EDL_BASE_URL", "https://edl.example.org"),
            ("EDL_OPENPGP_KEY_FILE", key_file),
            ("EDL_MAIL_FROM", "Example EDL <edl@example.org>"),
        ];
        let err = settings(&without_contact).expect_err("no security contact");
        assert_eq!(
            err.to_string(),
            "production mode needs EDL_SECURITY_CONTACT (the address leaks are reported to, \
             read by the people who handle them)"
        );
        let mut with_contact = without_contact.to_vec();
        with_contact.push(("EDL_SECURITY_CONTACT", " Security@Example.ORG "));
        let s = settings(&with_contact).expect("complete");
        assert_eq!(s.security_contact.as_str(), "security@example.org");
        assert_eq!(s.mail_from.email.to_string(), "edl@example.org");
    }

    #[test]
    fn the_security_contact_falls_back_to_the_sending_address_in_development() {
        let s = settings(&[("EDL_MAIL_FROM", "Example EDL <edl@example.org>")]).expect("dev");
        assert_eq!(
            s.security_contact,
            SecurityContact::SendingAddress("edl@example.org".parse().expect("address"))
        );
        let s = settings(&[("EDL_SECURITY_CONTACT", "leaks@example.org")]).expect("dev");
        assert_eq!(s.security_contact.to_string(), "leaks@example.org");
    }

    #[test]
    fn a_security_contact_must_be_an_address_people_can_write_to() {
        for bad in [
            "security-at-example.org",
            "Security <security@example.org>",
            "security@localhost",
            "security@[127.0.0.1]",
            "",
        ] {
            let err = settings(&[("EDL_SECURITY_CONTACT", bad)]).expect_err(bad);
            assert!(
                err.to_string()
                    .starts_with("invalid setting EDL_SECURITY_CONTACT = "),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn check_config_shows_the_security_contact_and_its_fallback() {
        let raw = RawSettings::collect(None, []).expect("collect");
        let s = raw.into_settings().expect("parse");
        let row = raw
            .describe(&s)
            .into_iter()
            .find(|(name, _, _)| name == "EDL_SECURITY_CONTACT")
            .expect("a row");
        assert_eq!(row.1, "edl@localhost (the address of EDL_MAIL_FROM)");
        assert_eq!(row.2, "unset");
        let raw = RawSettings::collect(
            None,
            [(
                "EDL_SECURITY_CONTACT".to_owned(),
                "leaks@example.org".to_owned(),
            )],
        )
        .expect("collect");
        let s = raw.into_settings().expect("parse");
        let row = raw
            .describe(&s)
            .into_iter()
            .find(|(name, _, _)| name == "EDL_SECURITY_CONTACT")
            .expect("a row");
        assert_eq!(
            (row.1.as_str(), row.2.as_str()),
            ("leaks@example.org", "environment")
        );
    }

    #[test]
    fn encryption_is_required_unless_said_otherwise() {
        assert_eq!(
            settings(&[]).expect("defaults").encryption,
            Encryption::Required
        );
        for (value, expected) in [
            ("when-key", Encryption::WhenKey),
            ("off", Encryption::Off),
            ("required", Encryption::Required),
        ] {
            assert_eq!(
                settings(&[("EDL_ENCRYPTION", value)])
                    .expect("valid")
                    .encryption,
                expected
            );
        }
        let err = settings(&[("EDL_ENCRYPTION", "sometimes")]).expect_err("invalid");
        assert!(err.to_string().contains("EDL_ENCRYPTION"), "{err}");
    }

    #[test]
    fn rate_limits_parse() {
        assert_eq!(
            RateLimit::parse("10/1m"),
            Ok(RateLimit {
                count: 10,
                per: Duration::from_secs(60)
            })
        );
        assert!(RateLimit::parse("0/1m").is_err());
        assert!(RateLimit::parse("ten per minute").is_err());
        let err = settings(&[("EDL_LOGIN_RATE_LIMIT", "lots")]).expect_err("bad");
        assert!(err.to_string().contains("EDL_LOGIN_RATE_LIMIT"), "{err}");
    }

    #[test]
    fn durations_and_times_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(
            parse_time("09:30").map(|t| t.to_string()),
            Ok("09:30:00".to_owned())
        );
        assert!(parse_time("25:00").is_err());
    }

    #[test]
    fn unknown_variables_are_reported() {
        let raw = RawSettings::collect(
            None,
            [
                ("EDL_DATABSE_URL".to_owned(), "x".to_owned()),
                ("EDL_LOG".to_owned(), "debug".to_owned()),
                ("PATH".to_owned(), "/bin".to_owned()),
            ],
        )
        .expect("collect");
        assert_eq!(raw.unknown_variables, vec!["EDL_DATABSE_URL".to_owned()]);
    }
}
