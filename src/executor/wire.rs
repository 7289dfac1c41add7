//! The executor protocol: what crosses the socket between a client (an nginx worker, the
//! harness) and an executor process. Pure encode/decode, no I/O (like `src/fastcgi/`).
//!
//! Request (client → executor), one message, then the body's bytes as they are:
//! `"FEX1" | u32 head_len | head`, head = `u64 submitted_ns | u64 body_len | u32 n |
//! n × (u32 name_len, u32 value_len, name, value) | filename | script_name | path_info |
//! u32 m | m × (u8 admin, name, value)`, each string `u32 len` + bytes; the last list is the
//! request's ini settings (`fephp_php_value` / `fephp_php_admin_value`), applied by the
//! executor around this request only. The executor reads the whole body before PHP starts, so the two
//! directions never wait on each other.
//!
//! Response (executor → client): frames `u8 type | 3 × u8 0 | u32 len | payload`: one `HEAD`
//! (`u16 status | u16 0 | u32 n | n × (u32 name_len, u32 value_len, name, value)`), `DATA`*,
//! then `END`; or `FAIL` (`u8 kind | message`) in place of anything not yet sent.
//!
//! Everything decoded here comes from another process and is UNTRUSTED: every length is
//! checked against what is left and against the limits below before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::cgi::{Params, ResponseHead, Script};
use crate::config::{IniSetting, RequestIni};

/// Request magic.
pub const MAGIC: &[u8; 4] = b"FEX2";
/// Largest request head (params + script paths).
pub const MAX_REQUEST_HEAD: usize = 1 << 20;
/// Most params in a request.
pub const MAX_PARAMS: usize = 4096;
/// Largest response frame payload.
pub const MAX_FRAME: usize = 1 << 20;
/// Most per-request ini settings.
pub const MAX_INI: usize = 1024;
/// Most response headers.
pub const MAX_HEADERS: usize = 1024;
/// Largest request body an executor accepts.
pub const MAX_BODY: u64 = 1 << 36;

/// Frame types of a response.
pub const HEAD: u8 = 1;
/// Body bytes.
pub const DATA: u8 = 2;
/// End of the response.
pub const END: u8 = 3;
/// The request failed (in place of the head, or after it: the response is truncated).
pub const FAIL: u8 = 4;

/// `FAIL` kinds.
pub const FAIL_INTERNAL: u8 = 0;
/// The request waited too long in the queue (503).
pub const FAIL_OVERLOADED: u8 = 1;

/// A decoded request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// When the client sent it (CLOCK_MONOTONIC, ns).
    pub submitted_ns: u64,
    /// Body bytes that follow.
    pub body_len: u64,
    /// The CGI params.
    pub params: Params,
    /// SCRIPT_FILENAME.
    pub filename: Vec<u8>,
    /// SCRIPT_NAME.
    pub script_name: String,
    /// PATH_INFO.
    pub path_info: String,
    /// Per-request ini settings (`None`: none).
    pub ini: Option<RequestIni>,
}

/// One response frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Status and headers.
    Head(ResponseHead),
    /// Body bytes.
    Data(Bytes),
    /// The end.
    End,
    /// A failure: kind and message.
    Fail(u8, String),
}

/// Why bytes from the peer were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, WireError> {
    Err(WireError(msg.into()))
}

fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_u32_le(b.len() as u32);
    out.put_slice(b);
}

/// Encodes a request's magic and head into `out` (the body's bytes follow it on the wire).
pub fn encode_request(
    out: &mut BytesMut,
    submitted_ns: u64,
    body_len: u64,
    params: &Params,
    script: &Script,
    ini: Option<&RequestIni>,
) {
    let (filename, script_name, path_info) =
        (script.filename.as_os_str().as_encoded_bytes(), script.script_name.as_str(), script.path_info.as_str());
    out.put_slice(MAGIC);
    let len_at = out.len();
    out.put_u32_le(0);
    let start = out.len();
    out.put_u64_le(submitted_ns);
    out.put_u64_le(body_len);
    out.put_u32_le(params.iter().len() as u32);
    for (n, v) in params.iter() {
        out.put_u32_le(n.len() as u32);
        out.put_u32_le(v.len() as u32);
        out.put_slice(n);
        out.put_slice(v);
    }
    put_bytes(out, filename);
    put_bytes(out, script_name.as_bytes());
    put_bytes(out, path_info.as_bytes());
    let entries = ini.map_or(&[][..], |i| &i.entries[..]);
    out.put_u32_le(entries.len() as u32);
    for e in entries {
        out.put_u8(e.admin as u8);
        put_bytes(out, e.name.as_bytes());
        put_bytes(out, e.value.as_bytes());
    }
    let len = (out.len() - start) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
}

