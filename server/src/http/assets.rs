//! The approval page and its static files: Trunk's build in `static_dir`.
//!
//! - `GET /sca/{link}`: `index.html` from memory,
//!   read once at start-up with its brotli and gzip variants (written beside
//!   it at build time by `tools/precompress.mjs`), chosen by
//!   `Accept-Encoding`; `no-store` (the link is a secret). The answer also
//!   tells the browser to fetch the approval's data right away
//!   (`Link: rel=preload`), in parallel with the app's download; the app's
//!   own fetch of the same URL then takes the preloaded answer.
//! - `GET /` (and `/index.html`): the root page, `home/index.html`, plain
//!   HTML, from memory the same way.
//! - Any other path: a file of `static_dir` (ServeDir), precompressed
//!   variants included; Trunk's content-hashed names are cached for a year
//!   (`immutable`). Whatever goes wrong with a path (unknown, too long, not
//!   a directory, NUL byte…) answers the JSON 404 of any unknown path.
//! - The Content-Security-Policy of each page allows its own inline
//!   scripts (Trunk's module loader) by their SHA-256 hashes, computed at
//!   start-up: no `'unsafe-inline'`, and no other page's loader. A
//!   service worker's script gets the same policy with no hash (a worker
//!   runs under its script's policy). Every other answer (the API, errors,
//!   files a page loads) is no document that runs anything: `default-src
//!   'none'`. A subresource's own policy does not apply to the page that
//!   loads it, so carrying the pages' policy there only cost bytes: 1.4 KB
//!   of headers on a phone's first visit (docs/BENCHMARKS.md).
//!
//! A new build of the page needs a restart: the page in memory names the
//! hashed files of the build it was read from.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use base64::Engine;
use sha2::{Digest, Sha256};
use tower_http::services::ServeDir;

use crate::error::Error;

/// The CSP of the pages, a page's hashes between the two parts. Styles
/// and connections fall back to `default-src 'self'`.
const CSP_BEFORE_HASHES: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
const CSP_AFTER_HASHES: &str = "; img-src 'self' data:; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
/// The CSP of everything but the pages and service workers.
const CSP_NOT_A_PAGE: &str = "default-src 'none'; frame-ancestors 'none'";

/// For Trunk's content-hashed file names.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The static side of the application, loaded once at start-up.
#[derive(Clone)]
pub struct Assets {
    inner: Arc<Inner>,
}

/// The apps beside the approval page, each a bundle of its own built into
/// `dist/{name}` and served under `/{name}`: its routes (`/account`,
/// `/account/security`…) are its `index.html`, its files
/// (`/account/account-….wasm`) are files, and `/{name}/api/…` is its API,
/// never its page. A new app is one entry here and one Trunk build in the
/// Makefile.
pub const BUNDLES: &[Bundle] = &[
    Bundle { name: "account", service_worker: false, preload: None },
    Bundle { name: "device", service_worker: true, preload: Some(("/device/approvals/", "/device/api/approvals/")) },
];

/// One app of [`BUNDLES`].
pub struct Bundle {
    /// Its directory in the build and its path on the site.
    pub name: &'static str,
    /// Whether it has a service worker, `/{name}/sw.js`, which then
    /// controls `/{name}` itself as well as what is under it
    /// (`Service-Worker-Allowed`: a script's own directory, `/{name}/`,
    /// would leave out the app's start URL).
    pub service_worker: bool,
    /// `(screen, data)`: the page of the screen `{screen}{id}` has the
    /// browser fetch `{data}{id}` at once, in parallel with the app's
    /// download, as the approval page does.
    pub preload: Option<(&'static str, &'static str)>,
}

impl Bundle {
    /// The data a screen of this app reads first, if it is known from its path.
    fn preload(&self, path: &str) -> Option<String> {
        let (screen, data) = self.preload?;
        path.strip_prefix(screen).filter(|id| is_link(id)).map(|id| format!("{data}{id}"))
    }

    fn service_worker_scope(&self, path: &str) -> Option<String> {
        let scope = format!("/{}", self.name);
        (self.service_worker && path.strip_prefix(&scope) == Some("/sw.js")).then_some(scope)
    }
}

