//! The hyper service: `/_health`, `/_metrics`, and everything else through the engine.
//! Translates hyper requests/responses to the engine's types; no PHP logic here.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request as HyperRequest, Response as HyperResponse, StatusCode};

use crate::cgi::{content_length, header_use, HeaderUse, HttpRequest, RequestBody, Site};
use crate::engine::{health_json, Engine, Request, ResponseBody, ServeOptions};
use crate::error::{error_text, EngineError, ERROR_CONTENT_TYPE};

/// Largest request body the harness accepts (413 beyond).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What the harness tells PHP about itself, from `[server]`.
#[derive(Debug, Clone, Default)]
pub struct ServerIdentity {
    /// `https`: report `HTTPS=on` (a TLS terminator sits in front).
    pub https: bool,
    /// `server_name`: `SERVER_NAME` (like nginx's `server_name`); without it, the request's
    /// Host header without port.
    pub server_name: Option<String>,
}

/// Shared state of the service: the engine, the site, a request counter.
#[derive(Clone)]
pub struct Service {
    engine: Arc<Engine>,
    site: Arc<Site>,
    identity: Arc<ServerIdentity>,
    requests: Arc<AtomicU64>,
    /// Requests after which this process stops serving (0 = never), and the signal for it.
    limit: u64,
    limit_reached: Arc<tokio::sync::Notify>,
    /// Per-request ini settings of embedded PHP (`[php.values]`, `[php.admin_values]`).
    request_ini: Option<Arc<crate::config::RequestIni>>,
}

/// The per-connection service handed to hyper.
#[derive(Clone)]
pub struct ConnService {
    inner: Service,
    peer: SocketAddr,
    local: Option<SocketAddr>,
}

impl Service {
    /// A service over `engine` for `site`, telling PHP `identity`.
    pub fn new(engine: Arc<Engine>, site: Arc<Site>, identity: Arc<ServerIdentity>, limit: u64) -> Self {
        let limit_reached = Arc::new(tokio::sync::Notify::new());
        Service { engine, site, identity, requests: Arc::new(AtomicU64::new(0)), limit, limit_reached, request_ini: None }
    }

    /// Applies `ini` to every request of embedded PHP ([`Engine::serve_with`]).
    pub fn with_request_ini(mut self, ini: Option<Arc<crate::config::RequestIni>>) -> Self {
        self.request_ini = ini;
        self
    }

    /// Resolves once `limit` PHP requests have started (never when the limit is 0).
    pub async fn limit_reached(&self) {
        if self.limit == 0 {
            return std::future::pending().await;
        }
        self.limit_reached.notified().await
    }

    /// The service for one accepted connection.
    pub fn for_connection(&self, peer: SocketAddr, local: Option<SocketAddr>) -> ConnService {
        ConnService { inner: self.clone(), peer, local }
    }

    /// PHP requests started so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Relaxed)
    }
}

type Reply = HyperResponse<HarnessBody>;

impl hyper::service::Service<HyperRequest<Incoming>> for ConnService {
    type Response = Reply;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Reply, Infallible>> + Send>>;

    fn call(&self, req: HyperRequest<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(req).await) })
    }
}

impl ConnService {
    async fn handle(self, req: HyperRequest<Incoming>) -> Reply {
        match req.uri().path() {
            "/_health" => return self.health().await,
            "/_metrics" => {
                let text = self.inner.engine.render_metrics();
                return simple(StatusCode::OK, "text/plain; version=0.0.4", text.into());
            }
            _ => {}
        }
        if self.inner.requests.fetch_add(1, Relaxed) + 1 == self.inner.limit {
            self.inner.limit_reached.notify_one();
        }
        let method = req.method().as_str().to_string();
        let target = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").to_string();
        let started = std::time::Instant::now();
        let reply = match self.to_engine_request(req).await {
            Ok(request) => match self.inner.engine.serve_with(&self.inner.site, request, ServeOptions { ini: self.inner.request_ini.clone(), ..ServeOptions::default() }).await {
                Ok(resp) => from_engine(resp.head.status, resp.head.reason, resp.head.headers, resp.body),
                Err(e) => error_reply(&e),
            },
            Err(reply) => reply,
        };
        crate::log!(Debug, "access", "{} {method} {target} {} {:?}", self.peer, reply.status().as_u16(), started.elapsed());
        reply
    }

