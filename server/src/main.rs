//! The `passgate` command line: `serve`, `demo`, `evidence`, `audit verify`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use passgate::audit::report as evidence;
use passgate::clock::{Clock, SandboxClock, SystemClock};
use passgate::config::Config;
use passgate::delivery::{self, Wake};
use passgate::notify::push::{PushSender, SandboxPush};
use passgate::notify::sms::{SandboxOutbox, SmsSender};
use passgate::notify::webpush::WebPush;
use passgate::serve::{self, ServeLimits};
use passgate::state::Senders;
use passgate::store::{Store, StoreOptions};
use passgate::{app, demo, AppState};
use passgate::{push_delivery, sms_delivery};

#[derive(Parser)]
#[command(name = "passgate", version, about = "Strong Customer Authentication service")]
struct Cli {
    /// Optional TOML settings file (environment variables win over it).
    #[arg(long, global = true, env = "PASSGATE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Create the demo data once and print fresh demo tokens as JSON
    /// (sandbox databases only).
    Demo,
    /// Print a session's evidence and audit trail as JSON, re-verifying the
    /// passkey signature offline.
    Evidence {
        /// The SCA session's id (as in the audit log).
        session: String,
    },
    /// The audit log and the evidence as hash chains.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Apply pending database migrations, then exit (run as the tables'
    /// owner; `serve` does it too when its role may).
    Migrate,
    /// PostgreSQL: give the application's role what Passgate needs and no
    /// more (SELECT and INSERT only on the append-only tables). Run as
    /// the tables' owner.
    GrantAppRole {
        /// The application's role, as it logs in.
        role: String,
    },
    /// Run one retention purge now, then exit. On PostgreSQL the owner
    /// runs it (e.g. daily) to purge the audit chains, which the
    /// application's role may not.
    Purge,
    /// Make a VAPID key pair for Web Push and print it once, as the
    /// settings to give (PASSGATE_VAPID_PRIVATE_KEY) and the public key
    /// phones subscribe with. Needs no database.
    VapidKeys,
    /// The secrets key (PASSGATE_SECRETS_KEY) and its rotation.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Re-seal every sealed secret under PASSGATE_SECRETS_KEY; afterwards
    /// the keys in PASSGATE_SECRETS_KEY_PREVIOUS open nothing any more
    /// (keep the oldest: it keys the MACs).
    Reseal,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk each chain and name the first row where it breaks (exit 1 if
    /// one does); print each chain's head, to keep elsewhere.
    Verify,
}

/// Each request allocates a few hundred small objects (headers, JSON,
/// rows); mimalloc served the full flow 4–7 % faster than glibc's malloc
/// in interleaved `make bench` runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_logs()?;
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::VapidKeys)) {
        let key = passgate::notify::webpush::VapidKey::generate();
        println!("# Web Push's VAPID key pair, made now and shown once: keep the private key secret.");
        println!("# A new pair makes every phone subscribe again.");
        println!("PASSGATE_VAPID_PRIVATE_KEY={}", key.private_base64url());
        println!("# public (the applicationServerKey, served at /device/api/push_key): {}", key.public_base64url());
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    let options = StoreOptions { durability: config.durability, ..StoreOptions::new(&config.secrets_key) };
    let options = &options;
    let store = Store::open(config.database_url.expose(), options).await.with_context(|| format!("opening {}", config.database_url))?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Demo => {
            demo::refuse_production(&config, &store).await?;
            let credentials = demo::demo_credentials(&store, SystemClock.now()).await?;
            println!("{}", serde_json::to_string(&credentials)?);
            Ok(())
        }
        Command::Evidence { session } => {
            let key = passgate::audit::evidence::EvidenceKey::new(&config.secrets_key);
            let report = evidence::report(&store, &session, &key).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.holds() {
                Ok(())
            } else {
                anyhow::bail!("the evidence of session {session} does not hold")
            }
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let key = passgate::chain::ChainKey::new(&config.secrets_key);
            // What waits for its position is linked first, as this
            // instance's linker would; a role that may not still verifies.
            if let Err(e) = store.link_chains().await {
                tracing::warn!(error = %e, "the waiting rows were not linked; verified by their row MACs");
            }
            let reports = passgate::audit::chain::verify_all(&store, &key).await?;
            println!("{}", serde_json::to_string_pretty(&reports)?);
            match reports.iter().find_map(|r| r.broken.as_ref().map(|b| (r.chain, b))) {
                None => Ok(()),
                Some((chain, at)) => anyhow::bail!("{chain} breaks at position {}: {}", at.seq, at.reason),
            }
        }
        Command::Migrate => Ok(()),
        Command::GrantAppRole { role } => {
            anyhow::ensure!(config.database_url.is_postgres(), "roles are PostgreSQL's: DATABASE_URL is not postgres://");
            let pg = passgate::store::postgres::PgStore::open(config.database_url.expose(), options).await?;
            pg.grant_application_role(&role).await?;
            println!("granted {role}: SELECT, INSERT on the append-only tables (and the chains' link columns); SELECT, INSERT, UPDATE, DELETE on the others");
            Ok(())
        }
        Command::Purge => {
            let retention = config.retention;
            let state = AppState::new(config, store, Arc::new(SystemClock), Arc::new(SandboxOutbox))?;
            let purged = state.sca.purge(&retention).await?;
            println!("{}", serde_json::to_string(&purged)?);
            Ok(())
        }
        Command::Secrets { command: SecretsCommand::Reseal } => {
            let done = passgate::account::reseal_authenticator_keys(&store, &config.secrets_key).await?;
            println!("{}", serde_json::to_string(&done)?);
            Ok(())
        }
        Command::Serve => serve(config, store).await,
        Command::VapidKeys => unreachable!("answered before the settings are read"),
    }
}

