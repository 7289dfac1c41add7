//! [`ResponseHead`]: the CGI response head (`Status:`, `Location:`, headers) PHP sends before
//! the body, parsed from bytes (FPM) or built line by line (embedded).

use crate::error::EngineError;

/// Most bytes a CGI response head may take before the parser gives up (nginx's default
/// `fastcgi_buffer_size` is 4k/8k; we are more generous for cookie-heavy apps).
pub const MAX_HEAD_LEN: usize = 64 * 1024;

/// Status and headers of a PHP response, in the order PHP sent them (repeated headers such as
/// `Set-Cookie` are kept, each as its own entry). `Status:` is consumed into [`status`](Self::status).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// HTTP status code.
    pub status: u16,
    /// Header (name, value) pairs, without `Status`.
    pub headers: Vec<(String, String)>,
    /// The reason phrase PHP sent after the code (`Status: 204 No Content` → `No Content`), if
    /// any. A web server passes `"{status} {reason}"` on as its status line, as nginx's
    /// `fastcgi_pass` does (which, for one, keeps a 204's `Content-Type`).
    pub reason: Option<String>,
    saw_status: bool,
}

/// What a web server does with one header of a PHP response head: the one response-header
/// policy every surface (nginx module, harness, C ABI) applies ([`header_use`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderUse {
    /// Not passed on: hop-by-hop or internal to the server (`Status`, `Connection`,
    /// `Keep-Alive`, `Transfer-Encoding`, `X-Accel-*`), as `fastcgi_hide_header`'s defaults
    /// plus what nginx manages itself.
    Hidden,
    /// `Content-Length`: the server frames the body; a value that is not a number is dropped
    /// ([`content_length`]).
    ContentLength,
    /// `Content-Type`.
    ContentType,
    /// `Location`: passed on as PHP sent it (a relative `/x` stays relative, as with
    /// `fastcgi_pass`).
    Location,
    /// `Server`, which replaces the server's own.
    Server,
    /// `Date`, which replaces the server's own.
    Date,
    /// `Content-Encoding`.
    ContentEncoding,
    /// Any other header: passed on unchanged, repeated ones each as their own line.
    Other,
}

/// The [`HeaderUse`] of a response header name (ASCII case-insensitive).
pub fn header_use(name: &str) -> HeaderUse {
    const HIDDEN: [&str; 4] = ["status", "connection", "keep-alive", "transfer-encoding"];
    let b = name.as_bytes();
    if HIDDEN.iter().any(|h| name.eq_ignore_ascii_case(h)) || b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"x-accel-") {
        return HeaderUse::Hidden;
    }
    const NAMED: [(&str, HeaderUse); 6] = [
        ("content-length", HeaderUse::ContentLength),
        ("content-type", HeaderUse::ContentType),
        ("location", HeaderUse::Location),
        ("server", HeaderUse::Server),
        ("date", HeaderUse::Date),
        ("content-encoding", HeaderUse::ContentEncoding),
    ];
    NAMED.iter().find(|(n, _)| name.eq_ignore_ascii_case(n)).map_or(HeaderUse::Other, |(_, u)| *u)
}

/// The value of a `Content-Length` header, `None` when it is not a decimal number (then the
/// header is dropped and the body is framed by its end).
pub fn content_length(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.parse().ok()).flatten()
}

/// Outcome of [`ResponseHead::parse`].
#[derive(Debug, PartialEq, Eq)]
pub enum HeadParse {
    /// The blank line that ends the head has not arrived yet: feed more bytes.
    Incomplete,
    /// The head is complete; the body starts at byte `body_start` of the input.
    Complete {
        /// The parsed head.
        head: ResponseHead,
        /// Offset of the first body byte in the parsed buffer.
        body_start: usize,
    },
}

impl Default for ResponseHead {
    fn default() -> Self {
        ResponseHead { status: 200, headers: Vec::new(), reason: None, saw_status: false }
    }
}

impl ResponseHead {
    /// How many bytes this head takes as CGI text (`Status: ...`, one `Name: value\r\n` line
    /// per header, the blank line): what a head size limit (`fephp_buffer_size`) compares.
    pub fn wire_len(&self) -> usize {
        let status = 14 + self.reason.as_ref().map_or(0, |r| r.len() + 1);
        status + self.headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum::<usize>() + 2
    }

    /// An empty head with status 200.
    pub fn new() -> Self {
        ResponseHead::default()
    }

    /// Parses a CGI head from the start of `buf`. Lines end with `\n` or `\r\n`; the head ends
    /// at the first empty line. A malformed line or a head over `MAX_HEAD_LEN` is a
    /// [`EngineError::Protocol`] (→ 502, as nginx answers "upstream sent invalid header").
    pub fn parse(buf: &[u8]) -> Result<HeadParse, EngineError> {
        let mut head = ResponseHead::new();
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
            let line_end = pos + nl;
            let mut line = &buf[pos..line_end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            pos = line_end + 1;
            if line.is_empty() {
                head.finish();
                return Ok(HeadParse::Complete { head, body_start: pos });
            }
            head.push_line(line)?;
            if pos > MAX_HEAD_LEN {
                break;
            }
        }
        if buf.len() > MAX_HEAD_LEN {
            return Err(EngineError::Protocol(format!("response head longer than {MAX_HEAD_LEN} bytes")));
        }
        Ok(HeadParse::Incomplete)
    }

