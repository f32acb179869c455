//! Settings, read once at start-up from an optional TOML file and the
//! environment (the environment wins), and validated before anything runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use url::Url;

use std::fmt;

use crate::http::client_addr::{parse_networks, Network};
use crate::notify::providers::SmsProviderSettings;
use crate::notify::webpush::{PushHosts, VapidKey, VapidSubject};
use crate::sca::Retention;
use crate::sealed::SecretsKey;
use crate::store::{Durability, Limits, PendingPush, Rate};
use crate::tls::TlsFiles;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mock method, mocked-session endpoints and the SMS outbox at `/dev/sms`.
    Sandbox,
    Production,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `PASSGATE_BIND`: address to listen on.
    pub bind: SocketAddr,
    /// `PASSGATE_ORIGIN`: public origin; SMS links and the WebAuthn origin.
    pub origin: Url,
    /// `PASSGATE_RP_ID`: WebAuthn relying party ID (default: origin's host).
    pub rp_id: String,
    /// `PASSGATE_MODE`: `sandbox` or `production`.
    pub mode: Mode,
    /// `DATABASE_URL`: a `sqlite:` or `postgres://` URL.
    pub database_url: DatabaseUrl,
    /// `PASSGATE_DATABASE_INSECURE`: let production reach PostgreSQL
    /// beyond loopback without TLS (no `sslmode=require` or `verify-*`).
    pub database_insecure: bool,
    /// `PASSGATE_STATIC_DIR`: the built approval page (Trunk's `dist`).
    pub static_dir: PathBuf,
    /// `PASSGATE_SANDBOX_PUBLIC`: let a sandbox listen beyond loopback or
    /// have an origin other than this machine (https, or a public host:
    /// it serves every user's SMS at `/dev/sms`).
    pub sandbox_public: bool,
    /// `PASSGATE_SQLITE_SYNCHRONOUS`: `full` (default) or `normal`.
    pub durability: Durability,
    /// `PASSGATE_LIMIT_*`: abuse limits.
    pub limits: Limits,
    /// `PASSGATE_HEADER_READ_TIMEOUT_SECS`: a client has this long to send
    /// a request's headers.
    pub header_read_timeout: Duration,
    /// `PASSGATE_REQUEST_TIMEOUT_SECS`: the longest a request may take,
    /// body included.
    pub request_timeout: Duration,
    /// `PASSGATE_WRITE_TIMEOUT_SECS`: a client that accepts no byte of an
    /// answer for this long (it stopped reading) is disconnected.
    pub write_timeout: Duration,
    /// `PASSGATE_MAX_CONNECTIONS`: connections served at once.
    pub max_connections: usize,
    /// `PASSGATE_MAX_CONNECTIONS_PER_CLIENT`: connections served at once
    /// from one client address (an IPv6 /64); trusted proxies uncapped.
    pub max_connections_per_client: usize,
    /// `PASSGATE_METRICS_BIND`: where Prometheus scrapes `/metrics`; off
    /// when unset. Never the public address.
    pub metrics_bind: Option<SocketAddr>,
    /// `PASSGATE_RETENTION_DAYS`, `PASSGATE_EVIDENCE_RETENTION_DAYS`,
    /// `PASSGATE_PURGE_INTERVAL_SECS`.
    pub retention: Retention,
    /// `PASSGATE_SECRETS_KEY`: the key that seals secrets at rest (32
    /// bytes, base64). Required in production; a sandbox without one uses
    /// a public sandbox key. `PASSGATE_SECRETS_KEY_PREVIOUS`: the keys it
    /// replaced, newest first, which still open what they sealed (and
    /// the oldest of which keys the MACs): see [`crate::sealed`].
    pub secrets_key: SecretsKey,
    /// `PASSGATE_TRUSTED_PROXIES`: comma-separated networks (CIDR) of the
    /// reverse proxies in front; a request from one of them is the
    /// client's named in `Forwarded` or `X-Forwarded-For`. Empty (the
    /// default): no proxy is trusted, the TCP peer is the client.
    pub trusted_proxies: Vec<Network>,
    /// `PASSGATE_TLS_CERT` and `PASSGATE_TLS_KEY`: PEM files of the
    /// certificate chain and its key; when set (both, or neither), Passgate
    /// serves https itself and reloads them on `SIGHUP`.
    pub tls: Option<TlsFiles>,
    /// `PASSGATE_SMS_PROVIDER` (`webhook`, `twilio`, or `none`) and its
    /// settings (`notify::providers::settings`, environment only): who
    /// delivers SMS in production. Required there (`none` said outright);
    /// a sandbox never sends (its outbox is the delivery).
    pub sms_provider: Option<SmsProviderSettings>,
    /// `PASSGATE_VAPID_PRIVATE_KEY`, `PASSGATE_VAPID_SUBJECT` and
    /// `PASSGATE_PUSH_HOSTS` (environment only): Web Push to paired
    /// phones. Off when the key is unset: a phone then sees its approvals
    /// while its app is open.
    pub web_push: Option<WebPushSettings>,
}