    async fn health(&self) -> Reply {
        let h = self.inner.engine.health().await;
        let status = if h.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
        let body = health_json(std::process::id() as i64, &[(self.inner.engine.label(), h)]);
        simple(status, "application/json", body.into())
    }

    async fn to_engine_request(&self, req: HyperRequest<Incoming>) -> Result<Request, Reply> {
        let (parts, body) = req.into_parts();
        let mut http = HttpRequest::new(parts.method.as_str(), parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
        http.protocol = format!("{:?}", parts.version);
        http.headers = parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
        http.remote_addr = Some(self.peer);
        http.local_addr = self.local;
        http.https = self.inner.identity.https;
        http.server_name.clone_from(&self.inner.identity.server_name);
        let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let too_large = e.downcast_ref::<http_body_util::LengthLimitError>().is_some();
                return Err(if too_large {
                    simple(StatusCode::PAYLOAD_TOO_LARGE, ERROR_CONTENT_TYPE, error_text(413).into())
                } else {
                    simple(StatusCode::BAD_REQUEST, ERROR_CONTENT_TYPE, error_text(400).into())
                });
            }
        };
        Ok(Request { http, body: RequestBody::from_bytes(body) })
    }
}

fn simple(status: StatusCode, content_type: &'static str, body: Bytes) -> Reply {
    let mut r = HyperResponse::new(HarnessBody::Full(Full::new(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn error_reply(e: &EngineError) -> Reply {
    match e {
        EngineError::Forbidden(_) | EngineError::NotFound(_) | EngineError::BadRequest(_) => {
            crate::log!(Info, "serve", "{e}")
        }
        _ => crate::log!(Error, "serve", "{e}"),
    }
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    simple(status, ERROR_CONTENT_TYPE, error_text(status.as_u16()).into())
}

fn from_engine(status: u16, reason: Option<String>, headers: Vec<(String, String)>, body: ResponseBody) -> Reply {
    let mut r = HyperResponse::new(HarnessBody::stream(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // PHP's reason phrase (`Status: 299 Custom`) is the status line's, as behind nginx.
    if let Some(reason) = reason.and_then(|r| hyper::ext::ReasonPhrase::try_from(r.into_bytes()).ok()) {
        r.extensions_mut().insert(reason);
    }
    let map = r.headers_mut();
    for (name, value) in headers {
        match header_use(&name) {
            HeaderUse::Hidden => continue,
            HeaderUse::ContentLength if content_length(&value).is_none() => continue,
            _ => {}
        }
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(&value)) else {
            crate::log!(Warn, "serve", "dropping invalid response header from PHP");
            continue;
        };
        map.append(name, value);
    }
    r
}

/// Response body: a fixed buffer, or the engine's stream polled one chunk at a time (so a slow
/// client slows PHP down, and a closed connection drops — and aborts — the engine body).
pub enum HarnessBody {
    /// A buffered body (health, metrics, error pages).
    Full(Full<Bytes>),
    /// The engine body; `None` once it has ended.
    Stream(Option<ResponseBody>),
}

impl HarnessBody {
    fn stream(body: ResponseBody) -> Self {
        HarnessBody::Stream(Some(body))
    }
}

impl Body for HarnessBody {
    type Data = Bytes;
    type Error = EngineError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, EngineError>>> {
        match self.get_mut() {
            HarnessBody::Full(full) => Pin::new(full).poll_frame(cx).map_err(|never| match never {}),
            HarnessBody::Stream(stream) => {
                let Some(body) = stream.as_mut() else { return Poll::Ready(None) };
                match body.poll_chunk(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                    Poll::Ready(Some(Err(e))) => {
                        *stream = None;
                        crate::log!(Error, "serve", "response truncated: {e}");
                        Poll::Ready(Some(Err(e)))
                    }
                    Poll::Ready(None) => {
                        *stream = None;
                        Poll::Ready(None)
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            HarnessBody::Full(full) => full.is_end_stream(),
            HarnessBody::Stream(body) => body.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            HarnessBody::Full(full) => full.size_hint(),
            HarnessBody::Stream(_) => SizeHint::default(),
        }
    }
}