async fn serve(config: Config, store: Store) -> anyhow::Result<()> {
    demo::check_database_mode(&config, &store).await?;
    if config.sandbox() {
        demo::ensure_demo(&store, SystemClock.now()).await?;
    }
    let sms: Arc<dyn SmsSender> = match (&config.sms_provider, config.sandbox()) {
        (Some(settings), false) => {
            let client = passgate::outbound::HttpsClient::new(&passgate::outbound::ClientOptions::default())?;
            let provider = settings.clone().build(client)?;
            let wake = Wake::default();
            delivery::spawn(sms_delivery::Sender::new(store.clone(), Arc::new(SystemClock), provider, config.secrets_key.clone())?, &wake);
            Arc::new(wake)
        }
        (None, false) => {
            tracing::warn!("PASSGATE_SMS_PROVIDER=none: no SMS is sent; the outbox keeps them with their links and codes redacted");
            Arc::new(SandboxOutbox)
        }
        (provider, true) => {
            if provider.is_some() {
                tracing::warn!("sandbox mode sends no SMS: PASSGATE_SMS_PROVIDER is ignored (the outbox is at /dev/sms)");
            }
            Arc::new(SandboxOutbox)
        }
    };
    // The sandbox's clock, which partners move forward: the push sender
    // keeps time with it, or a push written at its "now" would wait until
    // the real time caught up.
    let sandbox_clock = config.sandbox().then(|| Arc::new(SandboxClock::default()));
    let clock: Arc<dyn Clock> = match &sandbox_clock {
        Some(sandbox) => sandbox.clone(),
        None => Arc::new(SystemClock),
    };
    let push: Arc<dyn PushSender> = match &config.web_push {
        Some(settings) => {
            let client = passgate::outbound::HttpsClient::new(&passgate::outbound::ClientOptions::default())?;
            let web_push = WebPush::new(client, settings.key.clone(), settings.subject.clone(), push_delivery::PUSH_TTL);
            let wake = Wake::default();
            delivery::spawn(push_delivery::Sender::new(store.clone(), clock.clone(), Arc::new(web_push))?, &wake);
            tracing::info!(application_server_key = %settings.key.public_base64url(), "Web Push to paired phones is on");
            Arc::new(wake)
        }
        None => Arc::new(SandboxPush),
    };
    let senders = Senders { sms, push };
    let retention = config.retention;
    if let Some(metrics_bind) = config.metrics_bind {
        let local = passgate::metrics::serve(metrics_bind).await?;
        tracing::info!(%local, "metrics at /metrics");
    }
    let limits = ServeLimits {
        header_read_timeout: config.header_read_timeout,
        request_timeout: config.request_timeout,
        write_timeout: config.write_timeout,
        max_connections: passgate::serve::connections_that_fit(config.max_connections),
        max_connections_per_client: config.max_connections_per_client,
        uncapped: config.trusted_proxies.clone(),
    };
    let bind = config.bind;
    let origin = config.origin.clone();
    let mode = config.mode;
    let tls = match &config.tls {
        Some(files) => {
            let certificate = passgate::tls::Certificate::load(files.clone())?;
            certificate.reload_on_sighup()?;
            Some(certificate.acceptor()?)
        }
        None => None,
    };
    let state = match sandbox_clock {
        Some(sandbox) => AppState::sandbox_with_clock(config, store, sandbox, senders)?,
        None => AppState::new(config, store, clock, senders)?,
    };
    state.sca.spawn_purger(retention);
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, %origin, ?mode, "passgate listening");
    println!("Passgate is listening on {local} ({mode:?} mode); open {origin}");
    match tls {
        Some(tls) => serve::serve_https(listener, app(state), limits, tls, shutdown()).await?,
        None => serve::serve(listener, app(state), limits, shutdown()).await?,
    }
    Ok(())
}

/// Logs on stderr, filtered by `RUST_LOG`; `PASSGATE_LOG_FORMAT=json` for one
/// JSON object per line (for a log pipeline), `text` (the default) for people.
fn init_logs() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "passgate=info,tower_http=info".into());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("PASSGATE_LOG_FORMAT").as_deref() {
        Ok("json") => logs.json().init(),
        Ok("text") | Err(_) => logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init(),
        Ok(other) => anyhow::bail!("PASSGATE_LOG_FORMAT must be text or json, not {other:?}"),
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish the requests in flight.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
