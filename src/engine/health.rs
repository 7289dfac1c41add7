//! [`Health`] and the one health JSON schema every surface answers with (`/_health` of the
//! harness, `fephp_status?json` of the nginx module).

/// Backend health of one engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// `"fpm"` or `"embedded"` (`"none"` for an engine that did not start).
    pub backend: &'static str,
    /// True when the backend can take requests (FPM reachable; PHP thread alive).
    pub ok: bool,
    /// Human-readable detail (the FPM address, the error).
    pub detail: String,
    /// Every PHP worker is busy: no FPM child answered the probe within
    /// [`crate::pool::PROBE_TIMEOUT`], the embedded PHP thread is running a request, or no
    /// executor is idle. A busy backend is still `ok` (it takes requests; they wait).
    pub busy: bool,
}

/// The health JSON of a process's engines, each with a label (`embedded`, `fpm ADDRESS`):
/// `{"pid":N,"ok":bool,"engines":[{"engine":..,"backend":..,"ok":..,"busy":..,"detail":..}]}` and a
/// newline. `ok` is true when every engine is; answer 200 then, else 503.
pub fn health_json(pid: i64, engines: &[(String, Health)]) -> String {
    let ok = engines.iter().all(|(_, h)| h.ok);
    let engines: Vec<String> = engines
        .iter()
        .map(|(label, h)| {
            format!(
                "{{\"engine\":{},\"backend\":{},\"ok\":{},\"busy\":{},\"detail\":{}}}",
                json_str(label),
                json_str(h.backend),
                h.ok,
                h.busy,
                json_str(&h.detail)
            )
        })
        .collect();
    format!("{{\"pid\":{pid},\"ok\":{ok},\"engines\":[{}]}}\n", engines.join(","))
}

/// `s` as a JSON string literal (quotes, backslashes and control characters escaped), for the
/// health JSON and what a surface adds to it (the nginx module's upstream servers).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes() {
        let h = Health { backend: "fpm", ok: false, detail: "a \"b\"\n".into(), busy: false };
        assert_eq!(
            health_json(7, &[("fpm x".into(), h)]),
            "{\"pid\":7,\"ok\":false,\"engines\":[{\"engine\":\"fpm x\",\"backend\":\"fpm\",\"ok\":false,\"busy\":false,\"detail\":\"a \\\"b\\\"\\u000a\"}]}\n"
        );
    }
}
