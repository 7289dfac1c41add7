//! `fephp_status;`: reports the engines of the worker process that answers (each nginx worker has
//! its own engines and counters, so consecutive requests may see different numbers).
//!
//! - `GET /status?json` or `Accept: application/json`: health JSON, status 200 when every engine
//!   is healthy, else 503.
//! - otherwise: Prometheus text, each engine's series labelled `engine="..."`.
//! - Upstream blocks used by `fephp_pass NAME` ([`crate::upstream`]) are listed server by
//!   server: nginx's peer state (up, down, failed until, fails, in-flight requests) and this
//!   worker's attempts and errors. A failed server does not make the report unhealthy; an
//!   upstream with no server up does.

use std::sync::Arc;

use bytes::Bytes;
use fephp::cgi::ResponseHead;
use fephp::engine::{health_json, json_str, Health};
use fephp::{Engine, EngineError};
use ngx::ffi::{
    ngx_http_finalize_request, ngx_http_read_client_request_body, ngx_http_request_t, ngx_int_t, ngx_pid,
    ngx_table_elt_t, NGX_DONE, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR, NGX_HTTP_NOT_ALLOWED,
    NGX_HTTP_SPECIAL_RESPONSE, NGX_LOG_ERR,
};
use ngx::ngx_log_error;

use crate::bridge::{self, Output, Settings};
use crate::upstream::{self, ServerState};
use crate::{worker, Module};
use ngx::http::HttpModuleMainConf;

/// One upstream block's servers for the report: (label, servers, their engines in use).
type UpstreamReport = (String, Vec<ServerState>, Vec<(String, Arc<Engine>)>);

/// The content handler `fephp_status` installs.
///
/// # Safety
/// Called by nginx with a live request.
pub unsafe extern "C" fn fephp_status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    ffi_guard!(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, {
        // SAFETY: live request from nginx.
        unsafe {
            if (*r).method as u32 & (NGX_HTTP_GET | NGX_HTTP_HEAD) == 0 {
                return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
            }
            let rc = ngx_http_read_client_request_body(r, Some(status_body_read));
            if rc >= NGX_HTTP_SPECIAL_RESPONSE as ngx_int_t {
                return rc;
            }
        }
        NGX_DONE as ngx_int_t
    })
}

unsafe extern "C" fn status_body_read(r: *mut ngx_http_request_t) {
    // SAFETY (default): on panic the request still gets an answer, finalized once (through the
    // bridge when it already owns the request).
    ffi_guard!(unsafe { bridge::finalize_after_panic(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t) }, {
        // SAFETY: live request on the nginx thread.
        unsafe {
            let json = wants_json(r);
            let full = (*r).args.as_bytes().split(|&b| b == b'&').any(|a| a == b"full" || a.starts_with(b"full="));
            let current = worker::current();
            let engines = current.as_ref().map(|w| w.engines()).unwrap_or_default();
            let mut upstreams: Vec<UpstreamReport> = Vec::new();
            if let (Some(w), Some(main)) = (&current, Module::main_conf(&*r)) {
                for (i, key) in main.upstreams.iter().enumerate() {
                    let states = upstream::states(i, key, &w.upstreams);
                    let used = states
                        .iter()
                        .filter_map(|s| {
                            let server = w.upstreams.used(i, &s.name)?;
                            let engine = server.engine.as_ref().ok()?.clone();
                            Some((format!("upstream {} server {}", key.name, s.name), engine))
                        })
                        .collect();
                    let label = if main.upstreams.iter().filter(|k| k.name == key.name).count() > 1 {
                        format!("{}#{i}", key.name)
                    } else {
                        key.name.clone()
                    };
                    upstreams.push((label, states, used));
                }
            }
            // SAFETY: plain read of nginx's pid.
            let pid = ngx_pid as i64;
            // A small complete body: no buffering needed (nothing behind it to free).
            let mut buffering = crate::response_conf::ResponseConf::default().buffering();
            buffering.enabled = false;
            let settings = Settings {
                read_timeout: std::time::Duration::from_secs(10),
                intercept_errors: false,
                buffering,
                peer: std::ptr::null_mut(),
            };
            // On this thread: FPM health probes use the pools' nginx sockets.
            let fut = async move { Ok::<_, EngineError>(report(pid, engines, upstreams, json, full).await) };
            if let Err(e) = bridge::start_local(r, settings, Box::pin(fut)) {
                ngx_log_error!(NGX_LOG_ERR, (*(*r).connection).log, "fephp_status: {e}");
                ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t);
            }
        }
    })
}