/// The head length announced by the 8-byte preamble (magic + length).
pub fn request_head_len(preamble: &[u8; 8]) -> Result<usize, WireError> {
    if &preamble[..4] != MAGIC {
        return err("bad magic");
    }
    let len = u32::from_le_bytes([preamble[4], preamble[5], preamble[6], preamble[7]]) as usize;
    if len > MAX_REQUEST_HEAD {
        return err(format!("request head of {len} bytes is over the limit"));
    }
    Ok(len)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Result<u32, WireError> {
        if self.0.len() < 4 {
            return err("truncated");
        }
        Ok(self.0.get_u32_le())
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        if self.0.len() < 8 {
            return err("truncated");
        }
        Ok(self.0.get_u64_le())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return err("truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Decodes a request head (the bytes after the preamble).
pub fn decode_request_head(head: &[u8]) -> Result<RequestHead, WireError> {
    let mut r = Reader(head);
    let submitted_ns = r.u64()?;
    let body_len = r.u64()?;
    if body_len > MAX_BODY {
        return err("request body over the limit");
    }
    let n = r.u32()? as usize;
    if n > MAX_PARAMS {
        return err("too many params");
    }
    let mut params = Params::with_capacity(n);
    for _ in 0..n {
        let nl = r.u32()? as usize;
        let vl = r.u32()? as usize;
        let name = r.take(nl)?;
        let value = r.take(vl)?;
        params.push(name, value);
    }
    let filename = r.bytes()?.to_vec();
    let script_name = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| WireError("script name is not UTF-8".into()))?;
    let path_info = String::from_utf8(r.bytes()?.to_vec()).map_err(|_| WireError("path info is not UTF-8".into()))?;
    let m = r.u32()? as usize;
    if m > MAX_INI {
        return err("too many ini settings");
    }
    let mut entries = Vec::with_capacity(m);
    for _ in 0..m {
        let admin = match r.take(1)?[0] {
            0 => false,
            1 => true,
            _ => return err("bad ini flag"),
        };
        let name = std::str::from_utf8(r.bytes()?).map_err(|_| WireError("ini name is not UTF-8".into()))?;
        let value = std::str::from_utf8(r.bytes()?).map_err(|_| WireError("ini value is not UTF-8".into()))?;
        RequestIni::check(name, value).map_err(WireError)?;
        entries.push(IniSetting { name: name.to_string(), value: value.to_string(), admin });
    }
    if !r.0.is_empty() {
        return err("trailing bytes in the request head");
    }
    let ini = (!entries.is_empty()).then_some(RequestIni { entries });
    Ok(RequestHead { submitted_ns, body_len, params, filename, script_name, path_info, ini })
}

fn frame_header(out: &mut BytesMut, kind: u8, len: usize) {
    out.put_u8(kind);
    out.put_slice(&[0, 0, 0]);
    out.put_u32_le(len as u32);
}

/// Appends a `HEAD` frame.
pub fn encode_head(out: &mut BytesMut, head: &ResponseHead) {
    let len = 8 + head.headers.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>();
    frame_header(out, HEAD, len);
    out.put_u16_le(head.status);
    out.put_u16_le(0);
    out.put_u32_le(head.headers.len() as u32);
    for (n, v) in &head.headers {
        out.put_u32_le(n.len() as u32);
        out.put_u32_le(v.len() as u32);
        out.put_slice(n.as_bytes());
        out.put_slice(v.as_bytes());
    }
}

/// Appends `DATA` frames for `data` (split at [`MAX_FRAME`]; nothing for an empty slice).
pub fn encode_data(out: &mut BytesMut, data: &[u8]) {
    for piece in data.chunks(MAX_FRAME) {
        frame_header(out, DATA, piece.len());
        out.put_slice(piece);
    }
}

/// Appends an `END` frame.
pub fn encode_end(out: &mut BytesMut) {
    frame_header(out, END, 0);
}

/// Appends a `FAIL` frame.
pub fn encode_fail(out: &mut BytesMut, kind: u8, message: &str) {
    let msg = &message.as_bytes()[..message.len().min(4096)];
    frame_header(out, FAIL, 1 + msg.len());
    out.put_u8(kind);
    out.put_slice(msg);
}

/// Takes the next complete frame off the front of `buf`; `Ok(None)`: more bytes needed.
pub fn decode_frame(buf: &mut BytesMut) -> Result<Option<Frame>, WireError> {
    if buf.len() < 8 {
        return Ok(None);
    }
    let kind = buf[0];
    let len = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if buf[1..4] != [0, 0, 0] {
        return err("bad frame header");
    }
    if len > MAX_FRAME {
        return err(format!("frame of {len} bytes is over the limit"));
    }
    if buf.len() < 8 + len {
        buf.reserve(8 + len - buf.len());
        return Ok(None);
    }
    buf.advance(8);
    let payload = buf.split_to(len).freeze();
    match kind {
        HEAD => decode_head(&payload).map(|h| Some(Frame::Head(h))),
        DATA => Ok(Some(Frame::Data(payload))),
        END if len == 0 => Ok(Some(Frame::End)),
        FAIL if len >= 1 => {
            Ok(Some(Frame::Fail(payload[0], String::from_utf8_lossy(&payload[1..]).into_owned())))
        }
        _ => err(format!("bad frame (type {kind}, {len} bytes)")),
    }
}

fn decode_head(payload: &[u8]) -> Result<ResponseHead, WireError> {
    let mut r = Reader(payload);
    let status_word = r.u32()?;
    let status = (status_word & 0xffff) as u16;
    if !(100..=999).contains(&status) || status_word >> 16 != 0 {
        return err(format!("bad status {status}"));
    }
    let n = r.u32()? as usize;
    if n > MAX_HEADERS {
        return err("too many headers");
    }
    let mut head = ResponseHead::new();
    head.set_status(status);
    for _ in 0..n {
        let nl = r.u32()? as usize;
        let vl = r.u32()? as usize;
        let name = std::str::from_utf8(r.take(nl)?).map_err(|_| WireError("header name is not UTF-8".into()))?;
        let value = std::str::from_utf8(r.take(vl)?).map_err(|_| WireError("header value is not UTF-8".into()))?;
        let bad_name = name.is_empty()
            || name.eq_ignore_ascii_case("status")
            || name.bytes().any(|b| b <= b' ' || b == b':' || b >= 0x7f);
        if bad_name || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return err(format!("bad header {name:?}"));
        }
        head.headers.push((name.to_string(), value.to_string()));
    }
    if !r.0.is_empty() {
        return err("trailing bytes in the head");
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips() {
        let mut params = Params::with_capacity(2);
        params.push("REQUEST_METHOD", "GET");
        params.push("X", "");
        let mut out = BytesMut::new();
        let ini = RequestIni::new(&[("memory_limit".into(), "64M".into())], &[("open_basedir".into(), "/r".into())]);
        let script = Script { filename: "/r/a.php".into(), script_name: "/a.php".into(), path_info: "/x".into() };
        encode_request(&mut out, 7, 3, &params, &script, Some(&ini));
        let pre: [u8; 8] = out[..8].try_into().unwrap();
        let len = request_head_len(&pre).unwrap();
        assert_eq!(len, out.len() - 8);
        let head = decode_request_head(&out[8..]).unwrap();
        assert_eq!(head.submitted_ns, 7);
        assert_eq!(head.body_len, 3);
        assert_eq!(head.params.get(b"REQUEST_METHOD"), Some(&b"GET"[..]));
        assert_eq!(head.filename, b"/r/a.php");
        assert_eq!((head.script_name.as_str(), head.path_info.as_str()), ("/a.php", "/x"));
        assert_eq!(head.ini, Some(ini));
        // A bad ini name (refused by `RequestIni::check`) is refused on the way in.
        let mut bad = BytesMut::new();
        let evil = RequestIni::new(&[("a b".into(), "1".into())], &[]);
        encode_request(&mut bad, 7, 0, &params, &script, Some(&evil));
        assert!(decode_request_head(&bad[8..]).is_err());
        // Every truncation is refused, never a panic.
        for cut in 0..out.len() - 8 {
            assert!(decode_request_head(&out[8..8 + cut]).is_err());
        }
    }

    #[test]
    fn a_response_decodes_at_every_split() {
        let mut head = ResponseHead::new();
        head.set_status(201);
        head.push_header("X-A", "b").unwrap();
        let mut out = BytesMut::new();
        encode_head(&mut out, &head);
        encode_data(&mut out, b"hello");
        encode_end(&mut out);
        for split in 0..=out.len() {
            let mut buf = BytesMut::from(&out[..split]);
            let mut frames = Vec::new();
            while let Some(f) = decode_frame(&mut buf).unwrap() {
                frames.push(f);
            }
            buf.extend_from_slice(&out[split..]);
            while let Some(f) = decode_frame(&mut buf).unwrap() {
                frames.push(f);
            }
            assert_eq!(frames.len(), 3, "split {split}");
            assert!(matches!(&frames[0], Frame::Head(h) if h.status == 201 && h.header("x-a") == Some("b")));
            assert_eq!(frames[1], Frame::Data(Bytes::from_static(b"hello")));
            assert_eq!(frames[2], Frame::End);
        }
    }

    #[test]
    fn hostile_frames_are_refused() {
        let mut huge = BytesMut::new();
        huge.put_u8(DATA);
        huge.put_slice(&[0, 0, 0]);
        huge.put_u32_le(u32::MAX);
        assert!(decode_frame(&mut huge).is_err());
        let mut bad = BytesMut::from(&[9u8, 0, 0, 0, 0, 0, 0, 0][..]);
        assert!(decode_frame(&mut bad).is_err());
        // A head claiming more headers than it holds.
        let mut h = BytesMut::new();
        frame_header(&mut h, HEAD, 8);
        h.put_u16_le(200);
        h.put_u16_le(0);
        h.put_u32_le(5);
        assert!(decode_frame(&mut h).is_err());
        // A header with CR LF inside.
        let mut h = BytesMut::new();
        frame_header(&mut h, HEAD, 8 + 8 + 1 + 4);
        h.put_u16_le(200);
        h.put_u16_le(0);
        h.put_u32_le(1);
        h.put_u32_le(1);
        h.put_u32_le(4);
        h.put_slice(b"X");
        h.put_slice(b"a\r\nb");
        assert!(decode_frame(&mut h).is_err());
    }
}
