//! `fe-php bench` arguments: the clap definition and the validated [`Target`] built from it.
//!
//! Every check that can fail runs inside a clap value parser, so a bad argument is reported
//! by clap as `invalid value '…' for '--flag <…>': reason` and the process exits with 2.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use hyper::header::{HeaderName, HeaderValue, HOST};
use hyper::{HeaderMap, Method, Uri};

/// Arguments of `fe-php bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Target URL: `http://host[:port]/path?query` (plain HTTP/1.1; https is not supported).
    #[arg(long, value_parser = parse_url)]
    pub url: BenchUrl,
    /// Measured duration in seconds (after the warm-up).
    #[arg(long, short = 'd', default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub duration: u64,
    /// Open connections (one request in flight on each; HTTP/1.1 keep-alive).
    #[arg(long, short = 'c', default_value_t = 50, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Open loop: total requests per second, sent on a fixed schedule over the connections;
    /// latency is measured from each request's scheduled send time (coordinated omission
    /// corrected). Without it: closed loop, each connection sends as soon as it has a reply.
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub rps: Option<u64>,
    /// Warm-up seconds before measuring (requests run but are not recorded).
    #[arg(long, default_value_t = 0, value_name = "SECS", value_parser = clap::value_parser!(u64).range(0..=3_600))]
    pub warmup: u64,
    /// HTTP method.
    #[arg(long, short = 'm', default_value = "GET", value_parser = parse_method)]
    pub method: Method,
    /// Extra request header `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "K: V", value_parser = parse_header)]
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Request body, read from this file once at start.
    #[arg(long, value_name = "FILE", value_parser = parse_body_file)]
    pub body_file: Option<BodyFile>,
    /// Per-request timeout in seconds (counted as a `timeout` error).
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub timeout: u64,
    /// Tokio worker threads of the load generator.
    #[arg(long, short = 't', default_value_t = 2, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_024))]
    pub threads: u64,
    /// Runtime layout: `per-thread` (one current-thread tokio runtime per thread, the
    /// connections split between them, like wrk's per-thread event loops) or `multi-thread`
    /// (one work-stealing runtime).
    #[arg(long, value_enum, default_value_t = RuntimeKind::PerThread)]
    pub runtime: RuntimeKind,
    /// Print the result as one JSON object on stdout instead of the text report.
    #[arg(long)]
    pub json: bool,
}

/// How the load generator's threads run the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeKind {
    /// One current-thread runtime per thread, connections assigned round-robin.
    PerThread,
    /// One multi-thread (work-stealing) runtime with `--threads` workers.
    MultiThread,
}

/// A parsed `--url`: address to connect to, `Host` header, request target.
#[derive(Debug, Clone)]
pub struct BenchUrl {
    /// The URL as given.
    pub text: String,
    /// The resolved socket address (first address of the host).
    pub addr: SocketAddr,
    /// `Host` header value (`host[:port]`).
    pub host: HeaderValue,
    /// Origin-form request target (`/path?query`).
    pub target: Uri,
}

/// A `--body-file`: its path and contents.
#[derive(Debug, Clone)]
pub struct BodyFile {
    /// The path as given.
    pub path: PathBuf,
    /// The file's bytes.
    pub bytes: Bytes,
}

fn parse_url(s: &str) -> Result<BenchUrl, String> {
    let uri: Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => return Err("https is not supported (plain HTTP/1.1 only)".into()),
        Some(other) => return Err(format!("unsupported scheme {other:?} (expected http://)")),
        None => return Err("missing scheme (expected http://host[:port]/path)".into()),
    }
    let authority = uri.authority().ok_or("missing host")?;
    let host = authority.host();
    if host.is_empty() {
        return Err("missing host".into());
    }
    let port = authority.port_u16().unwrap_or(80);
    let lookup_host = host.trim_start_matches('[').trim_end_matches(']');
    let addr = (lookup_host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let target: Uri = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .filter(|pq| !pq.is_empty())
        .unwrap_or("/")
        .parse()
        .map_err(|e| format!("bad path: {e}"))?;
    let host = HeaderValue::from_str(authority.as_str()).map_err(|e| format!("bad host: {e}"))?;
    Ok(BenchUrl { text: s.to_string(), addr, host, target })
}

fn parse_method(s: &str) -> Result<Method, String> {
    Method::from_bytes(s.as_bytes()).map_err(|_| format!("not an HTTP method: {s:?}"))
}

fn parse_header(s: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, value) = s.split_once(':').ok_or("expected `Name: value`")?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| format!("bad header name {:?}", name.trim()))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| format!("bad header value {:?}", value.trim()))?;
    Ok((name, value))
}

fn parse_body_file(s: &str) -> Result<BodyFile, String> {
    let bytes = std::fs::read(s).map_err(|e| format!("cannot read {s}: {e}"))?;
    Ok(BodyFile { path: PathBuf::from(s), bytes: Bytes::from(bytes) })
}

/// What every connection sends: built once from [`BenchArgs`], cloned cheaply per request.
#[derive(Debug, Clone)]
pub struct Target {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Method.
    pub method: Method,
    /// Origin-form target.
    pub uri: Uri,
    /// Headers, `Host` included.
    pub headers: HeaderMap,
    /// The body (empty without `--body-file`).
    pub body: Bytes,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Target {
    /// The request template of `args`.
    pub fn from_args(args: &BenchArgs) -> Target {
        let mut headers = HeaderMap::with_capacity(args.headers.len() + 1);
        headers.insert(HOST, args.url.host.clone());
        for (name, value) in &args.headers {
            headers.append(name.clone(), value.clone());
        }
        Target {
            addr: args.url.addr,
            method: args.method.clone(),
            uri: args.url.target.clone(),
            headers,
            body: args.body_file.as_ref().map(|b| b.bytes.clone()).unwrap_or_default(),
            timeout: Duration::from_secs(args.timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let u = parse_url("http://127.0.0.1:8080/hello.php?x=1").unwrap();
        assert_eq!(u.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(u.host, "127.0.0.1:8080");
        assert_eq!(u.target, "/hello.php?x=1");
        let u = parse_url("http://127.0.0.1").unwrap();
        assert_eq!(u.addr.port(), 80);
        assert_eq!(u.target, "/");
        assert!(parse_url("https://127.0.0.1/").unwrap_err().contains("https"));
        assert!(parse_url("127.0.0.1:80/x").is_err());
        assert!(parse_url("ftp://127.0.0.1/").is_err());
        assert!(parse_url("not a url").is_err());
    }

    #[test]
    fn headers() {
        let (n, v) = parse_header("X-Foo:  bar baz ").unwrap();
        assert_eq!(n, "x-foo");
        assert_eq!(v, "bar baz");
        assert!(parse_header("no colon").is_err());
        assert!(parse_header("bad name: v").is_err());
    }
}
