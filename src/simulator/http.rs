//! Serving the simulator over HTTP/1.1 with Yahoo's header names.
//!
//! `http` keeps header names in lower case and `axum::serve` writes them that way. Yahoo's
//! answers carry `WWW-Authenticate` and `X-SWS-Authorize-Status`, and clients exist that look
//! them up case-sensitively. So the simulator runs hyper's HTTP/1 connection itself: every header
//! name is written in title case (`Content-Type`, `Date`), and the two Yahoo names in exactly
//! Yahoo's spelling. hyper only takes an original spelling from a `HeaderCaseMap` it recorded
//! while parsing a request (the type is not public), so [`yahoo_header_case`] has hyper parse one
//! request that spells them Yahoo's way, in memory, once, and every answer carries a copy.

use std::{convert::Infallible, net::SocketAddr, sync::Mutex};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::Extensions,
};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{rt::TokioIo, server::graceful::GracefulShutdown, service::TowerToHyperService};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::oneshot,
};
use tower::ServiceExt;

/// The header names whose exact spelling Yahoo's clients may depend on.
pub const YAHOO_HEADER_NAMES: [&str; 2] = ["WWW-Authenticate", "X-SWS-Authorize-Status"];

/// Response extensions that make hyper write [`YAHOO_HEADER_NAMES`] as spelled there; `None` if
/// hyper did not record them (the names then go out in title case, `Www-Authenticate`).
pub async fn yahoo_header_case() -> Option<Extensions> {
    let (mut client, server) = tokio::io::duplex(1024);
    let (tx, rx) = oneshot::channel::<Extensions>();
    let tx = Mutex::new(Some(tx));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(request.extensions().clone());
        }
        async { Ok::<_, Infallible>(hyper::Response::new(axum::body::Body::empty())) }
    });
    let connection = http1::Builder::new().preserve_header_case(true).serve_connection(TokioIo::new(server), service);
    let driver = tokio::spawn(connection);
    let mut head = String::from("GET / HTTP/1.1\r\nHost: simulator\r\nConnection: close\r\n");
    for name in YAHOO_HEADER_NAMES {
        head.push_str(name);
        head.push_str(": x\r\n");
    }
    head.push_str("\r\n");
    client.write_all(head.as_bytes()).await.ok()?;
    let extensions = rx.await.ok();
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest).await;
    let _ = driver.await;
    extensions
}

/// Accepts connections until `shutdown`, then lets the open ones finish. Each request carries
/// `ConnectInfo<SocketAddr>` (the source-IP allow-list reads it).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let case = yahoo_header_case().await.unwrap_or_default();
    let mut builder = http1::Builder::new();
    builder.title_case_headers(true);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "simulator: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let case = case.clone();
        let service = tower::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            let router = router.clone();
            let case = case.clone();
            async move {
                let mut response = router.oneshot(request.map(axum::body::Body::new)).await?;
                response.extensions_mut().extend(case);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "simulator: connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::{http::HeaderMap, routing::get};

    use super::*;

    #[tokio::test]
    async fn header_names_go_out_as_yahoo_spells_them() {
        let router = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                let mut headers = HeaderMap::new();
                headers.insert("www-authenticate", "Bearer error=\"invalid_token\"".parse().unwrap());
                headers.insert("x-sws-authorize-status", "authorized".parse().unwrap());
                headers.insert("x-other-header", "1".parse().unwrap());
                (headers, peer.ip().to_string())
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let raw = String::from_utf8(raw).unwrap();
        for line in [
            "\r\nWWW-Authenticate: ",
            "\r\nX-SWS-Authorize-Status: authorized",
            "\r\nX-Other-Header: 1",
            "\r\nContent-Type: ",
        ] {
            assert!(raw.contains(line), "{line:?} in {raw}");
        }
        assert!(raw.ends_with("127.0.0.1"), "ConnectInfo reaches the handlers: {raw}");
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
