//! The accept loop of [`Server::serve`](super::Server::serve) and
//! [`Server::serve_tls`](super::Server::serve_tls): HTTP/1.1 connections on hyper with a deadline
//! for the request head, so a connection that never finishes its headers (or sits idle between
//! requests) is closed instead of held forever. With TLS, each connection's handshake runs in its
//! own task under the same deadline: a client that never finishes it holds one socket for that
//! long, and a failed handshake ends only its own connection.
//!
//! Must not: know rooms or sessions (the router does).

use crate::tls::TlsConfig;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// After a failed accept (out of file descriptors, say), the loop waits this long before the
/// next one instead of spinning.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

impl super::Server {
    /// Serves HTTPS and WSS on `listener` with `tls` (see [`TlsConfig::from_pem_files`]), as
    /// [`serve`](Self::serve) serves plain HTTP: until [`shutdown`](Self::shutdown), then every
    /// session closes with 1001 and is waited for (at most 5 s). A TLS handshake must finish
    /// within `http_header_timeout_ms`, like a request head.
    ///
    /// TLS is a matter of how a server is served, not of what it is: one server can be served
    /// plainly on one listener and with TLS on another, and its [`router`](Self::router) mounted
    /// behind a TLS-terminating proxy needs none of this.
    pub async fn serve_tls(&self, listener: TcpListener, tls: TlsConfig) -> std::io::Result<()> {
        self.serve_on(listener, Some(tls)).await
    }
}

/// Accepts connections until `shutdown`, serving `router` on each (over TLS when `tls` is
/// given); connections still serving plain HTTP then finish their request and close (WebSocket
/// sessions close themselves on `shutdown`). Connection tasks are tracked by `tasks`.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    tls: Option<TlsConfig>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
    let acceptor = tls.map(|tls| tls.acceptor());
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
        let (http, router, shutdown) = (http.clone(), router.clone(), shutdown.clone());
        match &acceptor {
            None => {
                tasks.spawn(serve_connection(http, tcp, peer, router, shutdown));
            }
            Some(acceptor) => {
                let accept = acceptor.accept(tcp);
                tasks.spawn(async move {
                    // The handshake is this task's, never the accept loop's: a slow or failed
                    // one holds up no other connection.
                    let tls = tokio::select! {
                        handshake = tokio::time::timeout(header_timeout, accept) => match handshake {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, timeout_ms = header_timeout.as_millis(), "TLS handshake timed out");
                                return;
                            }
                        },
                        _ = shutdown.cancelled() => return,
                    };
                    serve_connection(http, tls, peer, router, shutdown).await;
                });
            }
        }
    }
}

/// Serves HTTP/1.1 (and its WebSocket upgrades) on one connection until it ends; on `shutdown`
/// a request in flight finishes first.
async fn serve_connection<I>(
    http: hyper::server::conn::http1::Builder,
    io: I,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Requests carry the peer's address (axum's `ConnectInfo`), for the auth hook and the
    // per-address limits.
    let service = TowerToHyperService::new(router.layer(axum::Extension(ConnectInfo(peer))));
    let conn = http.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => log_end(r),
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        // Timeouts and clients going away are routine; nothing to act on.
        tracing::debug!(error = %e, "HTTP connection ended");
    }
}
