//! The approval page and the static files: encodings, caching, CSP, and
//! paths that name no file.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use base64::Engine;
use http_body_util::BodyExt;
use passgate::config::Mode;
use passgate::notify::sms::SandboxOutbox;
use passgate::{app, AppState};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tower::ServiceExt;

use crate::helpers::{self, TestApp};

const LOADER: &str = "\nimport init from '/app-0123456789abcdef.js';\nawait init();\n";
const WASM: &str = "app-0123456789abcdef_bg.wasm";
const LINK: &str = "q5Yx0_Tj-2Vb8dEwKsXn3mA1pLr7uHc9ZfGt4oI6eBy";

/// A build as Trunk and tools/precompress.mjs leave it, with stand-in
/// bytes for the compressed variants (the server sends them as they are).
fn build(dir: &Path) {
    let html = format!("<!doctype html><html><head><script type=\"module\">{LOADER}</script></head><body></body></html>");
    std::fs::write(dir.join("index.html"), html).unwrap();
    std::fs::write(dir.join("index.html.br"), "brotli page").unwrap();
    std::fs::write(dir.join("index.html.gz"), "gzip page").unwrap();
    std::fs::write(dir.join(WASM), "wasm").unwrap();
    std::fs::write(dir.join(format!("{WASM}.br")), "brotli wasm").unwrap();
    std::fs::write(dir.join("robots.txt"), "User-agent: *").unwrap();
    // The root page: plain HTML under `home/`.
    let home = dir.join("home");
    std::fs::create_dir(&home).unwrap();
    std::fs::write(home.join("index.html"), "<!doctype html><html><body>home</body></html>").unwrap();
    std::fs::write(home.join("index.html.br"), "brotli home").unwrap();
    std::fs::write(home.join("index.html.gz"), "gzip home").unwrap();
    // The account area: a bundle of its own under `account/`.
    let account = dir.join("account");
    std::fs::create_dir(&account).unwrap();
    let html = format!("<!doctype html><html><head><script type=\"module\">{ACCOUNT_LOADER}</script></head><body>account</body></html>");
    std::fs::write(account.join("index.html"), html).unwrap();
    std::fs::write(account.join(ACCOUNT_WASM), "account wasm").unwrap();
    // The phone app: a bundle with a service worker and a manifest.
    let device = dir.join("device");
    std::fs::create_dir(&device).unwrap();
    std::fs::write(device.join("index.html"), "<!doctype html><html><body>device</body></html>").unwrap();
    std::fs::write(device.join("sw.js"), "self.addEventListener('push', () => {});").unwrap();
    std::fs::write(device.join("manifest.webmanifest"), r#"{"name":"Passgate","start_url":"/device"}"#).unwrap();
}

const ACCOUNT_LOADER: &str = "\nimport init from '/account/account-0123456789abcdef.js';\nawait init();\n";
const ACCOUNT_WASM: &str = "account-0123456789abcdef_bg.wasm";

#[tokio::test]
async fn the_account_area_s_routes_are_its_page_and_its_files_are_files() {
    let site = site().await;
    for path in ["/account", "/account/sign-in", "/account/security/authenticator", "/account/company"] {
        let answer = site.get(path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(String::from_utf8_lossy(&answer.body).contains("<body>account</body>"), "{path}");
        assert_eq!(answer.header("cache-control"), "no-store", "{path}");
        // Its loader runs: the CSP names its hash, and not the approval page's.
        let hash = |loader: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(loader.as_bytes()));
        let csp = answer.header("content-security-policy");
        assert!(csp.contains(&format!("'sha256-{}'", hash(ACCOUNT_LOADER))), "{path}");
        assert!(!csp.contains(&hash(LOADER)), "{path}");
    }
    let wasm = site.get(&format!("/account/{ACCOUNT_WASM}"), None).await;
    assert_eq!((wasm.status, wasm.body.as_slice()), (StatusCode::OK, b"account wasm".as_slice()));
    assert!(wasm.header("cache-control").contains("immutable"));
    let missing = site.get("/account/account-fedcba9876543210.js", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "a file that is not there is not the page");
}

#[tokio::test]
async fn the_phone_app_s_service_worker_controls_the_app_and_its_api_is_never_the_page() {
    let site = site().await;
    for path in ["/device", "/device/approvals/0193a1b2", "/device/settings"] {
        let answer = site.get(path, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert!(String::from_utf8_lossy(&answer.body).contains("<body>device</body>"), "{path}");
    }
    // Served from the app's directory, the worker may still control the
    // start URL `/device` (not under `/device/`): the header allows it.
    // Revalidated on each update check, never cached for a year.
    let worker = site.get("/device/sw.js", None).await;
    assert_eq!(worker.status, StatusCode::OK);
    assert_eq!(worker.header("service-worker-allowed"), "/device");
    assert_eq!(worker.header("cache-control"), "no-cache");
    assert!(worker.header("content-type").contains("javascript"), "{}", worker.header("content-type"));
    let manifest = site.get("/device/manifest.webmanifest", None).await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(manifest.header("content-type"), "application/manifest+json");
    assert_eq!(manifest.header("service-worker-allowed"), "", "only the worker widens its scope");
    // No other app's worker, and no unknown API path, is anything but a 404.
    for path in ["/account/sw.js", "/device/api", "/device/api/unknown", "/device/api/approvals/x/unknown"] {
        let answer = site.get(path, None).await;
        assert_eq!((answer.status, answer.json()["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}");
    }
}

struct Site {
    router: Router,
    _keep: (TestApp, TempDir),
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// The test application's store and clock, with a router serving `build`.
async fn site() -> Site {
    let test_app = helpers::spawn_app().await;
    let files = tempfile::tempdir().unwrap();
    build(files.path());
    // The URL goes unused: the store is the test application's.
    let mut config = helpers::config("sqlite://unused.db", Mode::Sandbox);
    config.static_dir = files.path().to_path_buf();
    let clock = Arc::new(test_app.clock.clone());
    let state = AppState::new(config, test_app.store.clone(), clock, Arc::new(SandboxOutbox)).unwrap();
    Site { router: app(state), _keep: (test_app, files) }
}

impl Site {
    async fn get(&self, path: &str, accept_encoding: Option<&str>) -> Answer {
        self.send(Method::GET, path, accept_encoding).await
    }

    async fn send(&self, method: Method, path: &str, accept_encoding: Option<&str>) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(value) = accept_encoding {
            request = request.header("accept-encoding", value);
        }
        let response = self.router.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer { status, headers, body }
    }
}

#[tokio::test]
async fn a_path_that_names_no_file_is_a_json_404_never_a_500() {
    let site = site().await;
    let too_long = format!("/{}", "a".repeat(300));
    let too_long_hashed = format!("/{}-0123456789abcdef.js", "a".repeat(300));
    let too_long_inside = format!("/{}/x.js", "a".repeat(300));
    let paths = [
        too_long.as_str(),
        too_long_hashed.as_str(),
        too_long_inside.as_str(),
        "/index.html/x",
        "/%00",
        "/a%00b.js",
        "/..%2f..%2fetc/passwd",
        "/nothing-0123456789abcdef.js",
        "/sca",
    ];
    for path in paths {
        for encoding in [None, Some("br, gzip")] {
            let answer = site.get(path, encoding).await;
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(answer.json()["code"], "not_found", "{path}");
            assert!(!answer.header("cache-control").contains("immutable"), "{path}");
        }
    }
}

#[tokio::test]
async fn the_page_comes_in_the_best_encoding_the_browser_takes_and_is_never_stored() {
    let site = site().await;
    let cases = |page: &'static str| {
        [
            (Some("gzip, deflate, br, zstd"), "br", format!("brotli {page}")),
            (Some("gzip, br;q=0"), "gzip", format!("gzip {page}")),
            (Some("identity"), "", "<!doctype html>".to_owned()),
            (None, "", "<!doctype html>".to_owned()),
        ]
    };
    // The approval page at a link; the root page, which is not it, at `/`.
    for (path, page) in [(format!("/sca/{LINK}"), "page"), ("/".to_owned(), "home"), ("/index.html".to_owned(), "home")] {
        for (accept, encoding, start) in cases(page) {
            let answer = site.get(&path, accept).await;
            assert_eq!(answer.status, StatusCode::OK, "{path} {accept:?}");
            assert_eq!(answer.header("content-encoding"), encoding, "{path} {accept:?}");
            assert!(answer.body.starts_with(start.as_bytes()), "{path} {accept:?}");
            assert_eq!(answer.header("content-type"), "text/html; charset=utf-8");
            assert_eq!(answer.header("cache-control"), "no-store", "{path}");
            assert_eq!(answer.header("vary"), "accept-encoding", "{path}");
        }
    }
    let head = site.send(Method::HEAD, &format!("/sca/{LINK}"), Some("br")).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-encoding"), "br");
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn the_page_has_the_browser_fetch_the_approval_at_once() {
    let site = site().await;
    let answer = site.get(&format!("/sca/{LINK}"), None).await;
    assert_eq!(answer.header("link"), format!("</api/approvals/{LINK}>; rel=preload; as=fetch; crossorigin"));
    // Nothing that is not a link's characters goes into the header.
    let odd = site.get("/sca/a%3E%3B%20rel%3Dpreload", None).await;
    assert_eq!(odd.status, StatusCode::OK);
    assert!(odd.headers.get("link").is_none());
    assert!(site.get("/", None).await.headers.get("link").is_none());
}

#[tokio::test]
async fn the_phone_app_s_approval_screen_has_the_browser_fetch_the_approval_at_once() {
    let site = site().await;
    let id = "0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let answer = site.get(&format!("/device/approvals/{id}"), None).await;
    assert_eq!(answer.header("link"), format!("</device/api/approvals/{id}>; rel=preload; as=fetch; crossorigin"));
    for other in ["/device", "/device/settings", "/device/approvals/a%3E%3B%20rel%3Dpreload"] {
        assert!(site.get(other, None).await.headers.get("link").is_none(), "{other}");
    }
}

#[tokio::test]
async fn each_page_s_csp_allows_its_own_inline_loader_and_other_answers_nothing() {
    let site = site().await;
    let hash = |loader: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(loader.as_bytes()));
    // Each page allows its own loader, a service worker no inline script.
    let page = format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{}'", hash(LOADER));
    let account = format!("script-src 'self' 'wasm-unsafe-eval' 'sha256-{}'", hash(ACCOUNT_LOADER));
    let no_inline = "script-src 'self' 'wasm-unsafe-eval'".to_owned();
    let documents = [
        (format!("/sca/{LINK}"), &page),
        ("/".to_owned(), &no_inline),
        ("/account/security".to_owned(), &account),
        ("/device/sw.js".to_owned(), &no_inline),
    ];
    for (path, expected) in documents {
        let answer = site.get(&path, None).await;
        let csp = answer.header("content-security-policy");
        let script_src = csp.split(';').map(str::trim).find(|d| d.starts_with("script-src ")).unwrap();
        assert_eq!(script_src, expected, "{path}");
        assert!(!csp.contains("unsafe-inline"), "{path}");
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{path}");
    }
    // Files a page loads, the API, errors: nothing runs, nothing loads.
    for path in [format!("/{WASM}"), format!("/account/{ACCOUNT_WASM}"), "/nothing".to_owned(), "/v2/sepa/transfers".to_owned()] {
        let answer = site.get(&path, None).await;
        assert_eq!(answer.header("content-security-policy"), "default-src 'none'; frame-ancestors 'none'", "{path}");
    }
}

#[tokio::test]
async fn hashed_files_are_immutable_and_precompressed_others_revalidated() {
    let site = site().await;
    let wasm = site.get(&format!("/{WASM}"), Some("gzip, deflate, br")).await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.body, b"brotli wasm");
    assert_eq!(wasm.header("content-encoding"), "br");
    assert_eq!(wasm.header("content-type"), "application/wasm");
    assert_eq!(wasm.header("cache-control"), "public, max-age=31536000, immutable");
    assert_eq!(wasm.header("vary"), "accept-encoding");
    assert_eq!(wasm.header("last-modified"), "", "a hashed name is never revalidated");

    // No gzip variant in this build: the file as it is.
    let plain = site.get(&format!("/{WASM}"), Some("gzip")).await;
    assert_eq!(plain.body, b"wasm");
    assert_eq!(plain.header("content-encoding"), "");

    // A range past the end is the client's mistake about a file that is there.
    let request = Request::get("/robots.txt").header("range", "bytes=1000-2000").body(Body::empty()).unwrap();
    let response = site.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let robots = site.get("/robots.txt", Some("br")).await;
    assert_eq!(robots.status, StatusCode::OK);
    assert_eq!(robots.header("cache-control"), "no-cache");
    assert_ne!(robots.header("last-modified"), "", "revalidated by its date");

    let post = site.send(Method::POST, &format!("/{WASM}"), None).await;
    assert_eq!(post.status, StatusCode::NOT_FOUND);
    assert_eq!(post.json()["code"], "not_found");
}
