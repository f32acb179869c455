//! Two real `passgate serve` processes on one database (PostgreSQL under
//! `PASSGATE_TEST_BACKEND=postgres`, else one SQLite file): one is killed
//! with SIGKILL in the middle of a load of approvals and replays; every
//! transfer answered `201` is still there.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use passgate::store::{Store, StoreOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{database_url_in, transfer_body};

struct Instance {
    child: Child,
    port: u16,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn passgate(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_passgate"));
    command
        .env("DATABASE_URL", database_url)
        .env("PASSGATE_MODE", "sandbox")
        .env("PASSGATE_ORIGIN", "http://localhost:8080")
        .env("PASSGATE_LIMIT_SESSIONS_PER_PARTNER", "100000/1s")
        .env("PASSGATE_LIMIT_OPEN_SESSIONS_PER_USER", "100000")
        .env("RUST_LOG", "passgate=error")
        .env_remove("PASSGATE_BIND");
    command
}

async fn start(database_url: &str) -> Instance {
    start_with(database_url, &[]).await
}

async fn start_with(database_url: &str, env: &[(&str, &str)]) -> Instance {
    let port = free_port();
    let mut command = passgate(database_url);
    command.arg("serve").env("PASSGATE_BIND", format!("127.0.0.1:{port}")).stdout(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let child = command.spawn().unwrap();
    let instance = Instance { child, port };
    for _ in 0..200 {
        if send(port, "GET", "/healthz", "", &[], None).await.is_ok() {
            return instance;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("passgate did not start on {port}");
}

/// One HTTP/1.1 request on its own connection: (status, JSON body).
async fn send(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = body.unwrap_or_default();
    request.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.get(9..12).and_then(|s| s.parse().ok()).ok_or(std::io::ErrorKind::UnexpectedEof)?;
    let json = text.split_once("\r\n\r\n").and_then(|(_, b)| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
    Ok((status, json))
}

/// One approval and replay through `port`: the transfer's id if answered 201.
async fn approve_and_replay(port: u16, token: &str, amount: &str) -> std::io::Result<Option<String>> {
    let body = transfer_body(amount);
    let mock = [("X-Qonto-2fa-Preference", "mock")];
    let (_, first) = send(port, "POST", "/v2/sepa/transfers", token, &mock, Some(&body)).await?;
    let Some(sca) = first["sca_session_token"].as_str() else { return Ok(None) };
    send(port, "POST", &format!("/v2/mocked_sca_sessions/{sca}/allow"), token, &[], None).await?;
    let replay = [("X-Qonto-2fa-Preference", "mock"), ("X-Qonto-Sca-Session-Token", sca)];
    let (status, created) = send(port, "POST", "/v2/sepa/transfers", token, &replay, Some(&body)).await?;
    Ok((status == 201).then(|| created["transfer"]["id"].as_str().unwrap_or_default().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_loses_no_answered_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = database_url_in(dir.path()).await;
    let demo = passgate(&database_url).arg("demo").output().unwrap();
    assert!(demo.status.success(), "{}", String::from_utf8_lossy(&demo.stderr));
    let creds: Value = serde_json::from_slice(&demo.stdout).unwrap();
    let token = creds["partner_token"].as_str().unwrap().to_owned();
    let mut doomed = start(&database_url).await;
    let survivor = start(&database_url).await;

    // Eight clients, half on each instance, 15 attempts each. The doomed
    // instance is killed once it has answered five transfers.
    let ports = [doomed.port, survivor.port];
    let (progress, mut on_doomed) = tokio::sync::watch::channel(0usize);
    let progress = std::sync::Arc::new(progress);
    let clients = (0..8).map(|client| {
        let (token, progress) = (token.clone(), progress.clone());
        tokio::spawn(async move {
            let (mut answered, mut refused) = (Vec::new(), 0);
            for round in 0..15u32 {
                let port = ports[client % 2];
                match approve_and_replay(port, &token, &format!("{client}.{round:02}")).await {
                    Ok(Some(id)) => {
                        answered.push(id);
                        if port == ports[0] {
                            progress.send_modify(|n| *n += 1);
                        }
                    }
                    Ok(None) => {}
                    // The killed instance refuses or drops its connections.
                    Err(_) => refused += 1,
                }
            }
            (answered, refused)
        })
    });
    let load = tokio::spawn(futures::future::join_all(clients));
    on_doomed.wait_for(|n| *n >= 5).await.unwrap();
    doomed.child.kill().unwrap(); // SIGKILL, mid-load
    doomed.child.wait().unwrap();
    let results: Vec<(Vec<String>, u32)> = load.await.unwrap().into_iter().map(Result::unwrap).collect();
    let refused: u32 = results.iter().map(|(_, r)| r).sum();
    assert!(refused > 0, "the kill did not land in the middle of the load");
    let answered: Vec<String> = results.into_iter().flat_map(|(a, _)| a).collect();
    assert!(answered.len() >= 60, "the survivor kept serving: {} transfers", answered.len());

    let store = Store::open(&database_url, &StoreOptions::new(&passgate::sealed::SecretsKey::sandbox())).await.unwrap();
    let company = store.caller_by_access_token(&passgate::token::Secret::parse(&token).unwrap().hash()).await.unwrap().unwrap().company_id;
    let stored: std::collections::HashSet<String> =
        store.transfers_of_company(&company, 10_000).await.unwrap().into_iter().map(|t| t.id).collect();
    let lost: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
    assert!(lost.is_empty(), "answered 201 but not stored: {lost:?}");
    drop(survivor);
    // Both instances appended to the audit chains at once, one was killed
    // mid-append: each chain is still whole, position after position.
    let verify = passgate(&database_url).args(["audit", "verify"]).output().unwrap();
    let reports: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert!(verify.status.success(), "{reports:#}");
    assert!(reports[0]["verified"].as_u64().unwrap() >= 120, "{reports:#}");
}

#[tokio::test]
async fn metrics_count_requests_and_decisions_on_their_own_address_and_name_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = database_url_in(dir.path()).await;
    let demo = passgate(&database_url).arg("demo").output().unwrap();
    let creds: Value = serde_json::from_slice(&demo.stdout).unwrap();
    let token = creds["partner_token"].as_str().unwrap().to_owned();
    let metrics_port = free_port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let instance = start_with(&database_url, &[("PASSGATE_METRICS_BIND", &metrics_bind)]).await;
    assert!(approve_and_replay(instance.port, &token, "3.00").await.unwrap().is_some());

    let (status, body) = send(instance.port, "GET", "/metrics", "", &[], None).await.unwrap();
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "metrics are never on the public address");
    // An invented method is counted, under `other`, not under its own name.
    let (status, _) = send(instance.port, "BREW", "/v2/sepa/transfers", &token, &[], None).await.unwrap();
    assert_eq!(status, 405);
    let mut stream = TcpStream::connect(("127.0.0.1", metrics_port)).await.unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut scraped = String::new();
    stream.read_to_string(&mut scraped).await.unwrap();
    for expected in [
        r#"passgate_http_requests_total{route="/v2/sepa/transfers",method="POST",status="428"} 1"#,
        r#"passgate_http_requests_total{route="/v2/sepa/transfers",method="POST",status="201"} 1"#,
        r#"passgate_sca_sessions_opened_total{method="mock"} 1"#,
        r#"passgate_sca_sessions_decided_total{method="mock",decision="allow"} 1"#,
        r#"passgate_replays_total{outcome="ran"} 1"#,
        // Routes by their pattern, never the path that carries the token.
        r#"route="/v2/mocked_sca_sessions/{token}/allow""#,
        "passgate_http_request_duration_seconds_bucket",
        "passgate_db_commit_seconds",
        r#"passgate_http_requests_total{route="/v2/sepa/transfers",method="other",status="405"} 1"#,
    ] {
        assert!(scraped.contains(expected), "{expected} missing from:\n{scraped}");
    }
    assert!(!scraped.contains("BREW"), "no label per invented method");
    for secret in [token.as_str(), creds["user_phone"].as_str().unwrap()] {
        assert!(!scraped.contains(secret), "a token or phone number in the metrics");
    }
}

#[test]
fn logs_can_be_one_json_object_per_line() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let mut child = passgate(&url)
        .arg("serve")
        .env("PASSGATE_BIND", format!("127.0.0.1:{}", free_port()))
        .env("PASSGATE_LOG_FORMAT", "json")
        .env("RUST_LOG", "passgate=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first line it logs (at start-up), read off the pipe.
    let first = std::io::BufReader::new(child.stderr.take().unwrap()).lines().next();
    let _ = child.kill();
    let _ = child.wait();
    let line = first.expect("a log line").unwrap();
    let json: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert!(json["level"].is_string() && json["fields"]["message"].is_string(), "{line}");

    let out = passgate(&url).arg("serve").env("PASSGATE_LOG_FORMAT", "xml").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PASSGATE_LOG_FORMAT"));
}
