//! The test harness: a Passgate application on a fresh SQLite file, driven
//! in-process through its router, with a hand-moved clock.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use passgate::clock::{Clock, ManualClock, SystemClock};
use passgate::config::{Config, Mode};
use passgate::store::{Store, StoreOptions};
use passgate::{app, demo, AppState};
use serde_json::{json, Value};
use shared::DemoCredentials;
use tower::ServiceExt;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::WebauthnAuthenticator;

pub const ORIGIN: &str = "http://localhost:8080";
pub const IBAN: &str = "FR7630006000011234567890189";

#[derive(Clone)]
pub struct TestApp {
    pub router: Router,
    pub store: Store,
    pub clock: ManualClock,
    pub creds: DemoCredentials,
    /// Every SMS handed to the sender (what a provider would send, whole
    /// even where the outbox keeps a redacted copy).
    pub sent: Arc<SentSms>,
    pub database_url: String,
    mode: Mode,
    tune: fn(&mut Config),
    _dir: Arc<tempfile::TempDir>,
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or_default()
    }
}

pub fn config(database_url: &str, mode: passgate::config::Mode) -> Config {
    let mut config = Config::load(None).unwrap();
    config.database_url = passgate::config::DatabaseUrl::parse(database_url).unwrap();
    config.origin = Url::parse(ORIGIN).unwrap();
    config.rp_id = "localhost".into();
    config.mode = mode;
    config
}

pub async fn spawn_app() -> TestApp {
    spawn_app_in(Mode::Sandbox).await
}

pub async fn spawn_app_in(mode: Mode) -> TestApp {
    spawn_app_with(mode, |_| {}).await
}

/// An application whose settings `tune` adjusts first, on a fresh
/// database of the backend under test: SQLite, or PostgreSQL when
/// `PASSGATE_TEST_BACKEND=postgres` (`make test` runs the suite on both).
pub async fn spawn_app_with(mode: Mode, tune: fn(&mut Config)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let database_url = database_url_in(dir.path()).await;
    let clock = ManualClock::starting_at(SystemClock.now());
    let store = Store::open(&database_url, &StoreOptions::new(&passgate::sealed::SecretsKey::sandbox())).await.unwrap();
    let creds = demo::demo_credentials_with(&store, clock.now(), demo_passwords()).await.unwrap();
    let sent = Arc::new(SentSms::default());
    let router = build(&database_url, store.clone(), clock.clone(), mode, tune, sent.clone());
    TestApp { router, store, clock, creds, sent, database_url, mode, tune, _dir: dir }
}

/// The demo's passwords, hashed once per run (argon2 is slow on purpose:
/// two hashes per test were most of a test's set-up).
fn demo_passwords() -> &'static demo::DemoPasswords {
    static PASSWORDS: std::sync::OnceLock<demo::DemoPasswords> = std::sync::OnceLock::new();
    PASSWORDS.get_or_init(|| demo::DemoPasswords {
        user: demo::DemoPassword::fresh_blocking().unwrap(),
        admin: demo::DemoPassword::fresh_blocking().unwrap(),
    })
}

/// The SMS sender of the tests: keeps what it is handed.
#[derive(Default)]
pub struct SentSms(std::sync::Mutex<Vec<passgate::notify::sms::OutgoingSms>>);

impl SentSms {
    /// The newest one-time code sent.
    pub fn last_code(&self) -> Option<String> {
        self.0.lock().unwrap().iter().rev().find_map(|sms| sms.otp.clone())
    }

    pub fn last_body(&self) -> Option<String> {
        self.0.lock().unwrap().last().map(|sms| sms.body.clone())
    }

    pub fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[async_trait::async_trait]
impl passgate::notify::sms::SmsSender for SentSms {
    async fn deliver(&self, sms: &passgate::notify::sms::OutgoingSms) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(sms.clone());
        Ok(())
    }
}

/// A fresh database of the backend under test; a SQLite file in `dir`
/// (which the caller keeps while the database is in use).
pub async fn database_url_in(dir: &std::path::Path) -> String {
    match std::env::var("PASSGATE_TEST_BACKEND").as_deref() {
        Ok("postgres") => postgres_database().await,
        Ok("sqlite") | Err(_) => format!("sqlite://{}", dir.join("passgate.db").display()),
        Ok(other) => panic!("PASSGATE_TEST_BACKEND must be sqlite or postgres, not {other}"),
    }
}

