//! Settings, read once at start-up from an optional TOML file and the
//! environment (the environment wins), and validated before anything runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use url::Url;

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
    /// `DATABASE_URL`: SQLite URL.
    pub database_url: String,
    /// `PASSGATE_STATIC_DIR`: the built approval page (Trunk's `dist`).
    pub static_dir: PathBuf,
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
    static_dir: Option<PathBuf>,
}

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
        let database_url = env("DATABASE_URL").or(file.database_url).unwrap_or_else(|| "sqlite://data/passgate.db".into());
        if !database_url.starts_with("sqlite:") {
            bail!("DATABASE_URL must be a sqlite: URL (PostgreSQL is not supported yet)");
        }
        let static_dir = env("PASSGATE_STATIC_DIR").map(PathBuf::from).or(file.static_dir).unwrap_or_else(|| "frontend/dist".into());
        Ok(Config { bind, origin, rp_id, mode, database_url, static_dir })
    }

    pub fn sandbox(&self) -> bool {
        self.mode == Mode::Sandbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with_env(pairs: &[(&str, &str)], file: FileSettings) -> anyhow::Result<Config> {
        let env: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_sources(file, |k| env.get(k).cloned())
    }

    #[test]
    fn defaults_run_a_local_sandbox() {
        let config = with_env(&[], FileSettings::default()).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.origin.as_str(), "http://localhost:8080/");
        assert_eq!(config.rp_id, "localhost");
        assert_eq!(config.mode, Mode::Sandbox);
        assert_eq!(config.database_url, "sqlite://data/passgate.db");
    }

    #[test]
    fn the_environment_overrides_the_file() {
        let file: FileSettings = toml::from_str("origin = \"https://a.example\"\nmode = \"production\"").unwrap();
        let config = with_env(&[("PASSGATE_ORIGIN", "https://b.example")], file).unwrap();
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
    }
}