struct Inner {
    files: ServeDir,
    /// The approval page (`index.html`).
    page: Option<Page>,
    /// The root page, `/` (`home/index.html`): plain HTML, no script.
    home: Option<Page>,
    /// Each of [`BUNDLES`] and its page, if built.
    bundles: Vec<(&'static Bundle, Option<Page>)>,
    /// The CSP of a service worker's script: the pages' with no hash.
    worker_csp: HeaderValue,
}

/// `index.html` in each encoding the build holds.
struct Page {
    identity: Bytes,
    br: Option<Bytes>,
    gzip: Option<Bytes>,
    /// Its CSP: its own inline scripts by their hashes.
    csp: HeaderValue,
}

/// The CSP with `hashes` (` 'sha256-…'` each) as `script-src`'s inline
/// scripts. Hashes are base64 and the rest is fixed ASCII: always a valid
/// value. Were it not, nothing would run rather than anything.
fn csp(hashes: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("{CSP_BEFORE_HASHES}{hashes}{CSP_AFTER_HASHES}"))
        .unwrap_or_else(|_| HeaderValue::from_static(CSP_NOT_A_PAGE))
}

impl Assets {
    /// Reads `dir/index.html` and its precompressed variants. A missing page
    /// is not fatal (the API works without it): `/sca/{link}` then answers
    /// 500 saying the page is not built.
    pub fn load(dir: &Path) -> Assets {
        let page = Page::read(dir);
        let home = Page::read(&dir.join("home"));
        let bundles: Vec<_> = BUNDLES.iter().map(|bundle| (bundle, Page::read(&dir.join(bundle.name)))).collect();
        let files = ServeDir::new(dir).precompressed_br().precompressed_gzip().append_index_html_on_directories(false);
        Assets { inner: Arc::new(Inner { files, page, home, bundles, worker_csp: csp("") }) }
    }

    /// The `Content-Security-Policy` of every answer but the pages and
    /// service workers (which set their own).
    pub fn csp(&self) -> HeaderValue {
        HeaderValue::from_static(CSP_NOT_A_PAGE)
    }

    /// `GET /sca/{link}`: the approval app; it reads the link from the URL.
    pub fn page_route<S: Clone + Send + Sync + 'static>(&self) -> MethodRouter<S> {
        let assets = self.clone();
        get(move |uri: Uri, headers: HeaderMap| async move {
            let link = uri.path().strip_prefix("/sca/").filter(|link| is_link(link));
            assets.page(&headers, link.map(|link| format!("/api/approvals/{link}")).as_deref())
        })
    }

    /// Everything that no route matched: a file of the build, or 404.
    pub async fn file(&self, request: Request) -> Response {
        let path = request.uri().path();
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Error::NotFound("No such resource").into_response();
        }
        if path == "/" || path == "/index.html" {
            return match &self.inner.home {
                Some(home) => home.serve(request.headers(), None),
                None => Error::Internal("the root page is not built: run `make build`".into()).into_response(),
            };
        }
        if let Some((bundle, page)) = self.inner.bundles.iter().find(|(bundle, _)| is_route_of(path, bundle.name)) {
            return match page {
                Some(page) => page.serve(request.headers(), bundle.preload(path).as_deref()),
                None => Error::Internal(format!("the {} pages are not built: run `make build`", bundle.name)).into_response(),
            };
        }
        let hashed = is_hashed(path);
        let scope = self.inner.bundles.iter().find_map(|(bundle, _)| bundle.service_worker_scope(path));
        let mut files = self.inner.files.clone();
        let mut response = match files.try_call(request).await {
            // ServeDir's own 404 has an empty body; a 500 there means a
            // path it could not turn into a redirect: neither names a file.
            Ok(response) if response.status() == StatusCode::NOT_FOUND || response.status().is_server_error() => {
                return Error::NotFound("No such resource").into_response();
            }
            Ok(response) => response.map(Body::new),
            Err(e) => {
                // ENAMETOOLONG (36), EINVAL (22: a NUL byte), ELOOP (40): a
                // path that names no file. Anything else is logged, and still a 404:
                // the files are the build's, nothing a client must see fail.
                if !matches!(e.raw_os_error(), Some(36 | 22 | 40)) {
                    tracing::warn!(error = %e, "static file unreadable");
                }
                return Error::NotFound("No such resource").into_response();
            }
        };
        let status = response.status();
        let headers = response.headers_mut();
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            let cache = if hashed { IMMUTABLE } else { "no-cache" };
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
        }
        if hashed {
            // Its name changes with its content: never revalidated.
            headers.remove(header::LAST_MODIFIED);
        }
        if let Some(scope) = scope.and_then(|scope| HeaderValue::from_str(&scope).ok()) {
            headers.insert(HeaderName::from_static("service-worker-allowed"), scope);
            headers.insert(header::CONTENT_SECURITY_POLICY, self.inner.worker_csp.clone());
        }
        response
    }

    /// The fallback service of the router: [`Assets::file`].
    pub fn service(
        &self,
    ) -> impl tower::Service<Request, Response = Response, Error = Infallible, Future = impl Send> + Clone + Send + Sync + 'static {
        let assets = self.clone();
        tower::service_fn(move |request: Request| {
            let assets = assets.clone();
            async move { Ok::<_, Infallible>(assets.file(request).await) }
        })
    }

    fn page(&self, headers: &HeaderMap, preload: Option<&str>) -> Response {
        match &self.inner.page {
            Some(page) => page.serve(headers, preload),
            None => Error::Internal("approval page not built: run `make build`".into()).into_response(),
        }
    }
}

