//! Encoders for the records a web server sends. Each appends complete records (8-byte header,
//! content, zero padding up to a multiple of 8 bytes) to a caller's `BytesMut`; none allocates
//! beyond growing that buffer, none fails.

use bytes::{BufMut, BytesMut};

use super::name_value::{length_prefix, pair_len};
use super::record::{
    Header, RecordType, FIXED_BODY_LEN, FLAG_KEEP_CONN, HEADER_LEN, MAX_CONTENT,
    ROLE_RESPONDER,
};
use crate::cgi::Params;

/// Appends one whole record with `content` (at most 65535 bytes) and the padding to a multiple
/// of 8.
pub(crate) fn write_record(buf: &mut BytesMut, record_type: RecordType, request_id: u16, content: &[u8]) {
    debug_assert!(content.len() <= MAX_CONTENT);
    let header = Header::new(record_type, request_id, content.len() as u16);
    buf.reserve(header.record_len());
    buf.put_slice(&header.to_bytes());
    buf.put_slice(content);
    buf.put_bytes(0, header.padding_length as usize);
}

/// Writes a byte stream as consecutive records of one type, each filled up to 65535 content
/// bytes before the next is opened. A record is opened only when there are bytes for it, so an
/// empty stream writes nothing; the caller adds the empty terminator record if one is due.
struct StreamWriter<'a> {
    buf: &'a mut BytesMut,
    record_type: RecordType,
    request_id: u16,
    /// Offset of the open record's header in `buf`.
    open: Option<usize>,
}

impl<'a> StreamWriter<'a> {
    fn new(buf: &'a mut BytesMut, record_type: RecordType, request_id: u16) -> Self {
        StreamWriter { buf, record_type, request_id, open: None }
    }

    fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let start = match self.open {
                Some(start) => start,
                None => {
                    let start = self.buf.len();
                    self.buf.put_bytes(0, HEADER_LEN); // filled in by `close`
                    self.open = Some(start);
                    start
                }
            };
            let used = self.buf.len() - start - HEADER_LEN;
            let n = (MAX_CONTENT - used).min(data.len());
            self.buf.put_slice(&data[..n]);
            data = &data[n..];
            if used + n == MAX_CONTENT {
                self.close();
            }
        }
    }

    /// Completes the open record, if any: fills in its header and appends its padding.
    fn close(&mut self) {
        if let Some(start) = self.open.take() {
            let len = self.buf.len() - start - HEADER_LEN;
            let header = Header::new(self.record_type, self.request_id, len as u16);
            self.buf[start..start + HEADER_LEN].copy_from_slice(&header.to_bytes());
            self.buf.put_bytes(0, header.padding_length as usize);
        }
    }

    fn write_pair(&mut self, name: &[u8], value: &[u8]) {
        let (np, nl) = length_prefix(name.len());
        let (vp, vl) = length_prefix(value.len());
        self.write(&np[..nl]);
        self.write(&vp[..vl]);
        self.write(name);
        self.write(value);
    }
}

/// Room for a stream of `content` bytes split into records, plus one empty record.
fn stream_capacity(content: usize) -> usize {
    let records = content.div_ceil(MAX_CONTENT);
    content + records * (HEADER_LEN + 7) + HEADER_LEN
}

/// Appends a BEGIN_REQUEST record for the RESPONDER role. With `keep_conn` the application
/// keeps the connection open after END_REQUEST (`FCGI_KEEP_CONN`), so it can be pooled.
pub fn encode_begin_request(buf: &mut BytesMut, request_id: u16, keep_conn: bool) {
    let [role_hi, role_lo] = ROLE_RESPONDER.to_be_bytes();
    let flags = if keep_conn { FLAG_KEEP_CONN } else { 0 };
    let body: [u8; FIXED_BODY_LEN] = [role_hi, role_lo, flags, 0, 0, 0, 0, 0];
    write_record(buf, RecordType::BeginRequest, request_id, &body);
}

/// Appends the PARAMS stream for `params`: the name-value pairs in order (lengths of 1 byte when
/// <= 127, else 4 bytes), split across as many PARAMS records as needed (each at most 65535
/// content bytes; a pair may straddle two records), then the empty PARAMS record that ends the
/// stream. Empty `params` writes only the terminator.
///
/// # Panics
/// When a name or value is longer than 2^31 - 1 bytes, the most FastCGI can express.
pub fn encode_params(buf: &mut BytesMut, request_id: u16, params: &Params) {
    let content: usize = params.iter().map(|(n, v)| pair_len(n, v)).sum();
    buf.reserve(stream_capacity(content));
    let mut w = StreamWriter::new(buf, RecordType::Params, request_id);
    for (name, value) in params.iter() {
        w.write_pair(name, value);
    }
    w.close();
    write_record(buf, RecordType::Params, request_id, &[]);
}

/// Appends `data` as STDIN records of at most 65535 content bytes each. Empty `data` writes
/// nothing (an empty STDIN record would end the stream: use [`encode_stdin_end`] for that).
pub fn encode_stdin(buf: &mut BytesMut, request_id: u16, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    buf.reserve(stream_capacity(data.len()));
    let mut w = StreamWriter::new(buf, RecordType::Stdin, request_id);
    w.write(data);
    w.close();
}

/// Appends the empty STDIN record that ends the request body.
pub fn encode_stdin_end(buf: &mut BytesMut, request_id: u16) {
    write_record(buf, RecordType::Stdin, request_id, &[]);
}

/// Appends an ABORT_REQUEST record (the client went away; the application answers with
/// END_REQUEST).
pub fn encode_abort_request(buf: &mut BytesMut, request_id: u16) {
    write_record(buf, RecordType::AbortRequest, request_id, &[]);
}

/// Appends a GET_VALUES management record (request id 0) asking for `names` (e.g.
/// `FCGI_MAX_CONNS`, `FCGI_MAX_REQS`, `FCGI_MPXS_CONNS`), each with an empty value. The answer
/// is a GET_VALUES_RESULT, decoded by [`ResponseDecoder`](super::ResponseDecoder) as
/// [`Event::GetValuesResult`](super::Event::GetValuesResult). Names totalling more than 65535
/// encoded bytes would need several records, which applications are not required to accept.
/// Empty `names` writes one empty GET_VALUES record.
pub fn encode_get_values(buf: &mut BytesMut, names: &[&str]) {
    let content: usize = names.iter().map(|n| pair_len(n.as_bytes(), b"")).sum();
    if content == 0 {
        write_record(buf, RecordType::GetValues, 0, &[]);
        return;
    }
    buf.reserve(stream_capacity(content));
    let mut w = StreamWriter::new(buf, RecordType::GetValues, 0);
    for name in names {
        w.write_pair(name.as_bytes(), b"");
    }
    w.close();
}