/// Web Push's settings, validated at start.
#[derive(Debug, Clone)]
pub struct WebPushSettings {
    /// The VAPID key pair (`passgate vapid-keys` makes one); its public
    /// half is the `applicationServerKey` phones subscribe with.
    pub key: VapidKey,
    /// Who to tell when pushes misbehave: a `mailto:` or `https:` URL.
    pub subject: VapidSubject,
    /// The push services a subscription may name.
    pub hosts: PushHosts,
}

impl WebPushSettings {
    fn from_env(env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Option<Self>> {
        let key = env("PASSGATE_VAPID_PRIVATE_KEY").filter(|k| !k.trim().is_empty());
        let subject = env("PASSGATE_VAPID_SUBJECT").filter(|s| !s.trim().is_empty());
        let hosts = env("PASSGATE_PUSH_HOSTS").filter(|h| !h.trim().is_empty());
        let (key, subject) = match (key, subject) {
            (Some(key), Some(subject)) => (key, subject),
            (None, None) if hosts.is_none() => return Ok(None),
            _ => bail!(
                "PASSGATE_VAPID_PRIVATE_KEY and PASSGATE_VAPID_SUBJECT go together (with PASSGATE_PUSH_HOSTS optional): set both to send Web Push (`passgate vapid-keys` makes a key), or none"
            ),
        };
        let key = VapidKey::from_base64url(key.trim()).map_err(|e| anyhow::anyhow!("PASSGATE_VAPID_PRIVATE_KEY: {e}"))?;
        let subject = VapidSubject::parse(subject.trim()).map_err(|e| anyhow::anyhow!("PASSGATE_VAPID_SUBJECT: {e}"))?;
        let hosts = match hosts {
            Some(hosts) => PushHosts::parse(&hosts).map_err(|e| anyhow::anyhow!("PASSGATE_PUSH_HOSTS: {e}"))?,
            None => PushHosts::default(),
        };
        Ok(Some(WebPushSettings { key, subject, hosts }))
    }
}

/// The optional TOML file: the same settings, lower-case, without prefix.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    origin: Option<String>,
    rp_id: Option<String>,
    mode: Option<Mode>,
    database_url: Option<String>,
    database_insecure: Option<bool>,
    static_dir: Option<PathBuf>,
    sandbox_public: Option<bool>,
    sqlite_synchronous: Option<String>,
    limit_open_sessions_per_user: Option<u32>,
    limit_sms_per_user: Option<String>,
    limit_sessions_per_partner: Option<String>,
    limit_pending_push: Option<String>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    write_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    retention_days: Option<u64>,
    evidence_retention_days: Option<u64>,
    purge_interval_secs: Option<u64>,
    metrics_bind: Option<String>,
    secrets_key: Option<String>,
    secrets_key_previous: Option<String>,
    trusted_proxies: Option<Networks>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// `trusted_proxies` in the file: a comma-separated string, as in the
/// environment, or an array of networks.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Networks {
    Text(String),
    List(Vec<String>),
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

impl Config {
    /// Reads `file` (if given), then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        Self::from_sources(settings, |name| std::env::var(name).ok())
    }