/// `?json` (or `json` among the args) or an `Accept` header naming `application/json`.
unsafe fn wants_json(r: *mut ngx_http_request_t) -> bool {
    // SAFETY: live request.
    unsafe {
        let args = (*r).args.as_bytes();
        if args.split(|&b| b == b'&').any(|a| a == b"json" || a.starts_with(b"json=")) {
            return true;
        }
        let mut part: *const ngx::ffi::ngx_list_part_t = &(*r).headers_in.headers.part;
        while !part.is_null() {
            let elts = std::slice::from_raw_parts((*part).elts as *const ngx_table_elt_t, (*part).nelts);
            for h in elts {
                if h.key.as_bytes().eq_ignore_ascii_case(b"accept")
                    && String::from_utf8_lossy(h.value.as_bytes()).contains("application/json")
                {
                    return true;
                }
            }
            part = (*part).next;
        }
        false
    }
}

/// `?full`: one series per executor of the executor pool (pid, state, current URI and its
/// duration, last request's CPU, peak memory and duration), like php-fpm's `status?full`.
async fn report(
    pid: i64,
    engines: Vec<(String, Result<Arc<Engine>, String>)>,
    upstreams: Vec<UpstreamReport>,
    json: bool,
    full: bool,
) -> Output {
    let mut head = ResponseHead::new();
    let body = if json {
        let mut healths = Vec::new();
        for (label, slot) in &engines {
            let h = match slot {
                Ok(engine) => engine.health().await,
                Err(why) => Health { backend: "none", ok: false, detail: why.clone(), busy: false },
            };
            healths.push((label.clone(), h));
        }
        let ok = healths.iter().all(|(_, h)| h.ok)
            && upstreams.iter().all(|(_, servers, _)| servers.iter().any(|s| s.state() == "up"));
        head.set_status(if ok { 200 } else { 503 });
        let _ = head.push_header("Content-Type", "application/json");
        let mut body = health_json(pid, &healths);
        if !upstreams.is_empty() {
            // `{"pid":..,"ok":..,"engines":[..],"upstreams":[..]}`
            body.truncate(body.trim_end().len() - 1);
            if !ok {
                body = body.replacen("\"ok\":true", "\"ok\":false", 1);
            }
            let list: Vec<String> = upstreams.iter().map(|(name, servers, _)| upstream_json(name, servers)).collect();
            body.push_str(&format!(",\"upstreams\":[{}]}}\n", list.join(",")));
        }
        body
    } else {
        let _ = head.push_header("Content-Type", "text/plain; version=0.0.4");
        let mut text = format!("# fephp_status of nginx worker pid {pid} (per-worker counters)\n");
        let mut seen_meta = Vec::new();
        for (label, slot) in &engines {
            if let Ok(engine) = slot {
                text.push_str(&label_metrics(&engine.render_metrics(), label, &mut seen_meta));
                if full {
                    if let Some(st) = engine.executor_status() {
                        let mut per = String::new();
                        st.render_executors(&mut per);
                        text.push_str(&label_metrics(&per, label, &mut seen_meta));
                    }
                }
            }
        }
        if !upstreams.is_empty() {
            text.push_str(&upstream_metrics(&upstreams));
            for (_, _, used) in &upstreams {
                for (label, engine) in used {
                    text.push_str(&label_metrics(&engine.render_metrics(), label, &mut seen_meta));
                }
            }
        }
        text
    };
    let _ = head.push_header("Cache-Control", "no-store");
    Output::Full(head, Bytes::from(body))
}

