//! `PoolConfig::connector`: a host program opens the FPM connections itself; the pool keeps
//! keep-alive, error mapping and the FastCGI exchange. Against a REAL php-fpm (php8.2-fpm).

mod support;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use fephp::cgi::{HttpRequest, RequestBody, Site};
use fephp::engine::BackendConfig;
use fephp::pool::{Address, ConnectFuture, Connector, HostSocket, PoolConfig};
use fephp::{Engine, EngineError, Request};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;

use support::{scripts_dir, Fpm};

/// A host socket over tokio's `UnixStream` that counts what the pool does with it.
#[derive(Debug)]
struct CountingSocket(UnixStream);

impl HostSocket for CountingSocket {
    fn is_stale(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.0.try_read(&mut probe), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for CountingSocket {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountingSocket {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

#[derive(Debug, Default)]
struct CountingConnector {
    connects: AtomicUsize,
}

impl Connector for CountingConnector {
    fn connect<'a>(&'a self, address: &'a Address) -> ConnectFuture<'a> {
        Box::pin(async move {
            self.connects.fetch_add(1, Ordering::SeqCst);
            let Address::Unix(path) = address else {
                return Err(io::Error::new(io::ErrorKind::Unsupported, "unix sockets only"));
            };
            let s: Box<dyn HostSocket> = Box::new(CountingSocket(UnixStream::connect(path).await?));
            Ok(s)
        })
    }
}

fn engine(address: &str, connector: Arc<CountingConnector>) -> Engine {
    let mut cfg = PoolConfig::new(Address::parse(address).unwrap());
    cfg.size = 2;
    cfg.connect_timeout = Duration::from_secs(5);
    cfg.connector = Some(connector);
    Engine::new(BackendConfig::Fpm(cfg)).unwrap()
}

async fn get(engine: &Engine, site: &Site, path: &str) -> Result<(u16, Vec<u8>), EngineError> {
    let req = Request { http: HttpRequest::new("GET", path), body: RequestBody::empty() };
    let mut resp = engine.serve(site, req).await?;
    let mut body = Vec::new();
    while let Some(chunk) = resp.body.next_chunk().await {
        body.extend_from_slice(&chunk?);
    }
    Ok((resp.head.status, body))
}

#[test]
fn pool_opens_and_reuses_connections_through_the_connector() {
    let fpm = Fpm::start_unix(2);
    let connector = Arc::new(CountingConnector::default());
    let engine = engine(&fpm.address, connector.clone());
    let site = Site::new(&scripts_dir(), "index.php", &[".php".to_string()], true, false).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        for _ in 0..5 {
            let (status, body) = get(&engine, &site, "/hello.php").await.unwrap();
            assert_eq!(status, 200);
            assert_eq!(body, b"Hello, world!\n");
        }
        // Sequential requests: one connection, kept alive and reused.
        assert_eq!(connector.connects.load(Ordering::SeqCst), 1);
        assert!(engine.health().await.ok);
    });
    assert!(engine.render_metrics().contains("fephp_pool_connections_reused_total 4"), "{}", engine.render_metrics());
}

#[test]
fn connector_errors_map_like_tokio_connects() {
    let dir = tempfile::tempdir().unwrap();
    let address = format!("unix:{}", dir.path().join("nobody.sock").display());
    let connector = Arc::new(CountingConnector::default());
    let engine = engine(&address, connector.clone());
    let site = Site::new(&scripts_dir(), "index.php", &[".php".to_string()], true, false).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let err = rt.block_on(get(&engine, &site, "/hello.php")).unwrap_err();
    assert!(matches!(err, EngineError::Unreachable(_)), "{err:?}");
    assert_eq!(err.status(), 502);
    assert_eq!(connector.connects.load(Ordering::SeqCst), 1);
}
