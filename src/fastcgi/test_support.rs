//! Test-only helpers: a generic record parser, an application-side encoder with arbitrary
//! padding, a request-side stream reassembler, and a driver that feeds a decoder in chunks.

use bytes::{BufMut, BytesMut};

use super::record::{Header, RecordType, FCGI_VERSION_1, HEADER_LEN};
use super::{decode_name_values, Event, FcgiError, ResponseDecoder};
use crate::cgi::Params;

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) header: Header,
    pub(crate) content: Vec<u8>,
}

/// Splits `bytes` into records; panics on anything malformed or on a record not padded to a
/// multiple of 8 (our encoders always pad so), or on non-zero padding.
pub(crate) fn parse_records(mut bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = Header::parse(bytes).expect("truncated header");
        assert_eq!(header.version, FCGI_VERSION_1);
        assert!(bytes.len() >= header.record_len(), "truncated record");
        let content_len = header.content_length as usize;
        assert_eq!((content_len + header.padding_length as usize) % 8, 0, "record not aligned to 8");
        assert!(header.padding_length < 8, "more padding than needed");
        let content = bytes[HEADER_LEN..HEADER_LEN + content_len].to_vec();
        assert!(bytes[HEADER_LEN + content_len..header.record_len()].iter().all(|&b| b == 0));
        bytes = &bytes[header.record_len()..];
        out.push(Rec { header, content });
    }
    out
}

/// What a web server sent for one request, reassembled as an application would.
#[derive(Debug, Default)]
pub(crate) struct RequestSide {
    pub(crate) begin: Option<(u16, u8)>,
    pub(crate) params_stream: Vec<u8>,
    pub(crate) params_ended: bool,
    pub(crate) stdin: Vec<u8>,
    pub(crate) stdin_ended: bool,
    pub(crate) aborted: bool,
    pub(crate) records: usize,
}

impl RequestSide {
    /// The PARAMS stream decoded into pairs.
    pub(crate) fn params(&self) -> Params {
        decode_name_values(&self.params_stream).expect("bad params stream")
    }
}

/// Reassembles everything in `bytes` for `request_id`, checking stream discipline (no data after
/// a stream's terminator, every record for our id, content within 65535).
pub(crate) fn decode_request(bytes: &[u8], request_id: u16) -> RequestSide {
    let mut side = RequestSide::default();
    for rec in parse_records(bytes) {
        side.records += 1;
        assert_eq!(rec.header.request_id, request_id);
        match RecordType::from_u8(rec.header.record_type).expect("unknown type") {
            RecordType::BeginRequest => {
                assert_eq!(rec.content.len(), 8);
                assert!(side.begin.is_none());
                side.begin = Some((u16::from_be_bytes([rec.content[0], rec.content[1]]), rec.content[2]));
            }
            RecordType::Params => {
                assert!(!side.params_ended, "PARAMS after terminator");
                if rec.content.is_empty() {
                    side.params_ended = true;
                }
                side.params_stream.extend_from_slice(&rec.content);
            }
            RecordType::Stdin => {
                assert!(!side.stdin_ended, "STDIN after terminator");
                if rec.content.is_empty() {
                    side.stdin_ended = true;
                }
                side.stdin.extend_from_slice(&rec.content);
            }
            RecordType::AbortRequest => {
                assert!(rec.content.is_empty());
                side.aborted = true;
            }
            other => panic!("unexpected record type {other:?}"),
        }
    }
    side
}

/// Appends a record the way an application might send it, with any `padding` (filled with
/// 0xAA so a decoder that reads padding as data is caught).
pub(crate) fn app_record(buf: &mut BytesMut, record_type: u8, request_id: u16, content: &[u8], padding: u8) {
    assert!(content.len() <= u16::MAX as usize);
    let header = Header {
        version: FCGI_VERSION_1,
        record_type,
        request_id,
        content_length: content.len() as u16,
        padding_length: padding,
    };
    buf.put_slice(&header.to_bytes());
    buf.put_slice(content);
    buf.put_bytes(0xAA, padding as usize);
}

/// An END_REQUEST body.
pub(crate) fn end_body(app_status: u32, protocol_status: u8) -> [u8; 8] {
    let s = app_status.to_be_bytes();
    [s[0], s[1], s[2], s[3], protocol_status, 0, 0, 0]
}

/// Feeds `chunks` one after another to a fresh decoder, draining events after each; stops at
/// the first error. Checks the decoder's invariants on the way: no empty STDOUT/STDERR pieces,
/// and, when more bytes are needed, at most one record's worth left in the buffer.
pub(crate) fn feed<'a>(
    request_id: u16,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<Event>, Option<FcgiError>, ResponseDecoder) {
    let mut dec = ResponseDecoder::new(request_id);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(ev)) => {
                    if let Event::Stdout(b) | Event::Stderr(b) = &ev {
                        assert!(!b.is_empty(), "empty stream piece");
                    }
                    events.push(ev);
                }
                Ok(None) => {
                    assert!(buf.len() < HEADER_LEN + 65535 + 255 + 1, "decoder holds more than a record");
                    break;
                }
                Err(e) => {
                    // Sticky.
                    assert_eq!(dec.decode(&mut buf), Err(e.clone()));
                    assert_eq!(dec.finish_eof(), Err(e.clone()));
                    return (events, Some(e), dec);
                }
            }
        }
    }
    (events, None, dec)
}

/// Joins adjacent STDOUT pieces and adjacent STDERR pieces, so that event lists from different
/// read splits compare equal.
pub(crate) fn normalize(events: Vec<Event>) -> Vec<Event> {
    let mut out: Vec<Event> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (Some(Event::Stdout(a)), Event::Stdout(b)) => *a = [&a[..], &b[..]].concat().into(),
            (Some(Event::Stderr(a)), Event::Stderr(b)) => *a = [&a[..], &b[..]].concat().into(),
            (_, ev) => out.push(ev),
        }
    }
    out
}

/// `bytes` cut at the given offsets (sorted, within bounds).
pub(crate) fn split_at_offsets<'a>(bytes: &'a [u8], offsets: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut prev = 0;
    for &o in offsets {
        out.push(&bytes[prev..o]);
        prev = o;
    }
    out.push(&bytes[prev..]);
    out
}