/// Whether `path` is one of the app `name`'s routes (`/name`, or under it
/// with no dot in its last segment), not one of its files nor its API
/// (`/name/api`, `/name/api/…`).
fn is_route_of(path: &str, name: &str) -> bool {
    match path.strip_prefix('/').and_then(|p| p.strip_prefix(name)) {
        Some("") => true,
        Some(rest) => rest.strip_prefix('/').is_some_and(|rest| {
            let api = rest == "api" || rest.starts_with("api/");
            !api && !rest.rsplit('/').next().unwrap_or_default().contains('.')
        }),
        None => false,
    }
}

impl Page {
    /// `dir/index.html` and its precompressed variants, if built.
    fn read(dir: &Path) -> Option<Page> {
        let read = |name: &str| std::fs::read(dir.join(name)).ok().map(Bytes::from);
        match std::fs::read(dir.join("index.html")) {
            Ok(html) => Some(Page {
                csp: csp(&script_hashes(&String::from_utf8_lossy(&html))),
                identity: Bytes::from(html),
                br: read("index.html.br"),
                gzip: read("index.html.gz"),
            }),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "page not built (make frontend)");
                None
            }
        }
    }

    /// The page in the best encoding the client takes; `no-store`. With
    /// `preload` (the URL of what the screen reads first), the answer has
    /// the browser fetch it at once.
    fn serve(&self, headers: &HeaderMap, preload: Option<&str>) -> Response {
        let page = self;
        let (body, encoding) = match (&page.br, &page.gzip) {
            (Some(br), _) if accepts(headers, "br") => (br.clone(), Some("br")),
            (_, Some(gzip)) if accepts(headers, "gzip") => (gzip.clone(), Some("gzip")),
            _ => (page.identity.clone(), None),
        };
        let mut response = Response::new(Body::from(body));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(header::CONTENT_SECURITY_POLICY, page.csp.clone());
        if let Some(encoding) = encoding {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
        }
        let preload = preload.and_then(|url| HeaderValue::from_str(&format!("<{url}>; rel=preload; as=fetch; crossorigin")).ok());
        if let Some(preload) = preload {
            headers.insert(header::LINK, preload);
        }
        response
    }
}

/// An approval link as Passgate makes them (base64url, 43 characters), give
/// or take: anything else could not be a link and goes in no header.
fn is_link(link: &str) -> bool {
    (1..=128).contains(&link.len()) && link.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether the client takes `coding` (RFC 9110 §12.5.3: `q=0` refuses it;
/// `*` stands for any coding not named).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut any = false;
    for item in headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')) {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let weight = parts
            .filter_map(|p| p.trim().strip_prefix("q=").or_else(|| p.trim().strip_prefix("Q=")))
            .map(|q| q.trim().parse::<f32>().unwrap_or(0.0))
            .next()
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            return weight > 0.0;
        }
        if name == "*" {
            any = weight > 0.0;
        }
    }
    any
}

