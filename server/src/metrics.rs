//! Prometheus metrics, on a listen address of their own
//! (`PASSGATE_METRICS_BIND`, off by default), never on the public one.
//! Labels name routes, methods, statuses and outcomes: never a user, a
//! partner, a token or a link.
//!
//! | metric | labels |
//! | --- | --- |
//! | `passgate_http_requests_total` | `route`, `method`, `status` |
//! | `passgate_http_request_duration_seconds` | `route`, `method` |
//! | `passgate_sca_sessions_opened_total` | `method` |
//! | `passgate_sca_sessions_decided_total` | `method`, `decision` |
//! | `passgate_sca_limits_total` | `limit` |
//! | `passgate_replays_total` | `outcome` |
//! | `passgate_webauthn_failures_total` | `ceremony` |
//! | `passgate_sms_sent_total` | `outcome` |
//! | `passgate_db_commit_seconds` | `backend`, `step` (SQLite: `commit`, `fsync`; PostgreSQL: `transaction`) |
//! | `passgate_db_transaction_retries_total` | `backend` |
//! | `passgate_db_pool_connections` | `backend`, `state` |

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Context;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Latency buckets, in seconds: from a quarter millisecond to ten seconds.
const BUCKETS: &[f64] = &[0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Installs the process's recorder and serves `GET /metrics` on `bind`.
pub async fn serve(bind: SocketAddr) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new().set_buckets(BUCKETS)?.install_recorder().context("installing the metrics recorder")?;
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("binding PASSGATE_METRICS_BIND {bind}"))?;
    let local = listener.local_addr()?;
    let router = Router::new().route("/metrics", get(move || render(handle.clone())));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(local)
}

async fn render(handle: PrometheusHandle) -> String {
    handle.render()
}

/// The `method` label: the standard methods by name, any other token a
/// client sends as `other` (a label per invented method would grow the
/// metrics without bound).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Middleware: counts and times every request by its route pattern (never
/// its path: paths carry tokens and links).
pub async fn record(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or_else(|| "other".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("passgate_http_requests_total", "route" => route.clone(), "method" => method, "status" => status).increment(1);
    metrics::histogram!("passgate_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