    /// Adds one `Name: value` line (without line end). `Status: NNN reason` sets the status.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), EngineError> {
        let colon = memchr::memchr(b':', line)
            .ok_or_else(|| EngineError::Protocol(format!("invalid header line {:?}", String::from_utf8_lossy(line))))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_token_byte(b)) {
            return Err(EngineError::Protocol(format!("invalid header name {:?}", String::from_utf8_lossy(name))));
        }
        let value = trim(&line[colon + 1..]);
        let name = super::text(name);
        let value = super::text(value);
        self.push_header(&name, &value)
    }

    /// Adds one header; `Status` sets the status code instead.
    pub fn push_header(&mut self, name: &str, value: &str) -> Result<(), EngineError> {
        if name.eq_ignore_ascii_case("status") {
            let value = value.trim_start();
            let (code, reason) = value.split_once([' ', '\t']).unwrap_or((value, ""));
            self.status = match code.parse::<u16>() {
                Ok(c) if (100..=999).contains(&c) => c,
                _ => return Err(EngineError::Protocol(format!("invalid Status header {value:?}"))),
            };
            let reason = reason.trim();
            self.reason = (!reason.is_empty()).then(|| reason.to_string());
            self.saw_status = true;
            return Ok(());
        }
        self.headers.push((name.to_string(), value.to_string()));
        Ok(())
    }

    /// Sets the status explicitly, without a reason phrase (the embedded SAPI knows it without
    /// a `Status:` line).
    pub fn set_status(&mut self, status: u16) {
        self.status = status;
        self.reason = None;
        self.saw_status = true;
    }

    /// Applies the CGI rule: a `Location` without a `Status` means 302.
    pub fn finish(&mut self) {
        if !self.saw_status && self.header("location").is_some() {
            self.status = 302;
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {

    #[test]
    fn header_policy_hides_hop_by_hop_and_accel_headers() {
        for h in ["Status", "connection", "Transfer-Encoding", "X-Accel-Redirect", "keep-alive"] {
            assert_eq!(super::header_use(h), super::HeaderUse::Hidden, "{h}");
        }
        for h in ["Set-Cookie", "X-Acc", "abcdefg\u{e9}x"] {
            assert_eq!(super::header_use(h), super::HeaderUse::Other, "{h}");
        }
        assert_eq!(super::header_use("LOCATION"), super::HeaderUse::Location);
        assert_eq!(super::header_use("content-length"), super::HeaderUse::ContentLength);
        assert_eq!(super::content_length(" 12 "), Some(12));
        assert_eq!(super::content_length("-1"), None);
        assert_eq!(super::content_length("1e3"), None);
    }
    use super::*;

    fn complete(buf: &[u8]) -> (ResponseHead, usize) {
        match ResponseHead::parse(buf).unwrap() {
            HeadParse::Complete { head, body_start } => (head, body_start),
            HeadParse::Incomplete => panic!("incomplete"),
        }
    }

    #[test]
    fn status_line_sets_code_and_is_not_a_header() {
        let buf = b"Status: 404 Not Found\r\nContent-type: text/html\r\n\r\nbody";
        let (h, at) = complete(buf);
        assert_eq!(h.status, 404);
        assert_eq!(h.reason.as_deref(), Some("Not Found"));
        assert_eq!(h.headers, vec![("Content-type".into(), "text/html".into())]);
        assert_eq!(&buf[at..], b"body");
        let (h, _) = complete(b"Status: 204

");
        assert_eq!((h.status, h.reason), (204, None));
    }

    #[test]
    fn location_without_status_is_302() {
        let (h, _) = complete(b"Location: /next\n\n");
        assert_eq!(h.status, 302);
        let (h, _) = complete(b"Status: 301\nLocation: /next\n\n");
        assert_eq!(h.status, 301);
    }

    #[test]
    fn repeated_headers_keep_order() {
        let (h, _) = complete(b"Set-Cookie: a=1\r\nX: y\r\nSet-Cookie: b=2\r\n\r\n");
        let cookies: Vec<_> = h.headers.iter().filter(|(n, _)| n == "Set-Cookie").map(|(_, v)| v.as_str()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
    }

    #[test]
    fn incomplete_until_blank_line_at_every_split() {
        let full = b"Status: 201\r\nA: b\r\n\r\nrest";
        for cut in 0..full.len() - 4 {
            assert_eq!(ResponseHead::parse(&full[..cut]).unwrap(), HeadParse::Incomplete, "cut {cut}");
        }
        assert_eq!(complete(full).1, full.len() - 4);
    }

    #[test]
    fn malformed_heads_are_protocol_errors() {
        for bad in [&b"no colon here\r\n\r\n"[..], b": empty name\n\n", b"Status: abc\n\n", b"Sp ace: x\n\n"] {
            assert!(matches!(ResponseHead::parse(bad), Err(EngineError::Protocol(_))), "{bad:?}");
        }
        let huge = vec![b'a'; MAX_HEAD_LEN + 10];
        assert!(ResponseHead::parse(&huge).is_err());
    }
}