/// Trunk's content-hashed names (`style-16dc1acc97c4611a.css`,
/// `app-35d92583c698ce90_bg.wasm`): after the last `-`, up to `_` or `.`,
/// the hash in lower-case hex (`{:x}` of a u64: up to 16 digits).
fn is_hashed(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or_default();
    let Some((_, tail)) = name.rsplit_once('-') else {
        return false;
    };
    let hash = tail.split(['_', '.']).next().unwrap_or_default();
    (8..=16).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// ` 'sha256-…'` for each inline script of the page (those without `src`),
/// as CSP hash sources.
fn script_hashes(html: &str) -> String {
    inline_scripts(html)
        .into_iter()
        .map(|script| format!(" 'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()))))
        .collect()
}

/// The text of each `<script>` element without a `src` attribute, exactly
/// as the browser hashes it.
fn inline_scripts(html: &str) -> Vec<&str> {
    // ASCII lower-casing keeps every byte offset.
    let lower = html.to_ascii_lowercase();
    let mut scripts = Vec::new();
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        let Some(tag_end) = lower[open..].find('>').map(|i| open + i) else {
            break;
        };
        let Some(close) = lower[tag_end..].find("</script").map(|i| tag_end + i) else {
            break;
        };
        let tag = &lower[open + "<script".len()..tag_end];
        let has_src = tag.split(|c: char| c.is_ascii_whitespace()).any(|attr| attr == "src" || attr.starts_with("src="));
        if !has_src {
            scripts.push(&html[tag_end + 1..close]);
        }
        at = close;
    }
    scripts
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_apps_routes_are_its_page_and_its_files_are_files() {
        for route in ["/account", "/account/", "/account/security", "/account/company/users"] {
            assert!(is_route_of(route, "account"), "{route}");
        }
        for other in ["/accounts", "/accountx/security", "/account/account-1a2b.wasm", "/account/style.css", "/", "/sca/x", "account"] {
            assert!(!is_route_of(other, "account"), "{other}");
        }
        for api in ["/device/api", "/device/api/", "/device/api/unknown", "/device/api/approvals/x/nope"] {
            assert!(!is_route_of(api, "device"), "{api}");
        }
        assert!(is_route_of("/device/approvals/0193", "device"));
        assert!(is_route_of("/device/apis", "device"), "only `api` itself is the API");
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn accept_encoding_follows_q_values_and_the_wildcard() {
        assert!(accepts(&accept("gzip, deflate, br, zstd"), "br"));
        assert!(accepts(&accept("gzip;q=1.0, br;q=0.5"), "br"));
        assert!(!accepts(&accept("gzip, br;q=0"), "br"));
        assert!(!accepts(&accept("gzip"), "br"));
        assert!(accepts(&accept("*"), "br"));
        assert!(!accepts(&accept("*;q=0, gzip"), "br"));
        assert!(accepts(&accept("*;q=0, BR"), "br"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
        assert!(!accepts(&accept("identity"), "gzip"));
    }

    #[test]
    fn only_content_hashed_names_count_as_hashed() {
        assert!(is_hashed("/style-16dc1acc97c4611a.css"));
        assert!(is_hashed("/passgate-frontend-35d92583c698ce90_bg.wasm"));
        assert!(is_hashed("/passgate-frontend-5d92583c698ce90.js"));
        assert!(!is_hashed("/index.html"));
        assert!(!is_hashed("/passgate-frontend.js"));
        assert!(!is_hashed("/style-16DC1ACC97C4611A.css"));
        assert!(!is_hashed("/a-b/style.css"));
    }

    #[test]
    fn links_that_could_not_be_links_go_in_no_header() {
        assert!(is_link("q5Yx0_Tj-2Vb8dEwKsXn3mA1pLr7uHc9ZfGt4oI6eBy"));
        assert!(!is_link(""));
        assert!(!is_link("a>; rel=preload; as=script"));
        assert!(!is_link("a%20b"));
        assert!(!is_link(&"a".repeat(129)));
    }

    #[test]
    fn inline_scripts_are_hashed_as_written_and_external_ones_not_at_all() {
        let html = "<head><script type=\"module\">\nimport init from '/a.js';\n</script>\
                    <SCRIPT src=\"/b.js\"></SCRIPT><script>x()</script></head>";
        assert_eq!(inline_scripts(html), vec!["\nimport init from '/a.js';\n", "x()"]);
        // echo -n 'x()' | openssl dgst -sha256 -binary | base64
        assert!(script_hashes(html).ends_with(" 'sha256-D6IGS8VMvCoyaR/l0h9tERrBTATY01CoPS7l6xDv0kI='"));
        assert_eq!(script_hashes("<p>no script</p>"), "");
    }
}
