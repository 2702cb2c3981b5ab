//! The automatic membership checks: every criterion a machine can judge (POLICY.md, "What a
//! machine can check") becomes pass, fail or needs-review with a reason the applicant can act on.
//! Nothing here rejects an application; the reviewer sees the results as a scorecard.

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use crate::domain::alias::AliasError;
use crate::domain::org_domain::on_any;
use crate::domain::{OrgDomain, SecurityAlias};
use crate::openpgp::member_key;

crate::text_enum! {
    /// The result of one check.
    pub enum Outcome ("check outcome") {
        Pass = "pass",
        Fail = "fail",
        NeedsReview = "needs-review",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Stable id, e.g. "alias-not-free-mail"; stored with the application and named in config.
    pub key: &'static str,
    /// Short human title, e.g. "Alias is not on a free-mail domain".
    pub title: &'static str,
    pub outcome: Outcome,
    /// A sentence a person can act on: what was found and, on fail, what to fix.
    pub reason: String,
    /// Whether configuration makes this check required.
    pub required: bool,
}

/// What the applicant submitted (already trimmed; domains and alias lower-case).
pub struct CheckInput<'a> {
    pub org_domains: &'a [OrgDomain],
    /// The alias, parsed once; the four alias checks judge this.
    pub alias: Result<SecurityAlias, AliasError>,
    /// The alias as given, for the sentences that name it.
    pub alias_text: &'a str,
    pub rep_name: &'a str,
    pub website: &'a str,
    pub product_url: &'a str,
    pub track_record: &'a [String],
    pub community_links: &'a [String],
    pub voucher_alias: Option<&'a SecurityAlias>,
    pub days_to_fix: i32,
    /// ASCII-armored public key, if given.
    pub pgp_key: Option<&'a str>,
    /// 0 = not accepted.
    pub accepted_policy_version: i32,
    pub stages_privately: bool,
    pub contributes_back: bool,
    pub alias_confirmed: bool,
}

/// Facts from the database and configuration.
pub struct CheckContext<'a> {
    /// Org domains of current members (active or suspended).
    pub member_domains: &'a [OrgDomain],
    /// (alias, org_domain) of ACTIVE members.
    pub member_aliases: &'a [(SecurityAlias, OrgDomain)],
    pub current_policy_version: i32,
    pub max_days_to_fix: u32,
    pub voucher_required: bool,
    /// Keys of required checks.
    pub required: &'a [String],
    pub now: DateTime<Utc>,
}

/// Every check key with its title, in display order.
pub const ALL_CHECKS: &[(&str, &str)] = &[
    ("alias-syntax", "Alias is an email address"),
    ("alias-not-free-mail", "Alias is not on a free-mail domain"),
    ("alias-role-account", "Alias reaches a team, not one person"),
    (
        "alias-on-org-domain",
        "Alias is on the organisation's domain",
    ),
    (
        "evidence-on-org-site",
        "Evidence is on the organisation's own site",
    ),
    ("community-links", "Community links are usable"),
    ("not-already-member", "Organisation is not already a member"),
    ("voucher", "Vouched for by another member"),
    ("openpgp-key", "OpenPGP key is usable"),
    ("ship-window", "Can ship a fix within the window"),
    (
        "attestations",
        "Embargo policy accepted and attestations made",
    ),
    ("alias-confirmed", "Alias proved monitored by a round trip"),
];

/// Istio's criteria: the keys required when configuration says nothing else. The rest are
/// advisory: they inform the reviewer, who judges what a machine cannot.
pub const DEFAULT_REQUIRED: &[&str] = &[
    "alias-syntax",
    "alias-not-free-mail",
    "alias-on-org-domain",
    "not-already-member",
    "attestations",
    "alias-confirmed",
    "openpgp-key",
];

/// Runs every check, in ALL_CHECKS order.
pub fn run_all(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
    ALL_CHECKS
        .iter()
        .filter_map(|&(key, title)| {
            let (outcome, reason) = evaluate(key, input, ctx)?;
            Some(CheckResult {
                key,
                title,
                outcome,
                reason,
                required: ctx.required.iter().any(|r| r == key),
            })
        })
        .collect()
}

type Verdict = (Outcome, String);

fn pass(reason: impl Into<String>) -> Option<Verdict> {
    Some((Outcome::Pass, reason.into()))
}

fn fail(reason: impl Into<String>) -> Option<Verdict> {
    Some((Outcome::Fail, reason.into()))
}

fn review(reason: impl Into<String>) -> Option<Verdict> {
    Some((Outcome::NeedsReview, reason.into()))
}

