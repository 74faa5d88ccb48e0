//! The HTTP listeners: HTTPS for the API (the LDAPS certificate, reloaded the same way,
//! the same handshake timeout and connection limits), and plain HTTP for metrics alone.
//! HTTP/1.1 by hyper, each request handed to the `http` application with its peer's
//! address; graceful shutdown lets requests in hand finish. Knows HTTP framing, not what
//! the API means.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

use crate::http::auth::Peer;
use crate::metrics::Metrics;
use crate::server::conn;
use crate::server::per_ip::PerIp;

/// What every HTTP connection shares.
#[derive(Clone)]
pub struct Serving {
    pub app: Router,
    pub metrics: Arc<Metrics>,
    pub slots: Arc<Semaphore>,
    pub per_ip: PerIp,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub handshake_timeout: Duration,
}

/// How long a client may take to send a request's headers (and how long a kept-alive
/// connection may sit idle before its next request).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long requests in hand get to finish at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Accept HTTPS connections until shutdown.
pub async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, serving: Serving) {
    serve(listener, Some(acceptor), "https", serving).await;
}

/// Accept plain HTTP connections (metrics) until shutdown.
pub async fn serve_plain(listener: TcpListener, serving: Serving) {
    serve(listener, None, "metrics", serving).await;
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    name: &'static str,
    serving: Serving,
) {
    loop {
        let accepted = tokio::select! {
            () = serving.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(admitted) = serving.per_ip.admit(peer.ip()) else {
            serving.metrics.refused(name, "per-address-limit");
            continue;
        };
        let Ok(slot) = serving.slots.clone().try_acquire_owned() else {
            serving.metrics.refused(name, "connection-limit");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let open = serving.metrics.connection(name);
        let tracker = serving.tracker.clone();
        let serving = serving.clone();
        let acceptor = acceptor.clone();
        let span = conn::span(&peer.to_string());
        span.record("transport", name);
        let connection = async move {
            let _slot = slot;
            let _admitted = admitted;
            let _open = open;
            match acceptor {
                None => connection(stream, peer, &serving).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(serving.handshake_timeout, handshake).await {
                        Ok(Ok(tls)) => connection(tls, peer, &serving).await,
                        Ok(Err(e)) => {
                            serving.metrics.refused(name, "tls-handshake");
                            tracing::debug!(error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            serving.metrics.refused(name, "tls-handshake");
                            tracing::debug!("TLS handshake timed out");
                        }
                    }
                }
            }
        };
        tracker.spawn(connection.instrument(span));
    }
}

/// Serve one connection's requests until it closes, or shutdown drains it.
async fn connection<S>(stream: S, peer: SocketAddr, serving: &Serving)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = serving.app.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(Peer(peer));
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "HTTP connection ended with an error");
            }
        }
        () = serving.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(DRAIN, conn).await;
        }
    }
}