/// A fresh database on the cluster of `PASSGATE_TEST_POSTGRES`
/// (`tools/with-postgres.sh` starts one).
async fn postgres_database() -> String {
    let cluster = std::env::var("PASSGATE_TEST_POSTGRES").expect("PASSGATE_TEST_POSTGRES: run through make test (tools/with-postgres.sh)");
    let name = format!("passgate_{}", uuid::Uuid::new_v4().simple());
    let (client, connection) = tokio_postgres::connect(&cluster, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    format!("{}/{name}", cluster.rsplit_once('/').unwrap().0)
}

fn build(database_url: &str, store: Store, clock: ManualClock, mode: Mode, tune: fn(&mut Config), sent: Arc<SentSms>) -> Router {
    let mut config = config(database_url, mode);
    tune(&mut config);
    let state = AppState::new(config, store, Arc::new(clock), sent).unwrap();
    app(state)
}

impl TestApp {
    /// A new process on the same database: fresh pool, fresh router.
    pub async fn restart(&self) -> TestApp {
        let store = Store::open(&self.database_url, &StoreOptions::new(&passgate::sealed::SecretsKey::sandbox())).await.unwrap();
        TestApp {
            router: build(&self.database_url, store.clone(), self.clock.clone(), self.mode, self.tune, self.sent.clone()),
            store,
            clock: self.clock.clone(),
            creds: self.creds.clone(),
            sent: self.sent.clone(),
            database_url: self.database_url.clone(),
            mode: self.mode,
            tune: self.tune,
            _dir: self._dir.clone(),
        }
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply { status, headers, body }
    }

    pub fn token(&self) -> &str {
        &self.creds.partner_token
    }

    /// The id of the session behind a partner's token (what an operator
    /// finds in the audit log).
    pub async fn session_id(&self, token: &str) -> String {
        let hash = passgate::token::Secret::parse(token).unwrap().hash();
        self.store.session_by_token(&hash, passgate::store::Lookup::Settled).await.unwrap().unwrap().id
    }

    /// The demo user's id.
    pub async fn user_id(&self) -> String {
        let token = passgate::token::Secret::parse(self.token()).unwrap();
        self.store.caller_by_access_token(&token.hash()).await.unwrap().unwrap().owner.user_id
    }

    /// The user's audit events, newest first.
    pub async fn audit_of_user(&self, user_id: &str, limit: u32) -> Vec<passgate::store::AuditRow> {
        let query = passgate::store::AuditQuery { scope: passgate::store::Scope::User(user_id), category: None, before_id: None, limit };
        self.store.audit_log(query).await.unwrap().into_iter().map(|e| e.row).collect()
    }

    /// A partner API call with the demo partner's token.
    pub async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {}", self.token()));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request.body(Body::from(body.unwrap_or_default().to_owned())).unwrap()).await
    }

    /// `POST /v2/sepa/transfers` with a preference and, for a replay, a token.
    pub async fn transfer(&self, body: &str, preference: &str, sca_token: Option<&str>) -> Reply {
        let mut headers = vec![("x-qonto-2fa-preference", preference)];
        if let Some(token) = sca_token {
            headers.push(("x-qonto-sca-session-token", token));
        }
        self.call(Method::POST, "/v2/sepa/transfers", &headers, Some(body)).await
    }

    /// Starts a transfer: expects the 428 and returns its token.
    pub async fn start_transfer(&self, body: &str, preference: &str) -> String {
        let reply = self.transfer(body, preference, None).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (428, "sca_required"), "{:?}", reply.body);
        reply.body["sca_session_token"].as_str().unwrap().to_owned()
    }

    pub async fn poll(&self, token: &str) -> Reply {
        self.clock.advance_millis(1_000);
        self.call(Method::GET, &format!("/v2/sca_sessions/{token}"), &[], None).await
    }

    pub async fn mock_decide(&self, token: &str, decision: &str) -> Reply {
        self.call(Method::POST, &format!("/v2/mocked_sca_sessions/{token}/{decision}"), &[], None).await
    }

    /// The approval link of the newest SMS: its secret part.
    pub async fn latest_link(&self) -> String {
        let outbox = self.store.sms_outbox(Some(&self.creds.user_phone), 1).await.unwrap();
        let link = outbox.first().and_then(|m| m.link.clone()).expect("an SMS with a link");
        link.rsplit('/').next().unwrap().to_owned()
    }

    pub async fn approval_post(&self, link: &str, step: &str, body: Option<Value>) -> Reply {
        let mut request = Request::builder().method(Method::POST).uri(format!("/api/approvals/{link}/{step}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    pub async fn approval_view(&self, link: &str) -> Reply {
        self.send(Request::get(format!("/api/approvals/{link}")).body(Body::empty()).unwrap()).await
    }

    /// Starts a first passkey's creation from the link, with the user's
    /// password.
    pub async fn register_start(&self, link: &str) -> Reply {
        self.register_start_with(link, &self.creds.user_password).await
    }

    pub async fn register_start_with(&self, link: &str, password: &str) -> Reply {
        self.approval_post(link, "passkey/register/start", Some(json!({"password": password}))).await
    }

    /// Creates a first passkey on `authenticator` through the link; the
    /// reply of `register/finish`. The session is not decided by it: it
    /// waits for an assertion of the new passkey (see
    /// [`TestApp::register_and_approve`]).
    pub async fn register_passkey(&self, link: &str, authenticator: &mut SoftPasskey) -> Reply {
        let start = self.register_start(link).await;
        assert_eq!(start.status, 200, "{:?}", start.body);
        let options = serde_json::from_value(start.body).unwrap();
        let answer = authenticator.do_registration(Url::parse(ORIGIN).unwrap(), options).unwrap();
        self.approval_post(link, "passkey/register/finish", Some(serde_json::to_value(answer).unwrap())).await
    }

    /// The page's first approval: creates a first passkey on
    /// `authenticator` (answered `waiting`), then approves with it over a
    /// fresh, action-bound challenge (one more touch); the reply of
    /// `authenticate/finish`.
    pub async fn register_and_approve(&self, link: &str, authenticator: &mut SoftPasskey) -> Reply {
        let enrolled = self.register_passkey(link, authenticator).await;
        assert_eq!((enrolled.status.as_u16(), &enrolled.body), (200, &json!({"state": "waiting"})), "the passkey alone approves nothing");
        self.authenticate_passkey(link, authenticator).await
    }

    /// Approves through the link with an existing passkey.
    pub async fn authenticate_passkey(&self, link: &str, authenticator: &mut SoftPasskey) -> Reply {
        let answer = self.passkey_assertion(link, authenticator).await;
        self.approval_post(link, "passkey/authenticate/finish", Some(answer)).await
    }

    pub async fn passkey_assertion(&self, link: &str, authenticator: &mut SoftPasskey) -> Value {
        let start = self.approval_post(link, "passkey/authenticate/start", None).await;
        assert_eq!(start.status, 200, "{:?}", start.body);
        let options = serde_json::from_value(start.body).unwrap();
        let answer = authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap();
        serde_json::to_value(answer).unwrap()
    }
}

pub fn transfer_body(amount: &str) -> String {
    json!({"amount": amount, "currency": "EUR", "beneficiary": {"name": "ACME SAS", "iban": IBAN}, "reference": "INV-42"}).to_string()
}

pub fn soft_passkey() -> SoftPasskey {
    // `true`: the soft authenticator reports user verification.
    SoftPasskey::new(true)
}

/// A browser in the account area: keeps its session cookie as browsers do
/// (set, replaced, cleared by `Max-Age=0`), sends our `Origin`, and sends
/// the CSRF token of its latest session view.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookie: Option<String>,
    /// The trusted-browser cookie.
    pub trusted: Option<String>,
    /// The device cookie (a browser that signed in to the account before).
    pub device: Option<String>,
    /// A paired phone's device credential (sent under `/device` only).
    pub phone: Option<String>,
    pub csrf: Option<String>,
}

