//! Configuration: command-line flags that fall back to environment variables, checked when parsed
//! so that a bad value stops the program with one clear line before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::dispatch::retry::{RetrySchedule, parse_duration};
use crate::egress;

/// Where the data lives; every subcommand reads the same settings.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (created on first start) or `postgres://USER@HOST:PORT/DB`.
    #[arg(
        long = "database-url",
        env = "HERALD_DATABASE_URL",
        default_value = "sqlite://herald.db",
        global = true,
        hide_env_values = true
    )]
    pub url: String,

    /// Connections in the pool.
    #[arg(
        long = "database-max-connections",
        env = "HERALD_DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub max_connections: u32,

    #[command(flatten)]
    pub encryption: EncryptionConfig,
}

/// The keys that encrypt signing secrets and custom header values at rest.
#[derive(Debug, Clone, Args)]
pub struct EncryptionConfig {
    /// Base64 of 32 bytes (`openssl rand -base64 32`). Required on PostgreSQL, where every replica
    /// needs the same key; on SQLite, without it Herald keeps a key file beside the database.
    /// Prefer the variable: a flag shows in the process list.
    #[arg(
        long = "encryption-key",
        env = "HERALD_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true,
        value_parser = key_text
    )]
    pub key: Option<KeyText>,

    /// During a key rotation: the next key, held beside the current one so that values sealed
    /// under either open; `herald keys rotate` moves every secret to it.
    #[arg(
        long = "new-encryption-key",
        env = "HERALD_NEW_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true,
        value_parser = key_text
    )]
    pub new_key: Option<KeyText>,
}

/// A key as given. Clap takes it as it is and `Debug` hides it: it is parsed later, by code whose
/// errors name the variable and never repeat the value (clap's own errors quote bad values).
#[derive(Clone)]
pub struct KeyText(String);

impl KeyText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(<redacted>)")
    }
}

fn key_text(s: &str) -> Result<KeyText, std::convert::Infallible> {
    Ok(KeyText(s.to_owned()))
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// The address the HTTP server listens on.
    #[arg(long, env = "HERALD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub dispatch: DispatchConfig,

    #[command(flatten)]
    pub retention: RetentionConfig,
}

/// How long finished deliveries and their alerts are kept (see `store::retention`).
#[derive(Debug, Clone, Copy, Args)]
pub struct RetentionConfig {
    /// How long finished deliveries, their attempts and their alerts are kept, e.g. `90d`, `12h`,
    /// `30m`; `off` keeps everything. Unfinished deliveries are never deleted.
    #[arg(long = "retention", env = "HERALD_RETENTION", default_value = "90d", value_parser = parse_retention)]
    pub retention: Retention,

    /// How often a running server looks for history to prune (its first look comes after at most
    /// 30 s). `herald prune` ignores it.
    #[arg(long = "prune-interval", env = "HERALD_PRUNE_INTERVAL", default_value = "10m", value_parser = parse_prune_interval)]
    pub prune_interval: Duration,
}

fn parse_prune_interval(s: &str) -> Result<Duration, String> {
    parse_duration(s)
        .filter(|d| *d >= Duration::from_secs(1))
        .ok_or_else(|| {
            format!("HERALD_PRUNE_INTERVAL (--prune-interval) must be a delay of at least 1s such as 30s, 10m or 1h, not {s:?}")
        })
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            retention: Retention::After(DEFAULT_RETENTION),
            prune_interval: Duration::from_secs(600),
        }
    }
}

/// Ninety days: a quarter of history to look back on, without the tables growing for years.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// The parsed `HERALD_RETENTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep everything.
    Off,
    /// Delete what finished longer ago than this.
    After(Duration),
}

impl Retention {
    /// The setting as an operator writes it, for messages: `off`, `90d`, `12h`, `30m`, `45s`.
    pub fn spelled(&self) -> String {
        match self {
            Retention::Off => "off".into(),
            Retention::After(d) => {
                let s = d.as_secs();
                if s % 86_400 == 0 {
                    format!("{}d", s / 86_400)
                } else if s % 3600 == 0 {
                    format!("{}h", s / 3600)
                } else if s % 60 == 0 {
                    format!("{}m", s / 60)
                } else {
                    format!("{s}s")
                }
            }
        }
    }
}

const RETENTION_RULE: &str =
    "HERALD_RETENTION must be `off` or a duration of at least 1m such as 90d, 12h or 30m";

/// `off`, or a count of days (`d`) or of anything the delays take (`h`, `m`, `s`), at least a
/// minute: a shorter one would delete deliveries before anyone could look at them.
pub fn parse_retention(s: &str) -> Result<Retention, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(Retention::Off);
    }
    let parsed = match t.strip_suffix('d') {
        Some(days) if !days.is_empty() && days.bytes().all(|b| b.is_ascii_digit()) => days
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(86_400))
            .map(Duration::from_secs),
        _ => parse_duration(t),
    };
    match parsed {
        Some(d) if d >= Duration::from_secs(60) => Ok(Retention::After(d)),
        _ => Err(format!("{RETENTION_RULE}; got {t:?}")),
    }
}

/// How the dispatcher delivers.
#[derive(Debug, Clone, Args)]
pub struct DispatchConfig {
    /// Delays between attempts, one per retry (ten), e.g. `5s,30s,2m,5m,10m,30m,1h,1h,2h,5h`.
    /// Default: ten retries over about nine and a half hours, with jitter.
    #[arg(long, env = "HERALD_RETRY_SCHEDULE", value_parser = parse_schedule)]
    pub retry_schedule: Option<RetrySchedule>,