    fn from_sources(file: FileSettings, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let bind = env("PASSGATE_BIND").or(file.bind).unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind: SocketAddr = bind.parse().with_context(|| format!("PASSGATE_BIND {bind:?} is not host:port"))?;
        let origin = env("PASSGATE_ORIGIN").or(file.origin).unwrap_or_else(|| "http://localhost:8080".into());
        let origin = Url::parse(&origin).with_context(|| format!("PASSGATE_ORIGIN {origin:?} is not a URL"))?;
        if !matches!(origin.scheme(), "http" | "https") || origin.path() != "/" || origin.query().is_some() {
            bail!("PASSGATE_ORIGIN must be a bare http(s) origin such as https://passgate.example.com");
        }
        let Some(host) = origin.host_str() else { bail!("PASSGATE_ORIGIN has no host") };
        let rp_id = env("PASSGATE_RP_ID").or(file.rp_id).unwrap_or_else(|| host.to_owned());
        let mode = match env("PASSGATE_MODE") {
            Some(m) => match m.as_str() {
                "sandbox" => Mode::Sandbox,
                "production" => Mode::Production,
                other => bail!("PASSGATE_MODE must be sandbox or production, not {other:?}"),
            },
            None => file.mode.unwrap_or(Mode::Sandbox),
        };
        let database_url =
            DatabaseUrl::parse(env("DATABASE_URL").or(file.database_url).unwrap_or_else(|| "sqlite://data/passgate.db".into()))?;
        let database_insecure = pick(&env, "PASSGATE_DATABASE_INSECURE", file.database_insecure, false)?;
        let static_dir = env("PASSGATE_STATIC_DIR").map(PathBuf::from).or(file.static_dir).unwrap_or_else(|| "frontend/dist".into());
        let sandbox_public = pick(&env, "PASSGATE_SANDBOX_PUBLIC", file.sandbox_public, false)?;
        let durability = match pick(&env, "PASSGATE_SQLITE_SYNCHRONOUS", file.sqlite_synchronous, "full".to_owned())?.as_str() {
            "full" => Durability::Full,
            "normal" => Durability::Normal,
            other => bail!("PASSGATE_SQLITE_SYNCHRONOUS must be full or normal, not {other:?}"),
        };
        let limits = Limits {
            open_sessions_per_user: pick(&env, "PASSGATE_LIMIT_OPEN_SESSIONS_PER_USER", file.limit_open_sessions_per_user, 10)?,
            sms_per_user: rate(&env, "PASSGATE_LIMIT_SMS_PER_USER", file.limit_sms_per_user, "10/10m")?,
            sessions_per_partner: rate(&env, "PASSGATE_LIMIT_SESSIONS_PER_PARTNER", file.limit_sessions_per_partner, "6000/1m")?,
            pending_push: match pick(&env, "PASSGATE_LIMIT_PENDING_PUSH", file.limit_pending_push, "supersede".to_owned())?.as_str() {
                "supersede" => PendingPush::Supersede,
                "refuse" => PendingPush::Refuse,
                other => bail!("PASSGATE_LIMIT_PENDING_PUSH must be supersede or refuse, not {other:?}"),
            },
        };
        let secs = |name: &str, file: Option<u64>, default: u64| -> anyhow::Result<Duration> {
            let secs = pick(&env, name, file, default)?;
            if secs == 0 {
                bail!("{name} must be at least 1");
            }
            Ok(Duration::from_secs(secs))
        };
        let header_read_timeout = secs("PASSGATE_HEADER_READ_TIMEOUT_SECS", file.header_read_timeout_secs, 10)?;
        let request_timeout = secs("PASSGATE_REQUEST_TIMEOUT_SECS", file.request_timeout_secs, 30)?;
        let write_timeout = secs("PASSGATE_WRITE_TIMEOUT_SECS", file.write_timeout_secs, 30)?;
        let max_connections = pick(&env, "PASSGATE_MAX_CONNECTIONS", file.max_connections, 4096)?;
        if max_connections == 0 {
            bail!("PASSGATE_MAX_CONNECTIONS must be at least 1");
        }
        let max_connections_per_client = pick(&env, "PASSGATE_MAX_CONNECTIONS_PER_CLIENT", file.max_connections_per_client, 256)?;
        if max_connections_per_client == 0 {
            bail!("PASSGATE_MAX_CONNECTIONS_PER_CLIENT must be at least 1");
        }
        let days = |name: &str, file: Option<u64>, default: u64| -> anyhow::Result<i64> {
            let days = pick(&env, name, file, default)?;
            i64::try_from(days)
                .ok()
                .filter(|d| (1..=36_500).contains(d))
                .map(|d| d * DAY_MS)
                .with_context(|| format!("{name} must be from 1 to 36500 days"))
        };
        let retention = Retention {
            operational_ms: days("PASSGATE_RETENTION_DAYS", file.retention_days, 30)?,
            evidence_ms: days("PASSGATE_EVIDENCE_RETENTION_DAYS", file.evidence_retention_days, 1_825)?,
            every: secs("PASSGATE_PURGE_INTERVAL_SECS", file.purge_interval_secs, 600)?,
        };
        let metrics_bind = match env("PASSGATE_METRICS_BIND").or(file.metrics_bind).filter(|b| !b.trim().is_empty()) {
            Some(text) => Some(text.trim().parse().with_context(|| format!("PASSGATE_METRICS_BIND {text:?} is not host:port"))?),
            None => None,
        };
        if metrics_bind.is_some_and(|m: SocketAddr| m.port() != 0 && m == bind) {
            bail!("PASSGATE_METRICS_BIND must not be the public PASSGATE_BIND");
        }
        let previous = env("PASSGATE_SECRETS_KEY_PREVIOUS").or(file.secrets_key_previous).filter(|k| !k.trim().is_empty());
        let secrets_key = match (env("PASSGATE_SECRETS_KEY").or(file.secrets_key).filter(|k| !k.trim().is_empty()), previous) {
            (Some(text), previous) => SecretsKey::parse(&text)?.with_previous(previous.as_deref().unwrap_or_default())?,
            (None, Some(_)) => bail!("PASSGATE_SECRETS_KEY_PREVIOUS needs PASSGATE_SECRETS_KEY, the key that seals from now on"),
            (None, None) if mode == Mode::Production => {
                bail!("PASSGATE_SECRETS_KEY is required in production (32 random bytes in base64)")
            }
            (None, None) => SecretsKey::sandbox(),
        };
        let trusted_proxies = match env("PASSGATE_TRUSTED_PROXIES").map(Networks::Text).or(file.trusted_proxies) {
            Some(Networks::Text(text)) => parse_networks(&text),
            Some(Networks::List(list)) => parse_networks(&list.join(",")),
            None => Ok(Vec::new()),
        }
        .map_err(|e| anyhow::anyhow!("PASSGATE_TRUSTED_PROXIES must be comma-separated networks such as 10.0.0.0/8: {e}"))?;
        let tls_cert = env("PASSGATE_TLS_CERT").map(PathBuf::from).or(file.tls_cert);
        let tls_key = env("PASSGATE_TLS_KEY").map(PathBuf::from).or(file.tls_key);
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => bail!("PASSGATE_TLS_CERT and PASSGATE_TLS_KEY go together: set both to serve https, or neither"),
        };
        let sms_provider = match env("PASSGATE_SMS_PROVIDER").as_deref().map(str::trim) {
            Some("none") => None,
            None | Some("") if mode == Mode::Production => bail!(
                "PASSGATE_SMS_PROVIDER is required in production: webhook or twilio (with their settings), or none to send no SMS at all"
            ),
            _ => SmsProviderSettings::from_env(&env)?,
        };
        let web_push = WebPushSettings::from_env(&env)?;
        let config = Config {
            sms_provider,
            web_push,
            tls,
            trusted_proxies,
            secrets_key,
            metrics_bind,
            bind,
            origin,
            rp_id,
            mode,
            database_url,
            database_insecure,
            static_dir,
            sandbox_public,
            durability,
            limits,
            header_read_timeout,
            request_timeout,
            write_timeout,
            max_connections,
            max_connections_per_client,
            retention,
        };
        config.check_exposure()?;
        Ok(config)
    }

    /// Fails closed: production needs an https origin (plain http only on
    /// loopback, for local runs); a sandbox stays on loopback and plain
    /// http unless `PASSGATE_SANDBOX_PUBLIC=true` says otherwise.
    fn check_exposure(&self) -> anyhow::Result<()> {
        if self.mode == Mode::Production && self.database_url.is_postgres() && !self.database_insecure {
            if let Some(host) = crate::store::postgres::tls::cleartext_host(self.database_url.expose()) {
                bail!("DATABASE_URL reaches PostgreSQL at {host} without TLS: add sslmode=verify-full&sslrootcert=/path/to/ca.pem (or sslmode=require) to it, or set PASSGATE_DATABASE_INSECURE=true to accept a cleartext connection")
            }
        }
        let local_origin = self.loopback_origin();
        let https = self.origin.scheme() == "https";
        if self.tls.is_some() && !https {
            bail!("PASSGATE_TLS_CERT is set, so Passgate serves https: PASSGATE_ORIGIN must be https too (browsers reach it so)");
        }
        match self.mode {
            Mode::Production if !https && !local_origin => {
                bail!("PASSGATE_ORIGIN must be https in production (plain http only on a loopback origin such as http://localhost:8080)")
            }
            Mode::Sandbox if !self.sandbox_public && !self.bind.ip().is_loopback() => bail!(
                "sandbox mode serves every user's SMS at /dev/sms and must not listen on {}: bind to 127.0.0.1, use PASSGATE_MODE=production, or set PASSGATE_SANDBOX_PUBLIC=true",
                self.bind
            ),
            // A loopback-bound sandbox behind a proxy is public all the
            // same: its origin tells (https not served by Passgate itself,
            // or any host but this machine).
            Mode::Sandbox if !self.sandbox_public && ((https && self.tls.is_none()) || !local_origin) => bail!(
                "sandbox mode with the origin {} looks public (it serves every user's SMS at /dev/sms): use a loopback origin such as http://localhost:8080, PASSGATE_MODE=production, or set PASSGATE_SANDBOX_PUBLIC=true",
                self.origin
            ),
            _ => Ok(()),
        }
    }

    /// Whether the origin names this machine (localhost, a loopback address).
    fn loopback_origin(&self) -> bool {
        match self.origin.host() {
            Some(url::Host::Domain(name)) => name == "localhost" || name.ends_with(".localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }

    /// Whether cookies are `Secure`: everywhere but a plain-http loopback
    /// origin (local runs and tests), where a browser would not send them.
    pub fn secure_cookies(&self) -> bool {
        self.https() || !self.loopback_origin()
    }

    /// Whether answers should carry HSTS: the origin is https.
    pub fn https(&self) -> bool {
        self.origin.scheme() == "https"
    }

    pub fn sandbox(&self) -> bool {
        self.mode == Mode::Sandbox
    }
}

/// The environment's value of `name` if set, else the file's, else `default`.
fn pick<T: FromStr>(env: &impl Fn(&str) -> Option<String>, name: &str, file: Option<T>, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match env(name) {
        Some(text) => text.trim().parse().map_err(|e| anyhow::anyhow!("{name} {text:?} is not valid: {e}")),
        None => Ok(file.unwrap_or(default)),
    }
}

/// A rate written `count/period`, e.g. `10/10m`, `6000/1m`, `30/1h`.
fn rate(env: &impl Fn(&str) -> Option<String>, name: &str, file: Option<String>, default: &str) -> anyhow::Result<Rate> {
    let text = env(name).or(file).unwrap_or_else(|| default.to_owned());
    parse_rate(&text).with_context(|| format!("{name} {text:?} must be count/period, e.g. 10/10m (periods in s, m, h)"))
}

fn parse_rate(text: &str) -> Option<Rate> {
    let (count, period) = text.trim().split_once('/')?;
    let count: u32 = count.trim().parse().ok().filter(|c| *c > 0)?;
    let period = period.trim();
    let (digits, unit) = period.split_at(period.len().checked_sub(1)?);
    let digits: i64 = if digits.is_empty() { 1 } else { digits.parse().ok()? };
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    let period_ms = digits.checked_mul(unit_ms).filter(|p| *p > 0)?;
    Some(Rate { burst: count, interval_ms: (period_ms / i64::from(count)).max(1) })
}

/// `DATABASE_URL`: where the data lives. Shown (errors, logs, `Debug`)
/// with its password redacted; [`DatabaseUrl::expose`] gives it whole, to
/// connect.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(url: impl Into<String>) -> anyhow::Result<Self> {
        let url = url.into();
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|scheme| url.starts_with(scheme)) {
            bail!("DATABASE_URL must be a sqlite: or postgres:// URL");
        }
        Ok(DatabaseUrl(url))
    }

    /// The URL with its password, to connect with and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres")
    }
}

