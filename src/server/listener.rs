//! The accept loop of [`Server::serve`](super::Server::serve): HTTP/1.1 connections on hyper
//! with a deadline for the request head, so a connection that never finishes its headers (or
//! sits idle between requests) is closed instead of held forever.
//!
//! Must not: know rooms or sessions (the router does).

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// After a failed accept (out of file descriptors, say), the loop waits this long before the
/// next one instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Accepts connections until `shutdown`, serving `router` on each; connections still serving
/// plain HTTP then finish their request and close (WebSocket sessions close themselves on
/// `shutdown`). Connection tasks are tracked by `tasks`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            _ = shutdown.cancelled() => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        // Updates are small and latency matters: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        // Requests carry the peer's address (axum's `ConnectInfo`), for the auth hook and the
        // per-address limits.
        let service = TowerToHyperService::new(router.clone().layer(axum::Extension(ConnectInfo(peer))));
        let conn = http.serve_connection(TokioIo::new(tcp), service).with_upgrades();
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_end(r),
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await);
                }
            }
        });
    }
}

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        // Timeouts and clients going away are routine; nothing to act on.
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}