    /// How long a receiver has to answer an attempt.
    #[arg(long, env = "HERALD_DELIVERY_TIMEOUT", default_value = "15s", value_parser = parse_delay)]
    pub delivery_timeout: Duration,

    /// The longest `Retry-After` (on 429 and 503) that is honoured.
    #[arg(long, env = "HERALD_RETRY_AFTER_CAP", default_value = "1h", value_parser = parse_delay)]
    pub retry_after_cap: Duration,

    /// How long a claimed delivery stays with its worker; when a worker dies, its deliveries are
    /// claimed again after this.
    #[arg(long, env = "HERALD_DELIVERY_LEASE", default_value = "2m", value_parser = parse_delay)]
    pub lease: Duration,

    /// How often an idle worker looks for due deliveries that other replicas queued.
    #[arg(long, env = "HERALD_POLL_INTERVAL", default_value = "1s", value_parser = parse_delay)]
    pub poll_interval: Duration,

    /// Requests in flight at once, over all destinations.
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,

    /// Requests in flight at once to one destination, so one slow receiver cannot hold up the rest.
    #[arg(long, env = "HERALD_MAX_IN_FLIGHT_PER_DESTINATION", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_in_flight_per_destination: u32,

    /// At shutdown (SIGTERM, Ctrl-C), how long attempts in flight and requests being answered may
    /// take to finish; what is still running then is cancelled and its delivery handed back.
    #[arg(long = "shutdown-grace", env = "HERALD_SHUTDOWN_GRACE", default_value = "30s", value_parser = parse_shutdown_grace)]
    pub shutdown_grace: Duration,

    #[command(flatten)]
    pub egress: EgressConfig,
}

/// Where outbound requests may go. By default Herald refuses loopback, private, link-local and
/// every other non-public address (see `egress::ranges`).
#[derive(Debug, Clone, Default, Args)]
pub struct EgressConfig {
    /// Networks Herald may deliver to although they are not public, as comma-separated CIDRs,
    /// e.g. `10.20.0.0/16,127.0.0.0/8`.
    #[arg(long = "allow-networks", env = "HERALD_ALLOW_NETWORKS", value_parser = parse_networks, default_value = "")]
    pub allow_networks: Networks,

    /// Refuse plain-http destination URLs (when written and when sent).
    #[arg(long = "require-https", env = "HERALD_REQUIRE_HTTPS", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_https: bool,

    /// A PEM file of CA certificates trusted beside the system's, for receivers behind a private
    /// CA. Certificates are always verified.
    #[arg(long = "ca-bundle", env = "HERALD_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
}

/// The parsed `HERALD_ALLOW_NETWORKS`.
#[derive(Debug, Clone, Default)]
pub struct Networks(pub Vec<ipnet::IpNet>);

impl EgressConfig {
    pub fn policy(&self) -> egress::Policy {
        egress::Policy {
            allow: self.allow_networks.0.clone(),
            require_https: self.require_https,
        }
    }
}

fn parse_networks(s: &str) -> Result<Networks, String> {
    egress::parse_networks(s).map(Networks)
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            retry_schedule: None,
            delivery_timeout: Duration::from_secs(15),
            retry_after_cap: Duration::from_secs(3600),
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            max_in_flight: 512,
            max_in_flight_per_destination: 32,
            shutdown_grace: Duration::from_secs(30),
            egress: EgressConfig::default(),
        }
    }
}

fn parse_schedule(s: &str) -> Result<RetrySchedule, String> {
    RetrySchedule::parse(s).map_err(|e| e.to_string())
}

fn parse_delay(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a delay such as 50ms, 5s, 2m or 1h"))
}

/// clap's own message names only the flag; this one names the variable too, since that is how a
/// deployment sets it.
fn parse_shutdown_grace(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| {
        format!(
            "HERALD_SHUTDOWN_GRACE (--shutdown-grace) must be a delay such as 10s, 30s or 2m, \
             not {s:?}"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_takes_days_hours_minutes_and_off() {
        let day = 86_400;
        assert_eq!(
            parse_retention("90d"),
            Ok(Retention::After(Duration::from_secs(90 * day)))
        );
        assert_eq!(
            parse_retention("12h"),
            Ok(Retention::After(Duration::from_secs(12 * 3600)))
        );
        assert_eq!(
            parse_retention("30m"),
            Ok(Retention::After(Duration::from_secs(1800)))
        );
        assert_eq!(parse_retention("off"), Ok(Retention::Off));
        assert_eq!(parse_retention("OFF"), Ok(Retention::Off));
        assert_eq!(parse_retention("7d").unwrap().spelled(), "7d");
        assert_eq!(parse_retention("36h").unwrap().spelled(), "36h");
    }

    #[test]
    fn bad_retention_names_the_variable_and_the_rule() {
        for bad in [
            "",
            "d",
            "90",
            "90days",
            "-1d",
            "0d",
            "30s",
            "5ms",
            "never",
            "999999999999999999d",
        ] {
            let e = parse_retention(bad).unwrap_err();
            assert!(e.starts_with(RETENTION_RULE), "{bad:?}: {e}");
        }
    }
}