impl fmt::Display for DatabaseUrl {
    /// The URL without its secrets: the user-info's password and a
    /// `password` query parameter (libpq's other spelling).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(mut url) = Url::parse(&self.0) else {
            // Unparsable as a URL: nothing of it is shown.
            return f.write_str("<unparsable DATABASE_URL>");
        };
        if url.password().is_some() {
            let _ = url.set_password(Some("REDACTED"));
        }
        if url.query_pairs().any(|(key, _)| key.eq_ignore_ascii_case("password")) {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("password") { "REDACTED".to_owned() } else { v.into_owned() };
                    (k.into_owned(), v)
                })
                .collect();
            url.query_pairs_mut().clear().extend_pairs(pairs);
        }
        f.write_str(url.as_str())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The settings `pairs` (production's SMS provider `none` unless given).
    fn with_env(pairs: &[(&str, &str)], file: FileSettings) -> anyhow::Result<Config> {
        let mut env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        env.entry("PASSGATE_SMS_PROVIDER".into()).or_insert_with(|| "none".into());
        Config::from_sources(file, |k| env.get(k).cloned())
    }

    #[test]
    fn production_needs_an_sms_provider_or_none_said_outright() {
        let production = [("PASSGATE_MODE", "production"), ("PASSGATE_SECRETS_KEY", KEY)];
        let unset: HashMap<&str, &str> = production.into_iter().collect();
        let err = Config::from_sources(FileSettings::default(), |k| unset.get(k).map(|v| v.to_string())).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SMS_PROVIDER is required"), "{err}");
        assert!(with_env(&production, FileSettings::default()).unwrap().sms_provider.is_none(), "none, said");
        let webhook = [
            production[0],
            production[1],
            ("PASSGATE_SMS_PROVIDER", "webhook"),
            ("PASSGATE_SMS_WEBHOOK_URL", "https://sms.example.com/send"),
            ("PASSGATE_SMS_WEBHOOK_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        assert!(matches!(with_env(&webhook, FileSettings::default()).unwrap().sms_provider, Some(SmsProviderSettings::Webhook { .. })));
        let err = with_env(&webhook[..3], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SMS_WEBHOOK_URL"), "{err}");
    }

    #[test]
    fn defaults_run_a_local_sandbox() {
        let config = with_env(&[], FileSettings::default()).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.origin.as_str(), "http://localhost:8080/");
        assert_eq!(config.rp_id, "localhost");
        assert_eq!(config.mode, Mode::Sandbox);
        assert_eq!(config.database_url.expose(), "sqlite://data/passgate.db");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file: FileSettings = toml::from_str("origin = \"https://a.example\"\nmode = \"production\"").unwrap();
        let config = with_env(&[("PASSGATE_ORIGIN", "https://b.example"), ("PASSGATE_SECRETS_KEY", KEY)], file).unwrap();
        assert_eq!(config.origin.as_str(), "https://b.example/");
        assert_eq!(config.rp_id, "b.example");
        assert_eq!(config.mode, Mode::Production);
    }

    #[test]
    fn bad_settings_fail_with_the_setting_named() {
        let err = with_env(&[("PASSGATE_BIND", "nope")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_BIND"), "{err}");
        let err = with_env(&[("PASSGATE_ORIGIN", "https://a.example/path")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_ORIGIN"), "{err}");
        let err = with_env(&[("PASSGATE_MODE", "prod")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_MODE"), "{err}");
        assert!(toml::from_str::<FileSettings>("colour = \"blue\"").is_err());
        let err = with_env(&[("PASSGATE_LIMIT_SMS_PER_USER", "ten")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_LIMIT_SMS_PER_USER"), "{err}");
        let err = with_env(&[("PASSGATE_SQLITE_SYNCHRONOUS", "off")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SQLITE_SYNCHRONOUS"), "{err}");
    }

    #[test]
    fn the_database_urls_password_is_never_shown() {
        let url = DatabaseUrl::parse("postgres://passgate:hunter2-s3cret@db.internal:5432/passgate?sslmode=require").unwrap();
        let query = DatabaseUrl::parse("postgresql://db.internal/passgate?user=app&password=hunter2-s3cret").unwrap();
        for url in [&url, &query] {
            for shown in [url.to_string(), format!("{url:?}")] {
                assert!(!shown.contains("hunter2-s3cret") && shown.contains("REDACTED"), "{shown}");
                assert!(shown.contains("db.internal"), "the rest stays, to diagnose: {shown}");
            }
        }
        assert!(url.expose().contains("hunter2-s3cret"), "whole to connect");
        let config = with_env(&[("DATABASE_URL", url.expose())], FileSettings::default()).unwrap();
        assert!(!format!("{config:?}").contains("hunter2-s3cret"));
        assert_eq!(DatabaseUrl::parse("sqlite://data/p.db").unwrap().to_string(), "sqlite://data/p.db");
        assert!(DatabaseUrl::parse("mysql://x").is_err());
    }

    /// One settings table (docs/PROTOCOL.md, section 12): every variable
    /// the code reads is in it, and it names none the code does not read.
    #[test]
    fn the_settings_table_lists_exactly_the_settings_read() {
        let protocol = include_str!("../../docs/PROTOCOL.md");
        let start = protocol.find("### Settings").expect("the settings section");
        let end = start + protocol[start..].find("\n### ").unwrap_or(protocol.len() - start);
        let documented: std::collections::BTreeSet<&str> = protocol[start..end]
            .lines()
            .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
            .filter(|name| name.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let code = [include_str!("config.rs"), include_str!("main.rs"), include_str!("notify/providers/settings.rs")].concat();
        let mut read: std::collections::BTreeSet<&str> = code
            .split('"')
            .filter(|piece| piece.len() > "PASSGATE_".len() || *piece == "DATABASE_URL")
            .filter(|piece| {
                (piece.starts_with("PASSGATE_") || *piece == "DATABASE_URL") && piece.chars().all(|c| c.is_ascii_uppercase() || c == '_')
            })
            .collect();
        // tracing's filter reads it itself.
        read.insert("RUST_LOG");
        assert_eq!(documented, read);
    }

    #[test]
    fn tls_needs_both_files_and_an_https_origin() {
        let err = with_env(&[("PASSGATE_TLS_CERT", "cert.pem")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        let files = [("PASSGATE_TLS_CERT", "cert.pem"), ("PASSGATE_TLS_KEY", "key.pem")];
        let err = with_env(&files, FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_ORIGIN must be https"), "{err}");
        // A loopback https origin served by Passgate itself is a local sandbox.
        let local = with_env(&[files[0], files[1], ("PASSGATE_ORIGIN", "https://localhost:8443")], FileSettings::default()).unwrap();
        assert_eq!(local.tls, Some(TlsFiles { cert: "cert.pem".into(), key: "key.pem".into() }));
        let err = with_env(&[("PASSGATE_ORIGIN", "https://localhost:8443")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SANDBOX_PUBLIC"), "https by a proxy: {err}");
    }

    #[test]
    fn web_push_needs_a_valid_key_and_subject_together() {
        assert!(with_env(&[], FileSettings::default()).unwrap().web_push.is_none(), "off by default");
        let key = VapidKey::generate();
        let private = key.private_base64url();
        let err = with_env(&[("PASSGATE_VAPID_PRIVATE_KEY", private.as_str())], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        let err = with_env(&[("PASSGATE_PUSH_HOSTS", "push.example.com")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("go together"), "{err}");
        let with = |subject: &str, hosts: Option<&str>| {
            let mut pairs = vec![("PASSGATE_VAPID_PRIVATE_KEY", private.as_str()), ("PASSGATE_VAPID_SUBJECT", subject)];
            pairs.extend(hosts.map(|h| ("PASSGATE_PUSH_HOSTS", h)));
            with_env(&pairs, FileSettings::default())
        };
        let settings = with("mailto:ops@bank.example", None).unwrap().web_push.unwrap();
        assert_eq!(settings.key.public_base64url(), key.public_base64url());
        assert_eq!(settings.hosts, PushHosts::default(), "the browsers' push services");
        assert!(!format!("{settings:?}").contains(private.as_str()), "the private key never in Debug");
        let err = with("ops@bank.example", None).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_VAPID_SUBJECT"), "Apple refuses a bare address: {err}");
        let err = with("mailto:ops@bank.example", Some("not a host")).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_PUSH_HOSTS"), "{err}");
        let err =
            with_env(&[("PASSGATE_VAPID_PRIVATE_KEY", "AAAA"), ("PASSGATE_VAPID_SUBJECT", "mailto:a@b.example")], FileSettings::default())
                .unwrap_err();
        assert!(err.to_string().contains("PASSGATE_VAPID_PRIVATE_KEY"), "{err}");
        assert!(with("https://bank.example/contact", Some("127.0.0.1")).unwrap().web_push.is_some());
    }

    #[test]
    fn a_sandbox_refuses_to_be_public_unless_told_so() {
        let err = with_env(&[("PASSGATE_BIND", "0.0.0.0:8080")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SANDBOX_PUBLIC"), "{err}");
        let err = with_env(&[("PASSGATE_ORIGIN", "https://sca.example.com")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SANDBOX_PUBLIC"), "{err}");
        // Bound to loopback behind a proxy, with a public plain-http origin.
        for origin in ["http://sca.example.com", "http://192.0.2.7:8080", "http://localhost.example.com"] {
            let err = with_env(&[("PASSGATE_ORIGIN", origin)], FileSettings::default()).unwrap_err();
            assert!(err.to_string().contains("PASSGATE_SANDBOX_PUBLIC"), "{origin}: {err}");
        }
        let told = [("PASSGATE_ORIGIN", "http://sca.example.com"), ("PASSGATE_SANDBOX_PUBLIC", "true")];
        assert!(with_env(&told, FileSettings::default()).is_ok());
        for origin in ["http://localhost:8080", "http://127.0.0.1:9000", "http://[::1]:8080", "http://app.localhost"] {
            assert!(with_env(&[("PASSGATE_ORIGIN", origin)], FileSettings::default()).is_ok(), "{origin}");
        }
        let public = [("PASSGATE_BIND", "0.0.0.0:8080"), ("PASSGATE_SANDBOX_PUBLIC", "true")];
        assert!(with_env(&public, FileSettings::default()).is_ok());
        assert!(with_env(&[("PASSGATE_BIND", "[::1]:8080")], FileSettings::default()).is_ok());
    }

    #[test]
    fn production_needs_https_except_on_loopback() {
        let prod = |origin: &str| {
            with_env(
                &[
                    ("PASSGATE_MODE", "production"),
                    ("PASSGATE_ORIGIN", origin),
                    ("PASSGATE_BIND", "0.0.0.0:80"),
                    ("PASSGATE_SECRETS_KEY", KEY),
                ],
                FileSettings::default(),
            )
        };
        let err = prod("http://sca.example.com").unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
        assert!(prod("https://sca.example.com").unwrap().https());
        assert!(prod("http://localhost:8080").is_ok());
        assert!(prod("http://127.0.0.1:8080").is_ok());
    }

    #[test]
    fn production_refuses_a_cleartext_database_beyond_loopback() {
        let prod = |url: &str, insecure: &str| {
            with_env(
                &[
                    ("PASSGATE_MODE", "production"),
                    ("PASSGATE_SECRETS_KEY", KEY),
                    ("DATABASE_URL", url),
                    ("PASSGATE_DATABASE_INSECURE", insecure),
                ],
                FileSettings::default(),
            )
        };
        for url in ["postgres://app@db.internal/passgate", "postgres://app@db.internal/passgate?sslmode=prefer"] {
            let err = prod(url, "false").unwrap_err();
            assert!(err.to_string().contains("PASSGATE_DATABASE_INSECURE") && err.to_string().contains("db.internal"), "{err}");
            assert!(prod(url, "true").is_ok(), "told so");
        }
        for url in [
            "postgres://app@db.internal/passgate?sslmode=require",
            "postgres://app@db.internal/passgate?sslmode=verify-full&sslrootcert=/etc/passgate/ca.pem",
            "postgres://app@127.0.0.1:5432/passgate",
            "postgres://app@%2Frun%2Fpostgresql/passgate",
        ] {
            assert!(prod(url, "false").is_ok(), "{url}");
        }
        let sandbox = [("DATABASE_URL", "postgres://app@db.internal/passgate")];
        assert!(with_env(&sandbox, FileSettings::default()).is_ok(), "a sandbox may");
    }

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn production_needs_a_secrets_key_of_its_own() {
        let err = with_env(&[("PASSGATE_MODE", "production")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SECRETS_KEY"), "{err}");
        let err = with_env(&[("PASSGATE_MODE", "production"), ("PASSGATE_SECRETS_KEY", "c2hvcnQ=")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("32 bytes"), "{err}");
        let prod = with_env(&[("PASSGATE_MODE", "production"), ("PASSGATE_SECRETS_KEY", KEY)], FileSettings::default()).unwrap();
        let sealed = prod.secrets_key.seal(b"x", "u").unwrap();
        assert!(SecretsKey::sandbox().open(&sealed, "u").is_err(), "the configured key, not the sandbox's");
        assert!(with_env(&[], FileSettings::default()).is_ok(), "a sandbox runs without one");
    }

    #[test]
    fn a_rotated_secrets_key_keeps_the_previous_ones_for_opening() {
        let old = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
        let by_old = with_env(&[("PASSGATE_SECRETS_KEY", old)], FileSettings::default()).unwrap().secrets_key.seal(b"x", "u").unwrap();
        let rotated = with_env(&[("PASSGATE_SECRETS_KEY", KEY), ("PASSGATE_SECRETS_KEY_PREVIOUS", old)], FileSettings::default()).unwrap();
        assert_eq!(rotated.secrets_key.open(&by_old, "u").unwrap(), b"x");
        assert!(rotated.secrets_key.needs_resealing(&by_old));
        let err = with_env(&[("PASSGATE_SECRETS_KEY_PREVIOUS", old)], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("needs PASSGATE_SECRETS_KEY"), "{err}");
        let err =
            with_env(&[("PASSGATE_SECRETS_KEY", KEY), ("PASSGATE_SECRETS_KEY_PREVIOUS", "nope")], FileSettings::default()).unwrap_err();
        assert!(err.to_string().contains("PASSGATE_SECRETS_KEY_PREVIOUS"), "{err}");
    }

    #[test]
    fn durability_is_full_unless_set_to_normal() {
        assert_eq!(with_env(&[], FileSettings::default()).unwrap().durability, Durability::Full);
        let normal = with_env(&[("PASSGATE_SQLITE_SYNCHRONOUS", "normal")], FileSettings::default()).unwrap();
        assert_eq!(normal.durability, Durability::Normal);
    }

    #[test]
    fn trusted_proxies_are_networks_and_none_by_default() {
        assert!(with_env(&[], FileSettings::default()).unwrap().trusted_proxies.is_empty());
        let config = with_env(&[("PASSGATE_TRUSTED_PROXIES", "127.0.0.1/32, 10.0.0.0/8,fd00::/8")], FileSettings::default()).unwrap();
        let shown: Vec<String> = config.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"]);
        assert!(config.trusted_proxies[1].contains("10.2.3.4".parse().unwrap()));
        let text: FileSettings = toml::from_str("trusted_proxies = \"192.0.2.0/24\"").unwrap();
        assert_eq!(with_env(&[], text).unwrap().trusted_proxies.len(), 1);
        let list: FileSettings = toml::from_str("trusted_proxies = [\"192.0.2.0/24\", \"::1\"]").unwrap();
        assert_eq!(with_env(&[], list).unwrap().trusted_proxies.len(), 2);
        let list: FileSettings = toml::from_str("trusted_proxies = [\"192.0.2.0/24\"]").unwrap();
        let config = with_env(&[("PASSGATE_TRUSTED_PROXIES", "")], list).unwrap();
        assert!(config.trusted_proxies.is_empty(), "the environment wins, even empty");
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.0/8;10.1.0.0/16"] {
            let err = with_env(&[("PASSGATE_TRUSTED_PROXIES", bad)], FileSettings::default()).unwrap_err();
            assert!(err.to_string().contains("PASSGATE_TRUSTED_PROXIES"), "{bad}: {err}");
        }
    }

    #[test]
    fn rates_read_as_count_per_period() {
        assert_eq!(parse_rate("10/10m"), Some(Rate { burst: 10, interval_ms: 60_000 }));
        assert_eq!(parse_rate("6000/1m"), Some(Rate { burst: 6000, interval_ms: 10 }));
        assert_eq!(parse_rate("30/h"), Some(Rate { burst: 30, interval_ms: 120_000 }));
        for bad in ["", "10", "0/1m", "10/0m", "10/1d", "x/1m", "10/m1"] {
            assert_eq!(parse_rate(bad), None, "{bad:?}");
        }
    }
}