/// One match over the keys keeps ALL_CHECKS the single source of order; `None` only for a key
/// with no check behind it, which a test rules out.
fn evaluate(key: &str, input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    match key {
        "alias-syntax" => alias_syntax(input),
        "alias-not-free-mail" => alias_not_free_mail(input),
        "alias-role-account" => alias_role_account(input),
        "alias-on-org-domain" => alias_on_org_domain(input),
        "evidence-on-org-site" => evidence_on_org_site(input),
        "community-links" => community_links(input),
        "not-already-member" => not_already_member(input, ctx),
        "voucher" => voucher(input, ctx),
        "openpgp-key" => openpgp_key(input, ctx),
        "ship-window" => ship_window(input, ctx),
        "attestations" => attestations(input, ctx),
        "alias-confirmed" => alias_confirmed(input),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Domains and host lists

const FREE_MAIL_DOMAINS: &str = include_str!("../../data/free-mail-domains.txt");
const DENIED_EVIDENCE_HOSTS: &str = include_str!("../../data/denied-evidence-hosts.txt");

fn normalise_host(host: &str) -> String {
    // A trailing dot is the same DNS name; without this "example.com." would dodge every list.
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Both arguments already normalised.
fn host_is_on(host: &str, domain: &str) -> bool {
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The entry of an embedded list (one host per line, `#` comments) that `host` is on, if any.
fn listed_host(host: &str, list: &'static str) -> Option<&'static str> {
    let host = normalise_host(host);
    list.lines()
        .map(|line| {
            line.split_once('#')
                .map_or(line, |(before, _)| before)
                .trim()
        })
        .filter(|entry| !entry.is_empty())
        .find(|entry| host_is_on(&host, entry))
}

fn domain_list(domains: &[OrgDomain]) -> String {
    if domains.is_empty() {
        "none given".to_owned()
    } else {
        domains
            .iter()
            .map(OrgDomain::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

// ---------------------------------------------------------------------------------------------
// The alias

/// For checks that need the alias's parts: they cannot judge a malformed alias, and say so
/// rather than repeating alias-syntax's advice in different words.
fn unparsed_alias(err: &AliasError) -> String {
    format!("This could not be checked because {err}; fix the security alias first.")
}

/// A domain the organisation itself owns, to suggest an alias on: the first organisation
/// domain given, else the website's host (without `www.`), never a free-mail provider or a
/// shared host such as a blog platform, where `security@` is nobody's team.
fn own_domain(input: &CheckInput<'_>) -> Option<String> {
    let usable = |domain: &str| {
        listed_host(domain, FREE_MAIL_DOMAINS).is_none()
            && listed_host(domain, DENIED_EVIDENCE_HOSTS).is_none()
    };
    let declared = input
        .org_domains
        .iter()
        .map(OrgDomain::as_str)
        .find(|d| usable(d))
        .map(str::to_owned);
    declared.or_else(|| {
        let url = Url::parse(input.website.trim()).ok()?;
        let url::Host::Domain(host) = url.host()? else {
            return None;
        };
        let host = normalise_host(host);
        let host = host.strip_prefix("www.").unwrap_or(&host);
        let domain = OrgDomain::parse(host).ok()?;
        usable(domain.as_str()).then(|| domain.as_str().to_owned())
    })
}

/// The team address to suggest for `addr`: `security@` on its own domain, unless that is a
/// free-mail provider (nobody's organisation owns gmail.com), then on the organisation's own
/// domain; `None` when the form names no domain of the organisation's.
fn team_alias_for(addr: &SecurityAlias, input: &CheckInput<'_>) -> Option<String> {
    if listed_host(addr.domain(), FREE_MAIL_DOMAINS).is_none() {
        return Some(format!("security@{}", addr.domain()));
    }
    own_domain(input).map(|domain| format!("security@{domain}"))
}

fn alias_syntax(input: &CheckInput<'_>) -> Option<Verdict> {
    match &input.alias {
        Ok(addr) => pass(format!("{addr} is a well-formed email address.")),
        Err(AliasError::Empty) => fail(
            "No security alias was given; enter the address of the team that handles security \
             reports, such as security@your-domain.",
        ),
        Err(err) => fail(format!(
            "The security alias is not usable: {err}; enter the address of the team that \
             handles security reports, such as security@your-domain."
        )),
    }
}

fn alias_not_free_mail(input: &CheckInput<'_>) -> Option<Verdict> {
    let addr = match &input.alias {
        Ok(addr) => addr,
        Err(err) => return fail(unparsed_alias(err)),
    };
    match listed_host(addr.domain(), FREE_MAIL_DOMAINS) {
        Some(provider) => fail(format!(
            "{addr} is on {provider}, a free-mail provider: a free-mail address cannot be an \
             organisation's monitored alias. Use an address on a domain the organisation \
             owns{}.",
            own_domain(input).map_or_else(String::new, |d| format!(", such as security@{d}"))
        )),
        None => pass(format!(
            "{} is not a known free-mail domain.",
            addr.domain()
        )),
    }
}

/// Local parts that name a function, not a person, beyond those ROLE_FRAGMENTS already catch.
const ROLE_NAMES: &[&str] = &[
    "secteam",
    "sirt",
    "distros",
    "disclosure",
    "appsec",
    "infosec",
    "incident-response",
];

/// Fragments that mark a role account wherever they appear ("security", "product-security",
/// "psirt-istio", "istio-vulns", "cert").
const ROLE_FRAGMENTS: &[&str] = &[
    "security", "psirt", "csirt", "cert", "vuln", "embargo", "secalert", "prodsec",
];

fn alias_role_account(input: &CheckInput<'_>) -> Option<Verdict> {
    let addr = match &input.alias {
        Ok(addr) => addr,
        Err(err) => return review(unparsed_alias(err)),
    };
    let user = addr.user().to_lowercase();
    // Sub-addressing ("security+edl@") still reaches the same mailbox.
    let local = user.split_once('+').map_or(user.as_str(), |(base, _)| base);

    // A person's name wins over a role word: "maria-security@" is still Maria's inbox.
    let suggestion = team_alias_for(addr, input);
    if let Some(found) = personal_match(local, input.rep_name) {
        let what = match &suggestion {
            Some(team) => format!("a role address such as {team} that several people read"),
            None => FREE_MAIL_NO_DOMAIN.to_owned(),
        };
        return review(format!(
            "{addr} looks like a personal address ({found}). An alias should reach a team, not \
             one person, so reports are not lost when someone is away or leaves; use {what}."
        ));
    }
    if ROLE_NAMES.contains(&local) || ROLE_FRAGMENTS.iter().any(|f| local.contains(f)) {
        return pass(format!("{addr} looks like a team address."));
    }
    let what = match &suggestion {
        Some(team) => format!("An address such as {team} makes this clear."),
        None => format!("Use {FREE_MAIL_NO_DOMAIN}."),
    };
    review(format!(
        "Could not tell whether {addr} is a team alias; a reviewer will ask who reads it. {what}"
    ))
}

/// Said instead of a suggested address when the alias is on free mail and the form names no
/// domain of the organisation's.
const FREE_MAIL_NO_DOMAIN: &str = "a role address, read by several people, on a domain the \
     organisation owns: a free-mail address is a mailbox at the provider, not an organisation's \
     alias";

/// Describes how `local` resembles the representative's name, if it does.
fn personal_match(local: &str, rep_name: &str) -> Option<String> {
    let rep_lower = rep_name.to_lowercase();
    let names: Vec<&str> = rep_lower
        .split(|c: char| !c.is_alphabetic())
        .filter(|n| !n.is_empty())
        .collect();
    let (first, last) = (names.first()?, names.last()?);

    if let Some(name) = names
        .iter()
        .find(|n| n.chars().count() >= 3 && local.contains(**n))
    {
        return Some(format!(
            "it contains \"{name}\" from the representative's name"
        ));
    }

    // Short names escape the substring test; compare the usual shapes instead, ignoring the
    // separator (first.last, first_last, firstlast are the same shape).
    let compact: String = local
        .chars()
        .filter(|c| !matches!(c, '.' | '_' | '-'))
        .collect();
    let initial = |s: &str| s.chars().next().map(String::from).unwrap_or_default();
    let shapes = [
        format!("{first}{last}"),
        format!("{}{last}", initial(first)),
        format!("{last}{first}"),
        format!("{last}{}", initial(first)),
        format!("{first}{}", initial(last)),
    ];
    shapes
        .contains(&compact)
        .then(|| "it is built from the representative's name".to_owned())
}

fn alias_on_org_domain(input: &CheckInput<'_>) -> Option<Verdict> {
    let addr = match &input.alias {
        Ok(addr) => addr,
        Err(err) => return fail(unparsed_alias(err)),
    };
    if input.org_domains.is_empty() {
        return fail(
            "No organisation domain was given, so the alias could not be matched to one; add \
             the domains the organisation owns.",
        );
    }
    if on_any(addr.domain(), input.org_domains) {
        pass(format!(
            "{addr} is on the organisation's domain ({}).",
            domain_list(input.org_domains)
        ))
    } else {
        fail(format!(
            "{} is not one of the organisation's domains ({}); use an alias on one of them, or \
             add the domain the alias is on if the organisation owns it.",
            addr.domain(),
            domain_list(input.org_domains)
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Links

/// The host of a usable link, or what is wrong with it.
fn check_link(link: &str) -> Result<String, String> {
    if link.is_empty() {
        return Err("it is empty".to_owned());
    }
    let url = Url::parse(link).map_err(|e| format!("it is not a valid URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!("it uses {}, not https", url.scheme()));
    }
    let host = url
        .host_str()
        .ok_or_else(|| "it has no host".to_owned())?
        .to_owned();
    if let Some(denied) = listed_host(&host, DENIED_EVIDENCE_HOSTS) {
        return Err(format!(
            "{denied} is a social-media, video, blog, file-sharing or login-walled host, which \
             the list does not accept"
        ));
    }
    Ok(host)
}

fn evidence_on_org_site(input: &CheckInput<'_>) -> Option<Verdict> {
    let links = [
        ("website", input.website),
        ("product page", input.product_url),
    ]
    .into_iter()
    .chain(
        input
            .track_record
            .iter()
            .map(|l| ("track-record link", l.as_str())),
    );

    let mut bad = Vec::new();
    let mut elsewhere = Vec::new();
    let mut count = 0;
    for (label, link) in links {
        count += 1;
        match check_link(link) {
            Err(why) if link.is_empty() => bad.push(format!("the {label} ({why})")),
            Err(why) => bad.push(format!("{label} {link} ({why})")),
            Ok(host) if !on_any(&host, input.org_domains) => {
                elsewhere.push(format!("{label} {link}"))
            }
            Ok(_) => {}
        }
    }

    let domains = domain_list(input.org_domains);
    if !bad.is_empty() {
        return fail(format!(
            "These links cannot be used as evidence: {}. Give https links to public pages on the \
             organisation's own site ({domains}).",
            bad.join("; ")
        ));
    }
    let mut notes = Vec::new();
    if !elsewhere.is_empty() {
        notes.push(format!(
            "These links are not on the organisation's domains ({domains}), so a reviewer must \
             confirm they belong to it: {}.",
            elsewhere.join("; ")
        ));
    }
    if input.track_record.is_empty() {
        notes.push(
            "No track-record links were given; add links to security advisories or fixes the \
             organisation has published."
                .to_owned(),
        );
    }
    if notes.is_empty() {
        pass(if count == 1 {
            "The evidence link is an https page on the organisation's own site.".to_owned()
        } else {
            format!("All {count} evidence links are https pages on the organisation's own site.")
        })
    } else {
        review(notes.join(" "))
    }
}

fn community_links(input: &CheckInput<'_>) -> Option<Verdict> {
    if input.community_links.is_empty() {
        return review(
            "No community links were given; add links that show the organisation taking part in \
             the project, such as pull requests, issues or working-group meetings.",
        );
    }
    let bad: Vec<String> = input
        .community_links
        .iter()
        .filter_map(|link| check_link(link).err().map(|why| format!("{link} ({why})")))
        .collect();
    if bad.is_empty() {
        let n = input.community_links.len();
        pass(if n == 1 {
            "The community link is https and on an accepted host; a reviewer judges what it shows."
                .to_owned()
        } else {
            format!(
                "All {n} community links are https and on accepted hosts; a reviewer judges what \
                 they show."
            )
        })
    } else {
        fail(format!(
            "These community links cannot be used: {}. Give https links to public pages, such as \
             the project's code review or issue tracker.",
            bad.join("; ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// Membership and voucher

fn not_already_member(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    if input.org_domains.is_empty() {
        return fail(
            "No organisation domain was given, so membership could not be checked; add the \
             domains the organisation owns.",
        );
    }
    let mut clashes = Vec::new();
    for domain in input.org_domains {
        for member in ctx.member_domains {
            if domain == member {
                clashes.push(format!("{domain} is already a member of the list"));
            } else if member.covers(domain.as_str()) || domain.covers(member.as_str()) {
                clashes.push(format!("{domain} overlaps the member domain {member}"));
            }
        }
    }
    if clashes.is_empty() {
        pass(format!(
            "None of the organisation's domains ({}) belongs to a current member.",
            domain_list(input.org_domains)
        ))
    } else {
        fail(format!(
            "This organisation cannot apply again: {}. An organisation has one membership; ask \
             its current contact to update that membership instead.",
            clashes.join("; ")
        ))
    }
}

fn voucher(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    let Some(voucher) = input.voucher_alias else {
        return if ctx.voucher_required {
            fail(
                "No voucher was given, and this list requires one; ask a current member \
                 organisation to vouch for you and give its security alias.",
            )
        } else {
            review("No voucher was given; a voucher is optional on this list.")
        };
    };
    let Some((alias, member_domain)) = ctx
        .member_aliases
        .iter()
        .find(|(alias, _)| alias == voucher)
    else {
        return fail(format!(
            "{voucher} is not the alias of a current member; a voucher must be the registered \
             security alias of an active member organisation."
        ));
    };
    let same_org = on_any(member_domain.as_str(), input.org_domains)
        || input
            .org_domains
            .iter()
            .any(|d| member_domain.covers(d.as_str()))
        || input.alias.as_ref().is_ok_and(|own| own == alias);
    if same_org {
        return fail(format!(
            "{alias} belongs to the applying organisation ({member_domain}), and a voucher must \
             come from another organisation; ask a different member to vouch."
        ));
    }
    pass(format!(
        "Vouched for by {alias}, the alias of member {member_domain}."
    ))
}

// ---------------------------------------------------------------------------------------------
// OpenPGP key

fn openpgp_key(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    let alias = input.alias_text;
    let Some(armored) = input.pgp_key.map(str::trim).filter(|k| !k.is_empty()) else {
        return pass(
            "No OpenPGP key was given. Embargoed mail is sent only encrypted, so the alias will \
             get a notice instead of the content until a key is added.",
        );
    };
    match member_key::usable(armored, alias, ctx.now) {
        Ok(key) => pass(format!(
            "The key {} is unexpired, can encrypt, and has a user ID for {alias}.",
            key.fingerprint
        )),
        Err(problems) => fail(problems),
    }
}

// ---------------------------------------------------------------------------------------------
// Window, attestations, round trip

fn ship_window(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    let days = input.days_to_fix;
    let max = ctx.max_days_to_fix;
    if days < 1 {
        fail(format!(
            "{days} is not a number of days to ship a fix; give how many days (at least 1, at \
             most {max}) the organisation needs to ship a fix to its users."
        ))
    } else if i64::from(days) > i64::from(max) {
        fail(format!(
            "{days} days is longer than the {max} days the list allows between the embargoed \
             mailing and the release; members must be able to ship within {max} days."
        ))
    } else {
        pass(format!(
            "{days} days is within the {max} days the list allows."
        ))
    }
}

fn attestations(input: &CheckInput<'_>, ctx: &CheckContext<'_>) -> Option<Verdict> {
    let current = ctx.current_policy_version;
    let mut missing = Vec::new();
    match input.accepted_policy_version {
        v if v == current => {}
        0 => missing.push(format!("accept version {current} of the embargo policy")),
        v => missing.push(format!(
            "accept version {current} of the embargo policy (version {v} was accepted)"
        )),
    }
    if !input.stages_privately {
        missing.push("confirm that fixes can be staged privately until the public date".to_owned());
    }
    if !input.contributes_back {
        missing
            .push("confirm that the organisation will contribute back to the project".to_owned());
    }
    if missing.is_empty() {
        pass(format!(
            "Version {current} of the embargo policy was accepted, with private staging of \
             fixes and contributing back attested."
        ))
    } else {
        fail(format!("Still needed: {}.", missing.join("; ")))
    }
}

fn alias_confirmed(input: &CheckInput<'_>) -> Option<Verdict> {
    let alias = input.alias_text;
    if input.alias_confirmed {
        pass(format!(
            "The confirmation link mailed to {alias} was followed, so someone reads it."
        ))
    } else {
        review(format!(
            "Waiting for the confirmation link mailed to {alias} to be followed; review starts \
             once it is."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const VENDOR_KEY: &str = include_str!("../../data/testdata/vendor-psirt.asc");
    const VENDOR_KEY_CERTIFIED: &str =
        include_str!("../../data/testdata/vendor-psirt-certified.asc");
    const SIGN_ONLY_KEY: &str = include_str!("../../data/testdata/sign-only.asc");
    const EXPIRED_KEY: &str = include_str!("../../data/testdata/expired.asc");
    const STALE_SUBKEY_KEY: &str = include_str!("../../data/testdata/stale-encryption-subkey.asc");
    const RSA_KEY: &str = include_str!("../../data/testdata/rsa-no-expiry.asc");
    const REVOKED_KEY: &str = include_str!("../../data/testdata/revoked.asc");

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn domains(items: &[&str]) -> Vec<OrgDomain> {
        items.iter().map(|s| OrgDomain::parse(s).unwrap()).collect()
    }

    fn alias(text: &str) -> SecurityAlias {
        SecurityAlias::parse(text).unwrap()
    }

    /// Owned backing for a CheckInput, starting from an application that passes everything.
    struct Form {
        org_domains: Vec<OrgDomain>,
        security_alias: String,
        rep_name: String,
        website: String,
        product_url: String,
        track_record: Vec<String>,
        community_links: Vec<String>,
        voucher_alias: Option<SecurityAlias>,
        days_to_fix: i32,
        pgp_key: Option<String>,
        accepted_policy_version: i32,
        stages_privately: bool,
        contributes_back: bool,
        alias_confirmed: bool,
    }

    impl Form {
        fn good() -> Self {
            Form {
                org_domains: domains(&["example.com"]),
                security_alias: "security@example.com".to_owned(),
                rep_name: "Maria Lopez".to_owned(),
                website: "https://example.com".to_owned(),
                product_url: "https://www.example.com/mesh".to_owned(),
                track_record: strings(&["https://example.com/security/advisories/2024-01"]),
                community_links: strings(&["https://github.com/istio/istio/pull/1"]),
                voucher_alias: Some(alias("psirt@member.test")),
                days_to_fix: 10,
                pgp_key: None,
                accepted_policy_version: 2,
                stages_privately: true,
                contributes_back: true,
                alias_confirmed: true,
            }
        }

        fn input(&self) -> CheckInput<'_> {
            CheckInput {
                org_domains: &self.org_domains,
                alias: SecurityAlias::parse(&self.security_alias),
                alias_text: &self.security_alias,
                rep_name: &self.rep_name,
                website: &self.website,
                product_url: &self.product_url,
                track_record: &self.track_record,
                community_links: &self.community_links,
                voucher_alias: self.voucher_alias.as_ref(),
                days_to_fix: self.days_to_fix,
                pgp_key: self.pgp_key.as_deref(),
                accepted_policy_version: self.accepted_policy_version,
                stages_privately: self.stages_privately,
                contributes_back: self.contributes_back,
                alias_confirmed: self.alias_confirmed,
            }
        }
    }

    struct Facts {
        member_domains: Vec<OrgDomain>,
        member_aliases: Vec<(SecurityAlias, OrgDomain)>,
        voucher_required: bool,
        required: Vec<String>,
        now: DateTime<Utc>,
    }

    impl Facts {
        fn new() -> Self {
            Facts {
                member_domains: domains(&["member.test", "other-member.test"]),
                member_aliases: vec![
                    (
                        alias("psirt@member.test"),
                        OrgDomain::parse("member.test").unwrap(),
                    ),
                    (
                        alias("security@example.com"),
                        OrgDomain::parse("example.com").unwrap(),
                    ),
                ],
                voucher_required: false,
                required: strings(DEFAULT_REQUIRED),
                // The fixtures were made on 2025-01-01 and the 2-year ones expire on 2027-01-01.
                now: Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap(),
            }
        }

        fn ctx(&self) -> CheckContext<'_> {
            CheckContext {
                member_domains: &self.member_domains,
                member_aliases: &self.member_aliases,
                current_policy_version: 2,
                max_days_to_fix: 21,
                voucher_required: self.voucher_required,
                required: &self.required,
                now: self.now,
            }
        }
    }

    fn check(form: &Form, facts: &Facts, key: &str) -> CheckResult {
        run_all(&form.input(), &facts.ctx())
            .into_iter()
            .find(|r| r.key == key)
            .unwrap()
    }

    fn check_key(armored: &str, alias: &str, now: DateTime<Utc>) -> CheckResult {
        let mut form = Form::good();
        form.security_alias = alias.to_owned();
        form.pgp_key = Some(armored.to_owned());
        let mut facts = Facts::new();
        facts.now = now;
        check(&form, &facts, "openpgp-key")
    }

    fn june_2025() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_good_application_passes_every_check_in_order() {
        let mut form = Form::good();
        // The member alias in Facts is this organisation's; vouch from another.
        form.org_domains = domains(&["vendor.test"]);
        form.security_alias = "security@vendor.test".to_owned();
        form.website = "https://vendor.test".to_owned();
        form.product_url = "https://vendor.test/mesh".to_owned();
        form.track_record = strings(&["https://vendor.test/advisories"]);
        let results = run_all(&form.input(), &Facts::new().ctx());

        let keys: Vec<&str> = results.iter().map(|r| r.key).collect();
        let expected: Vec<&str> = ALL_CHECKS.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, expected);
        for r in &results {
            assert_eq!(r.outcome, Outcome::Pass, "{}: {}", r.key, r.reason);
            assert!(r.reason.ends_with('.'), "{}: {}", r.key, r.reason);
        }
        assert!(
            results
                .iter()
                .find(|r| r.key == "alias-syntax")
                .unwrap()
                .required
        );
        assert!(
            !results
                .iter()
                .find(|r| r.key == "voucher")
                .unwrap()
                .required
        );
    }

    #[test]
    fn default_required_are_all_known_checks() {
        for key in DEFAULT_REQUIRED {
            assert!(ALL_CHECKS.iter().any(|(k, _)| k == key), "{key}");
        }
    }

    #[test]
    fn outcome_strings_round_trip() {
        for o in [Outcome::Pass, Outcome::Fail, Outcome::NeedsReview] {
            assert_eq!(o.as_str().parse::<Outcome>(), Ok(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        assert!("maybe".parse::<Outcome>().is_err());
    }

    #[test]
    fn domain_matching_respects_label_boundaries() {
        let org = domains(&["example.com"]);
        assert!(on_any("example.com", &org));
        assert!(on_any("psirt.example.com", &org));
        assert!(on_any("Example.COM.", &org));
        assert!(!on_any("notexample.com", &org));
        assert!(!on_any("example.com.evil.test", &org));
        assert!(!on_any("anything", &[]));
    }

    #[test]
    fn malformed_alias_fails_syntax() {
        let mut form = Form::good();
        form.security_alias = "security-at-example.com".to_owned();
        let r = check(&form, &Facts::new(), "alias-syntax");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("is not an email address"), "{}", r.reason);
        // Checks that need the domain say why they cannot judge, and still fail.
        let r = check(&form, &Facts::new(), "alias-on-org-domain");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("fix the security alias first"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn gmail_alias_fails_free_mail() {
        let mut form = Form::good();
        form.security_alias = "acme.security@gmail.com".to_owned();
        let r = check(&form, &Facts::new(), "alias-not-free-mail");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("gmail.com"), "{}", r.reason);
        assert!(
            r.reason
                .contains("a free-mail address cannot be an organisation's monitored alias"),
            "{}",
            r.reason
        );
        assert_eq!(
            check(&Form::good(), &Facts::new(), "alias-not-free-mail").outcome,
            Outcome::Pass
        );
    }

    /// Every reason an application's alias checks give, for assertions about all of them.
    fn alias_reasons(form: &Form) -> String {
        [
            "alias-not-free-mail",
            "alias-role-account",
            "alias-on-org-domain",
        ]
        .iter()
        .map(|key| check(form, &Facts::new(), key).reason)
        .collect::<Vec<_>>()
        .join("\n")
    }

    #[test]
    fn a_free_mail_alias_is_never_told_to_use_security_at_the_provider() {
        let mut form = Form::good();
        form.security_alias = "maria.lopez@gmail.com".to_owned();
        let reasons = alias_reasons(&form);
        assert!(!reasons.contains("security@gmail.com"), "{reasons}");
        // The organisation's own domain is suggested instead.
        let r = check(&form, &Facts::new(), "alias-role-account");
        assert_eq!(r.outcome, Outcome::NeedsReview);
        assert!(
            r.reason
                .contains("use a role address such as security@example.com that several"),
            "{}",
            r.reason
        );
        let r = check(&form, &Facts::new(), "alias-not-free-mail");
        assert!(
            r.reason.ends_with("owns, such as security@example.com."),
            "{}",
            r.reason
        );

        // Not a person's name, and no organisation domain given: the website's host, without www.
        form.security_alias = "robotics4u@outlook.com".to_owned();
        form.org_domains = Vec::new();
        form.website = "https://www.acme-robotics.example/".to_owned();
        let r = check(&form, &Facts::new(), "alias-role-account");
        assert!(
            r.reason
                .ends_with("An address such as security@acme-robotics.example makes this clear."),
            "{}",
            r.reason
        );
        let reasons = alias_reasons(&form);
        assert!(!reasons.contains("security@outlook.com"), "{reasons}");

        // Nothing of the organisation's own to go on (a free-mail "domain", a blog host): no
        // address is made up, and the reason says why free mail will not do.
        form.org_domains = domains(&["gmail.com"]);
        form.website = "https://acme.medium.com/".to_owned();
        form.security_alias = "maria.lopez@gmail.com".to_owned();
        let reasons = alias_reasons(&form);
        assert!(!reasons.contains("security@"), "{reasons}");
        let r = check(&form, &Facts::new(), "alias-role-account");
        assert!(
            r.reason.contains(
                "on a domain the organisation owns: a free-mail address is a \
                 mailbox at the provider, not an organisation's alias."
            ),
            "{}",
            r.reason
        );
        form.security_alias = "robotics4u@gmail.com".to_owned();
        let r = check(&form, &Facts::new(), "alias-role-account");
        assert!(
            r.reason.ends_with("not an organisation's alias."),
            "{}",
            r.reason
        );
        assert!(!r.reason.contains("security@"), "{}", r.reason);
    }

    #[test]
    fn an_alias_on_the_organisations_domain_is_told_security_at_that_domain() {
        let mut form = Form::good();
        form.security_alias = "mlopez@example.com".to_owned();
        let r = check(&form, &Facts::new(), "alias-role-account");
        assert!(
            r.reason.contains("such as security@example.com"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn free_mail_list_has_the_big_providers_and_no_stray_entries() {
        for d in [
            "gmail.com",
            "outlook.com",
            "yahoo.co.uk",
            "proton.me",
            "qq.com",
            "hey.com",
        ] {
            assert_eq!(listed_host(d, FREE_MAIL_DOMAINS), Some(d));
        }
        // "mail.com" is listed; "gmail.com" must not match it by suffix alone.
        assert_eq!(
            listed_host("gmail.com", FREE_MAIL_DOMAINS),
            Some("gmail.com")
        );
        assert_eq!(listed_host("example.com", FREE_MAIL_DOMAINS), None);
        for list in [FREE_MAIL_DOMAINS, DENIED_EVIDENCE_HOSTS] {
            for line in list
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
            {
                assert_eq!(line, line.trim().to_ascii_lowercase(), "bad entry {line:?}");
                assert!(line.contains('.'), "bad entry {line:?}");
            }
        }
    }

    #[test]
    fn alias_on_another_domain_fails_and_subdomain_passes() {
        let mut form = Form::good();
        form.security_alias = "security@example.net".to_owned();
        let r = check(&form, &Facts::new(), "alias-on-org-domain");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("example.net"), "{}", r.reason);
        assert!(r.reason.contains("(example.com)"), "{}", r.reason);

        form.security_alias = "security@psirt.example.com".to_owned();
        assert_eq!(
            check(&form, &Facts::new(), "alias-on-org-domain").outcome,
            Outcome::Pass
        );

        form.security_alias = "security@notexample.com".to_owned();
        assert_eq!(
            check(&form, &Facts::new(), "alias-on-org-domain").outcome,
            Outcome::Fail
        );
    }

    #[test]
    fn role_alias_passes_and_personal_alias_needs_review() {
        let facts = Facts::new();
        let mut form = Form::good();
        for alias in [
            "security@example.com",
            "psirt@example.com",
            "istio-vulns@example.com",
        ] {
            form.security_alias = alias.to_owned();
            assert_eq!(
                check(&form, &facts, "alias-role-account").outcome,
                Outcome::Pass,
                "{alias}"
            );
        }

        for alias in [
            "maria.lopez@example.com",
            "mlopez@example.com",
            "lopez-security@example.com",
        ] {
            form.security_alias = alias.to_owned();
            let r = check(&form, &facts, "alias-role-account");
            assert_eq!(r.outcome, Outcome::NeedsReview, "{alias}");
            assert!(
                r.reason.contains("should reach a team, not one person"),
                "{}",
                r.reason
            );
        }

        // Short names are caught by shape rather than by substring.
        form.rep_name = "Al Wu".to_owned();
        form.security_alias = "al.wu@example.com".to_owned();
        let r = check(&form, &facts, "alias-role-account");
        assert!(r.reason.contains("not one person"), "{}", r.reason);

        form.security_alias = "info@example.com".to_owned();
        let r = check(&form, &facts, "alias-role-account");
        assert_eq!(r.outcome, Outcome::NeedsReview);
        assert!(
            r.reason.contains("Could not tell whether info@example.com"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn insecure_or_denied_evidence_fails_and_names_the_link() {
        let facts = Facts::new();
        let mut form = Form::good();
        form.track_record = strings(&[
            "http://example.com/advisories",
            "https://www.youtube.com/watch?v=abc",
            "https://example.com/ok",
        ]);
        let r = check(&form, &facts, "evidence-on-org-site");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("http://example.com/advisories"),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("not https"), "{}", r.reason);
        assert!(
            r.reason.contains("https://www.youtube.com/watch?v=abc"),
            "{}",
            r.reason
        );
        assert!(!r.reason.contains("https://example.com/ok"), "{}", r.reason);

        form.track_record = strings(&["not a url"]);
        let r = check(&form, &facts, "evidence-on-org-site");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("not a valid URL"), "{}", r.reason);
    }

    #[test]
    fn evidence_elsewhere_or_missing_needs_review() {
        let facts = Facts::new();
        let mut form = Form::good();
        form.track_record =
            strings(&["https://github.com/example/mesh/security/advisories/GHSA-1"]);
        let r = check(&form, &facts, "evidence-on-org-site");
        assert_eq!(r.outcome, Outcome::NeedsReview);
        assert!(
            r.reason.contains("https://github.com/example/mesh"),
            "{}",
            r.reason
        );

        form.track_record.clear();
        let r = check(&form, &facts, "evidence-on-org-site");
        assert_eq!(r.outcome, Outcome::NeedsReview);
        assert!(
            r.reason.contains("No track-record links were given"),
            "{}",
            r.reason
        );

        // A lookalike domain is "elsewhere", not the organisation's.
        form.track_record = strings(&["https://notexample.com/advisories"]);
        assert_eq!(
            check(&form, &facts, "evidence-on-org-site").outcome,
            Outcome::NeedsReview
        );
    }

    #[test]
    fn community_links_allow_other_sites_but_not_denied_ones() {
        let facts = Facts::new();
        let mut form = Form::good();
        assert_eq!(
            check(&form, &facts, "community-links").outcome,
            Outcome::Pass
        );

        form.community_links = strings(&["https://twitter.com/example", "https://github.com/x"]);
        let r = check(&form, &facts, "community-links");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("https://twitter.com/example"),
            "{}",
            r.reason
        );
        assert!(!r.reason.contains("https://github.com/x"), "{}", r.reason);

        form.community_links.clear();
        assert_eq!(
            check(&form, &facts, "community-links").outcome,
            Outcome::NeedsReview
        );
    }

    #[test]
    fn existing_member_domain_fails() {
        let facts = Facts::new();
        let mut form = Form::good();
        form.org_domains = domains(&["member.test"]);
        let r = check(&form, &facts, "not-already-member");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason
                .contains("member.test is already a member of the list"),
            "{}",
            r.reason
        );

        form.org_domains = domains(&["cloud.member.test"]);
        assert_eq!(
            check(&form, &facts, "not-already-member").outcome,
            Outcome::Fail
        );

        form.org_domains = domains(&["notmember.test"]);
        assert_eq!(
            check(&form, &facts, "not-already-member").outcome,
            Outcome::Pass
        );
    }

    #[test]
    fn voucher_rules() {
        let mut facts = Facts::new();
        let mut form = Form::good();
        form.org_domains = domains(&["vendor.test"]);
        form.security_alias = "security@vendor.test".to_owned();

        let r = check(&form, &facts, "voucher");
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.reason);

        form.voucher_alias = Some(alias("someone@elsewhere.test"));
        let r = check(&form, &facts, "voucher");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("is not the alias of a current member"),
            "{}",
            r.reason
        );

        // A member vouching for a new application from its own organisation.
        form.org_domains = domains(&["example.com"]);
        form.security_alias = "psirt@example.com".to_owned();
        form.voucher_alias = Some(alias("security@example.com"));
        let r = check(&form, &facts, "voucher");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason
                .contains("a voucher must come from another organisation"),
            "{}",
            r.reason
        );

        form.voucher_alias = None;
        assert_eq!(
            check(&form, &facts, "voucher").outcome,
            Outcome::NeedsReview
        );
        facts.voucher_required = true;
        let r = check(&form, &facts, "voucher");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("requires one"), "{}", r.reason);
    }

    #[test]
    fn days_to_fix_beyond_window_fails() {
        let facts = Facts::new();
        let mut form = Form::good();
        form.days_to_fix = 30;
        let r = check(&form, &facts, "ship-window");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("30 days is longer than the 21 days"),
            "{}",
            r.reason
        );
        form.days_to_fix = 0;
        assert_eq!(check(&form, &facts, "ship-window").outcome, Outcome::Fail);
        form.days_to_fix = 21;
        assert_eq!(check(&form, &facts, "ship-window").outcome, Outcome::Pass);
    }

    #[test]
    fn missing_attestations_fail_naming_each() {
        let facts = Facts::new();
        let mut form = Form::good();
        form.accepted_policy_version = 1;
        form.stages_privately = false;
        let r = check(&form, &facts, "attestations");
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("accept version 2 of the embargo policy"),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("staged privately"), "{}", r.reason);
        assert!(!r.reason.contains("contribute back"), "{}", r.reason);
    }

    #[test]
    fn unconfirmed_alias_needs_review() {
        let mut form = Form::good();
        form.alias_confirmed = false;
        let r = check(&form, &Facts::new(), "alias-confirmed");
        assert_eq!(r.outcome, Outcome::NeedsReview);
        assert!(r.reason.contains("security@example.com"), "{}", r.reason);
    }

    #[test]
    fn no_key_passes_but_says_what_the_alias_will_miss() {
        let r = check(&Form::good(), &Facts::new(), "openpgp-key");
        assert_eq!(r.outcome, Outcome::Pass);
        assert!(
            r.reason.contains("notice instead of the content"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn garbage_key_fails_with_a_reason() {
        let r = check_key("this is not a key", "security@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason
                .contains("could not be read as an OpenPGP public key: "),
            "{}",
            r.reason
        );

        let huge = "A".repeat(member_key::MAX_KEY_BYTES + 1);
        let r = check_key(&huge, "security@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("64 KiB"), "{}", r.reason);
    }

    #[test]
    fn valid_key_with_encryption_subkey_and_alias_uid_passes() {
        let r = check_key(VENDOR_KEY, "security@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.reason);
        assert!(
            r.reason
                .contains("933B8D51EB7D305C5F2673F6B17CF3FCBD07FFA4"),
            "{}",
            r.reason
        );
        // User IDs compare without regard to case.
        let r = check_key(VENDOR_KEY, "Security@Vendor.Example", june_2025());
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.reason);
    }

    #[test]
    fn third_party_certifications_do_not_break_a_valid_key() {
        let r = check_key(VENDOR_KEY_CERTIFIED, "security@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.reason);
    }

    #[test]
    fn rsa_key_without_expiry_passes() {
        let far_future = Utc.with_ymd_and_hms(2090, 1, 1, 0, 0, 0).unwrap();
        let r = check_key(RSA_KEY, "psirt@rsa.example", far_future);
        assert_eq!(r.outcome, Outcome::Pass, "{}", r.reason);
    }

    #[test]
    fn key_for_another_alias_fails_naming_the_alias() {
        let r = check_key(VENDOR_KEY, "security@example.com", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason
                .contains("No user ID of the key names security@example.com"),
            "{}",
            r.reason
        );
        assert!(r.reason.contains("security@vendor.example"), "{}", r.reason);

        // A user ID that merely contains the alias is not the alias.
        let r = check_key(VENDOR_KEY, "rity@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
    }

    #[test]
    fn expired_key_fails_with_the_expiry_date() {
        let r = check_key(EXPIRED_KEY, "security@expired.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("The key expired on 2020-01-02"),
            "{}",
            r.reason
        );

        // The valid fixture, checked after its two years are up.
        let later = Utc.with_ymd_and_hms(2027, 3, 1, 0, 0, 0).unwrap();
        let r = check_key(VENDOR_KEY, "security@vendor.example", later);
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("The key expired on 2027-01-01"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn sign_only_key_fails() {
        let r = check_key(SIGN_ONLY_KEY, "security@signonly.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("no encryption-capable (sub)key"),
            "{}",
            r.reason
        );
        assert!(!r.reason.contains("user ID"), "{}", r.reason);
    }

    #[test]
    fn expired_encryption_subkey_fails_with_its_date() {
        let r = check_key(
            STALE_SUBKEY_KEY,
            "security@stale-subkey.example",
            june_2025(),
        );
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(
            r.reason.contains("encryption subkey expired on 2025-01-02"),
            "{}",
            r.reason
        );
    }

    #[test]
    fn revoked_key_fails() {
        let r = check_key(REVOKED_KEY, "security@revoked.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("revoked"), "{}", r.reason);
    }

    #[test]
    fn private_key_is_refused_without_parsing() {
        let pasted =
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nxyz\n-----END PGP PRIVATE KEY BLOCK-----";
        let r = check_key(pasted, "security@vendor.example", june_2025());
        assert_eq!(r.outcome, Outcome::Fail);
        assert!(r.reason.contains("private (secret) key"), "{}", r.reason);
    }
}