/// `{"upstream":NAME,"ok":bool,"servers":[{"server":..,"state":"up"|"down"|"failed",...}]}`.
pub fn upstream_json(name: &str, servers: &[ServerState]) -> String {
    let list: Vec<String> = servers
        .iter()
        .map(|s| {
            format!(
                "{{\"server\":{},\"state\":\"{}\",\"backup\":{},\"weight\":{},\"fails\":{},\"max_fails\":{},\"fail_timeout\":{},\"failed_until\":{},\"conns\":{},\"requests\":{},\"errors\":{}}}",
                json_str(&s.name),
                s.state(),
                s.backup,
                s.weight,
                s.fails,
                s.max_fails,
                s.fail_timeout,
                s.failed_until.map_or("null".to_string(), |t| t.to_string()),
                s.conns,
                s.requests,
                s.errors
            )
        })
        .collect();
    let ok = servers.iter().any(|s| s.state() == "up");
    format!("{{\"upstream\":{},\"ok\":{ok},\"servers\":[{}]}}", json_str(name), list.join(","))
}

/// Prometheus series of every upstream server, labelled `upstream`, `server` and `backup`.
fn upstream_metrics(upstreams: &[UpstreamReport]) -> String {
    type Get = fn(&ServerState) -> i64;
    let series: [(&str, &str, &str, Get); 6] = [
        ("fephp_upstream_server_up", "gauge", "1 when the balancer may pick the server (not down, not failed).", |s| (s.state() == "up") as i64),
        ("fephp_upstream_server_failed_until_seconds", "gauge", "Unix time until which a failed server is skipped (0: not failed).", |s| s.failed_until.unwrap_or(0)),
        ("fephp_upstream_server_fails", "gauge", "Failures in the current fail_timeout window.", |s| s.fails as i64),
        ("fephp_upstream_server_conns", "gauge", "Requests in flight to the server.", |s| s.conns as i64),
        ("fephp_upstream_server_requests_total", "counter", "Attempts sent to the server by this worker.", |s| s.requests as i64),
        ("fephp_upstream_server_errors_total", "counter", "Attempts that failed (error, timeout, invalid response).", |s| s.errors as i64),
    ];
    let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::new();
    for (metric, kind, help, get) in series {
        out.push_str(&format!("# HELP {metric} {help}\n# TYPE {metric} {kind}\n"));
        for (name, servers, _) in upstreams {
            for s in servers {
                out.push_str(&format!(
                    "{metric}{{upstream=\"{}\",server=\"{}\",backup=\"{}\"}} {}\n",
                    esc(name),
                    esc(&s.name),
                    s.backup,
                    get(s)
                ));
            }
        }
    }
    out
}

/// Adds `engine="label"` to every sample of a Prometheus text exposition; `# HELP`/`# TYPE`
/// lines already emitted for an earlier engine (names in `seen_meta`) are dropped.
pub fn label_metrics(text: &str, label: &str, seen_meta: &mut Vec<String>) -> String {
    let label = label.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if let Some(meta) = line.strip_prefix("# ") {
            let key: Vec<&str> = meta.splitn(3, ' ').take(2).collect();
            let key = key.join(" ");
            if seen_meta.contains(&key) {
                continue;
            }
            seen_meta.push(key);
            out.push_str(line);
        } else if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
        } else {
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let (name, rest) = line.split_at(name_end);
            if let Some(rest) = rest.strip_prefix('{') {
                let sep = if rest.starts_with('}') { "" } else { "," };
                out.push_str(&format!("{name}{{engine=\"{label}\"{sep}{rest}"));
            } else {
                out.push_str(&format!("{name}{{engine=\"{label}\"}}{rest}"));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_samples_and_dedupes_meta() {
        let mut seen = Vec::new();
        let a = label_metrics("# HELP x_total X\n# TYPE x_total counter\nx_total 3\ny{k=\"v\"} 1\nz{} 2\n", "fpm a", &mut seen);
        assert_eq!(a, "# HELP x_total X\n# TYPE x_total counter\nx_total{engine=\"fpm a\"} 3\ny{engine=\"fpm a\",k=\"v\"} 1\nz{engine=\"fpm a\"} 2\n");
        let b = label_metrics("# HELP x_total X\nx_total 4\n", "embedded", &mut seen);
        assert_eq!(b, "x_total{engine=\"embedded\"} 4\n");
    }
}