pub const SESSION_COOKIE: &str = "passgate_session";
pub const TRUSTED_COOKIE: &str = "passgate_trusted";
pub const DEVICE_COOKIE: &str = "passgate_device";
pub const PHONE_COOKIE: &str = "passgate_phone";

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser { app, cookie: None, trusted: None, device: None, phone: None, csrf: None }
    }

    /// A request with the browser's cookie, our origin and its CSRF token,
    /// then `headers` (which may replace them: `("origin", "…")`).
    pub async fn request(&mut self, method: Method, path: &str, body: Option<Value>, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        let replaced = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if !replaced("origin") {
            request = request.header("origin", ORIGIN);
        }
        if let (Some(csrf), false) = (&self.csrf, replaced("x-csrf-token")) {
            request = request.header("x-csrf-token", csrf);
        }
        let phone = if path.starts_with("/device/") { &self.phone } else { &None };
        let cookies: Vec<String> =
            [(SESSION_COOKIE, &self.cookie), (TRUSTED_COOKIE, &self.trusted), (DEVICE_COOKIE, &self.device), (PHONE_COOKIE, phone)]
                .into_iter()
                .filter_map(|(name, value)| value.as_ref().map(|v| format!("{name}={v}")))
                .collect();
        if !cookies.is_empty() {
            request = request.header("cookie", cookies.join("; "));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers.iter().filter(|(_, v)| !v.is_empty()) {
            request = request.header(*name, *value);
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let reply = self.app.send(request.body(Body::from(body)).unwrap()).await;
        for set in reply.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            let value = (!set.contains("Max-Age=0")).then(|| value.to_owned());
            if name.ends_with(TRUSTED_COOKIE) {
                self.trusted = value;
            } else if name.ends_with(DEVICE_COOKIE) {
                self.device = value;
            } else if name.ends_with(PHONE_COOKIE) {
                self.phone = value;
            } else {
                self.cookie = value;
            }
        }
        if let Some(csrf) = reply.body.get("csrf_token").and_then(Value::as_str) {
            self.csrf = Some(csrf.to_owned());
        }
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, body: Option<Value>) -> Reply {
        self.request(Method::POST, path, body, &[]).await
    }

    pub async fn sign_in(&mut self, email: &str, password: &str) -> Reply {
        self.post("/api/account/sign-in", Some(json!({"email": email, "password": password}))).await
    }

    /// Proves possession of the registered phone (a user without a second
    /// factor): asks for the step-up code by SMS and gives it back.
    pub async fn step_up_by_sms(&mut self) -> Reply {
        let sent = self.post("/api/account/step-up/sms", None).await;
        assert_eq!(sent.status, 204, "{:?}", sent.body);
        let code = self.app.sent.last_code().unwrap();
        let reply = self.post("/api/account/step-up", Some(json!({"code": code}))).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply
    }

    /// Makes binding a factor open to this session: nothing if its proofs
    /// are fresh, else the password (if due) and the SMS code (a user
    /// without a second factor; one with a factor steps up with it).
    pub async fn stepped_up(&mut self) {
        let due = self.get("/api/account/step-up").await;
        assert_eq!(due.status, 200, "{:?}", due.body);
        if due.body["done"] == true {
            return;
        }
        assert_eq!(due.body["ways"], json!(["sms"]), "this user steps up with a factor: {:?}", due.body);
        if due.body["password"] == true {
            let password = self.app.creds.user_password.clone();
            let reply = self.post("/api/account/step-up", Some(json!({"password": password}))).await;
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        }
        let reply = self.step_up_by_sms().await;
        assert_eq!(reply.body["done"], true, "{:?}", reply.body);
    }

    /// Steps up with a passkey (both factors at once); its answer.
    pub async fn step_up_with_passkey(&mut self, authenticator: &mut SoftPasskey) -> Reply {
        let start = self.post("/api/account/step-up/passkey/start", None).await;
        assert_eq!(start.status, 200, "{:?}", start.body);
        let options = serde_json::from_value(start.body).unwrap();
        let answer = serde_json::to_value(authenticator.do_authentication(Url::parse(ORIGIN).unwrap(), options).unwrap()).unwrap();
        self.post("/api/account/step-up/passkey/finish", Some(answer)).await
    }

    /// Signs in as the demo user; expects it to work.
    pub async fn sign_in_as_user(&mut self) -> Reply {
        let (email, password) = (self.app.creds.user_email.clone(), self.app.creds.user_password.clone());
        let reply = self.sign_in(&email, &password).await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        reply
    }
}

/// The demo user with an authenticator app; returns its key.
pub async fn user_with_app(app: &TestApp) -> passgate::account::totp::TotpKey {
    let mut browser = Browser::new(app);
    browser.sign_in_as_user().await;
    browser.stepped_up().await;
    let setup = browser.post("/api/account/totp/setup", None).await;
    let key = passgate::account::totp::TotpKey::from_base32(setup.body["secret"].as_str().unwrap()).unwrap();
    let code = key.code_at(app.clock.now()).unwrap();
    assert_eq!(browser.post("/api/account/totp/confirm", Some(json!({"code": code}))).await.status, 200);
    key
}

/// Signs in with the password and the app's next code, trusting the browser or not.
pub async fn two_factor_sign_in(app: &TestApp, browser: &mut Browser<'_>, key: &passgate::account::totp::TotpKey, trust: bool) {
    assert_eq!(browser.sign_in_as_user().await.body["stage"], "second_factor");
    app.clock.advance_millis(30_000);
    let code = key.code_at(app.clock.now()).unwrap();
    let reply = browser.post("/api/account/sign-in/totp", Some(json!({"code": code, "trust_browser": trust}))).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}
