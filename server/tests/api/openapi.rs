//! `/openapi.json` against the router that serves it: every route of the
//! contract documented, every documented route served, every error code
//! listed.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use passgate::config::Mode;
use serde_json::Value;

use crate::helpers::{spawn_app_in, TestApp};

/// The routes `../shared/SPEC.md` gives partners and operators, as
/// `(method, path)`; the mocked sessions exist in the sandbox only.
const CONTRACT: &[(&str, &str)] = &[
    ("post", "/v2/sepa/transfers"),
    ("get", "/v2/sepa/transfers"),
    ("post", "/v2/sepa/beneficiaries"),
    ("get", "/v2/sca_sessions/{token}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/openapi.json"),
];
const SANDBOX_ONLY: &[(&str, &str)] = &[
    ("get", "/v2/mocked_sca_sessions/{token}"),
    ("post", "/v2/mocked_sca_sessions/{token}/allow"),
    ("post", "/v2/mocked_sca_sessions/{token}/deny"),
];
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let reply = app.send(Request::get("/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    reply.body
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_owned(), path.clone()));
            }
        }
    }
    found
}

fn owned(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    routes.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect()
}

/// An anonymous request: a served route answers (401 where it needs the
/// bearer token, 200 where it does not); anything else is 404 or 405.
async fn anonymous(app: &TestApp, method: &str, path: &str) -> (StatusCode, String) {
    let path = path.replace("{token}", "q5Yx0_Tj-2Vb8dEwKsXn3mA1pLr7uHc9ZfGt4oI6eBy");
    let request = Request::builder().method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap()).uri(path);
    let reply = app.send(request.body(Body::empty()).unwrap()).await;
    (reply.status, reply.code().to_owned())
}

async fn documented_is_served_and_nothing_else(mode: Mode, expected: BTreeSet<(String, String)>) {
    let app = spawn_app_in(mode).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let documented = operations(&doc);
    assert_eq!(documented, expected, "documented routes differ from the contract");

    for (method, path) in &documented {
        let operation = &doc["paths"][path][method];
        let secured = operation["security"].as_array().is_some_and(|s| !s.is_empty());
        let (status, code) = anonymous(&app, method, path).await;
        if secured {
            assert_eq!((status, code.as_str()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{method} {path}");
            assert!(operation["responses"]["401"].is_object(), "{method} {path} does not document its 401");
        } else {
            assert_eq!(status, StatusCode::OK, "{method} {path}");
        }
        // The methods a path does not document are not served on it.
        for other in METHODS.iter().filter(|m| !documented.contains(&((**m).to_owned(), path.clone()))) {
            assert_eq!(anonymous(&app, other, path).await.0, StatusCode::METHOD_NOT_ALLOWED, "{other} {path}");
        }
    }
    // Not a catch-all: a route nobody documented is not found.
    assert_eq!(anonymous(&app, "get", "/v2/sepa/payments").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_sandbox_documents_and_serves_exactly_the_contract_with_its_mocked_sessions() {
    let expected = owned(CONTRACT).union(&owned(SANDBOX_ONLY)).cloned().collect();
    documented_is_served_and_nothing_else(Mode::Sandbox, expected).await;
}

#[tokio::test]
async fn production_documents_and_serves_no_mocked_session() {
    documented_is_served_and_nothing_else(Mode::Production, owned(CONTRACT)).await;
    let app = spawn_app_in(Mode::Production).await;
    for (method, path) in SANDBOX_ONLY {
        assert_eq!(anonymous(&app, method, path).await.0, StatusCode::NOT_FOUND, "{method} {path}");
    }
}

fn enum_of(schema: &Value) -> BTreeSet<String> {
    schema["enum"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect()
}

fn set(codes: &[&str]) -> BTreeSet<String> {
    codes.iter().map(|c| (*c).to_owned()).collect()
}

#[tokio::test]
async fn the_document_lists_every_error_code_and_the_428_and_412_bodies() {
    let app = spawn_app_in(Mode::Sandbox).await;
    let doc = document(&app).await;
    let components = &doc["components"];
    assert_eq!(enum_of(&components["schemas"]["ErrorBody"]["properties"]["code"]), set(shared::error_code::ALL));

    let sca_required = &components["schemas"]["ScaRequiredBody"];
    assert_eq!(enum_of(&sca_required["properties"]["code"]), set(shared::error_code::SCA_NEEDED));
    for field in ["code", "message", "sca_session_token", "action_type"] {
        assert!(sca_required["properties"][field].is_object(), "428 body lacks {field}");
    }
    let replay = &components["responses"]["ReplayRefused"]["content"]["application/json"]["schema"];
    assert_eq!(enum_of(&replay["properties"]["code"]), set(shared::error_code::REPLAY_REFUSED));

    // Both sensitive actions document their 428 and 412, and their headers.
    for path in ["/v2/sepa/transfers", "/v2/sepa/beneficiaries"] {
        let post = &doc["paths"][path]["post"];
        assert_eq!(post["responses"]["428"]["$ref"], "#/components/responses/ScaRequired", "{path}");
        assert_eq!(post["responses"]["412"]["$ref"], "#/components/responses/ReplayRefused", "{path}");
        let headers: BTreeSet<&str> = post["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        for header in ["X-Qonto-2fa-Preference", "X-Qonto-Sca-Session-Token", "X-Qonto-MFA", "X-Qonto-Idempotency-Key"] {
            assert!(headers.contains(header), "{path} does not document {header}");
        }
    }
}

fn described(response: &Value) -> bool {
    response["description"].as_str().is_some_and(|d| !d.trim().is_empty())
}

/// Every response of every operation, and every shared response, has the
/// `description` OpenAPI requires (a validator refuses the document
/// otherwise; `e2e/tests/openapi.spec.ts` runs one). A `$ref` counts through
/// the component it names.
#[tokio::test]
async fn every_response_has_a_description() {
    for mode in [Mode::Sandbox, Mode::Production] {
        let app = spawn_app_in(mode).await;
        let doc = document(&app).await;
        let shared = doc["components"]["responses"].as_object().unwrap();
        let mut missing = Vec::new();
        let mut checked = 0;
        for (name, response) in shared {
            checked += 1;
            if !described(response) {
                missing.push(format!("components/responses/{name}"));
            }
        }
        for (method, path) in operations(&doc) {
            let responses = doc["paths"][&path][&method]["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path} documents no response");
            for (status, response) in responses {
                checked += 1;
                let response = match response["$ref"].as_str() {
                    Some(reference) => {
                        let name = reference.strip_prefix("#/components/responses/").unwrap_or_else(|| panic!("{reference}"));
                        &shared[name]
                    }
                    None => response,
                };
                if !described(response) {
                    missing.push(format!("{method} {path} {status}"));
                }
            }
        }
        assert!(checked > 20, "{mode:?}: only {checked} responses found");
        assert!(missing.is_empty(), "{mode:?}: responses without a description: {missing:?}");
    }
}
