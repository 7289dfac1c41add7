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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastcgi::record::FCGI_VERSION_1;
    use crate::fastcgi::test_support::{decode_request, parse_records};

    fn pairs(p: &Params) -> Vec<(Vec<u8>, Vec<u8>)> {
        p.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
    }

    #[test]
    fn begin_request_bytes() {
        let mut buf = BytesMut::new();
        encode_begin_request(&mut buf, 0x0102, true);
        assert_eq!(&buf[..], &[1, 1, 1, 2, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
        buf.clear();
        encode_begin_request(&mut buf, 7, false);
        assert_eq!(&buf[..], &[1, 1, 0, 7, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        let side = decode_request(&buf, 7);
        assert_eq!(side.begin, Some((ROLE_RESPONDER, 0)));
    }

    #[test]
    fn abort_and_stdin_end_are_empty_records() {
        let mut buf = BytesMut::new();
        encode_abort_request(&mut buf, 3);
        assert_eq!(&buf[..], &[1, 2, 0, 3, 0, 0, 0, 0]);
        buf.clear();
        encode_stdin_end(&mut buf, 3);
        assert_eq!(&buf[..], &[1, 5, 0, 3, 0, 0, 0, 0]);
    }

    #[test]
    fn small_params_are_one_record_plus_terminator_with_padding() {
        let mut p = Params::with_capacity(1);
        p.push("A", "bc"); // 5 content bytes -> 3 padding
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 1, &p);
        assert_eq!(
            &buf[..],
            &[1, 4, 0, 1, 0, 5, 3, 0, 1, 2, b'A', b'b', b'c', 0, 0, 0, 1, 4, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn empty_params_write_only_the_terminator() {
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 9, &Params::default());
        assert_eq!(&buf[..], &[1, 4, 0, 9, 0, 0, 0, 0]);
        let side = decode_request(&buf, 9);
        assert!(side.params_ended && side.params().is_empty());
    }

    #[test]
    fn params_with_one_and_four_byte_lengths_round_trip() {
        let mut p = Params::with_capacity(4);
        p.push("SHORT", "x");
        p.push("EXACTLY_127", vec![b'a'; 127]);
        p.push("EXACTLY_128", vec![b'b'; 128]);
        p.push(vec![b'N'; 200], "long name");
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 1, &p);
        let recs = parse_records(&buf);
        assert_eq!(recs.len(), 2);
        let side = decode_request(&buf, 1);
        assert!(side.params_ended);
        assert_eq!(pairs(&side.params()), pairs(&p));
        // The 127-byte value has a 1-byte length, the 128-byte one a 4-byte length.
        let s = &side.params_stream;
        assert_eq!(&s[..8], b"\x05\x01SHORTx");
        assert_eq!(&s[8..10], &[11, 127]);
        assert_eq!(&s[8 + 2 + 11 + 127..][..5], &[11, 0x80, 0, 0, 128]);
    }

    #[test]
    fn a_70000_byte_value_straddles_records() {
        let mut p = Params::with_capacity(3);
        p.push("BEFORE", "1");
        p.push("HTTP_COOKIE", vec![b'c'; 70_000]);
        p.push("AFTER", "2");
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 42, &p);
        let recs = parse_records(&buf);
        // 9 + (1+4+11+70000) + 8 = 70033 content bytes: 65535 + 4498, then the terminator.
        let lens: Vec<_> = recs.iter().map(|r| r.header.content_length).collect();
        assert_eq!(lens, vec![65535, (70033 - 65535) as u16, 0]);
        assert_eq!(recs[0].header.padding_length, 1);
        assert!(recs.iter().all(|r| r.header.record_type == RecordType::Params as u8));
        let side = decode_request(&buf, 42);
        assert_eq!(pairs(&side.params()), pairs(&p));
    }

    #[test]
    fn a_pair_header_may_straddle_records() {
        // First pair fills the record to 65533 bytes, so the next pair's 4-byte name length
        // is cut after 2 bytes.
        let mut p = Params::with_capacity(2);
        p.push("F", vec![b'f'; 65533 - 6]); // 1 + 4 + 1 + 65527 = 65533
        p.push(vec![b'n'; 300], "v");
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 1, &p);
        let recs = parse_records(&buf);
        assert_eq!(recs[0].header.content_length, 65535);
        assert_eq!(&recs[0].content[65533..], &[0x80, 0]);
        assert_eq!(&recs[1].content[..2], &[0x01, 0x2c]);
        assert_eq!(pairs(&decode_request(&buf, 1).params()), pairs(&p));
    }

    #[test]
    fn content_of_exactly_65535_has_no_empty_data_record() {
        let mut p = Params::with_capacity(1);
        p.push("K", vec![b'v'; 65535 - 6]); // 1 + 4 + 1 + 65529 = 65535
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 1, &p);
        let lens: Vec<_> = parse_records(&buf).iter().map(|r| r.header.content_length).collect();
        assert_eq!(lens, vec![65535, 0]);
    }

    #[test]
    fn many_params_round_trip() {
        let mut p = Params::with_capacity(5000);
        for i in 0..5000 {
            p.push(format!("HTTP_X_HEADER_{i}"), "v".repeat(i % 300));
        }
        let mut buf = BytesMut::new();
        encode_params(&mut buf, 65535, &p);
        let side = decode_request(&buf, 65535);
        assert!(side.records > 2);
        assert_eq!(pairs(&side.params()), pairs(&p));
    }

    #[test]
    fn stdin_splits_at_65535() {
        for (len, expected) in [
            (1usize, vec![1u16]),
            (65535, vec![65535]),
            (65536, vec![65535, 1]),
            (200_000, vec![65535, 65535, 65535, (200_000 - 3 * 65535) as u16]),
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut buf = BytesMut::new();
            encode_stdin(&mut buf, 5, &data);
            let recs = parse_records(&buf);
            let lens: Vec<_> = recs.iter().map(|r| r.header.content_length).collect();
            assert_eq!(lens, expected, "len {len}");
            encode_stdin_end(&mut buf, 5);
            let side = decode_request(&buf, 5);
            assert!(side.stdin_ended);
            assert_eq!(side.stdin, data);
        }
    }

    #[test]
    fn empty_stdin_writes_nothing() {
        let mut buf = BytesMut::new();
        encode_stdin(&mut buf, 5, b"");
        assert!(buf.is_empty());
    }

    #[test]
    fn encoders_append_after_existing_bytes() {
        let mut buf = BytesMut::from(&b"prefix"[..]);
        encode_stdin(&mut buf, 1, &[7u8; 70_000]);
        assert_eq!(&buf[..6], b"prefix");
        let side = decode_request(&buf[6..], 1);
        assert_eq!(side.stdin, vec![7u8; 70_000]);
    }

    #[test]
    fn get_values_is_management_record_with_empty_values() {
        let mut buf = BytesMut::new();
        encode_get_values(&mut buf, &["FCGI_MAX_CONNS", "FCGI_MPXS_CONNS"]);
        let recs = parse_records(&buf);
        assert_eq!(recs.len(), 1);
        let h = recs[0].header;
        assert_eq!((h.version, h.record_type, h.request_id), (FCGI_VERSION_1, RecordType::GetValues as u8, 0));
        let got = crate::fastcgi::decode_name_values(&recs[0].content).unwrap();
        assert_eq!(
            pairs(&got),
            vec![(b"FCGI_MAX_CONNS".to_vec(), vec![]), (b"FCGI_MPXS_CONNS".to_vec(), vec![])]
        );
        buf.clear();
        encode_get_values(&mut buf, &[]);
        assert_eq!(&buf[..], &[1, 9, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_whole_request_parses_back() {
        let mut p = Params::with_capacity(2);
        p.push("SCRIPT_FILENAME", "/srv/www/index.php");
        p.push("REQUEST_METHOD", "POST");
        let mut buf = BytesMut::new();
        encode_begin_request(&mut buf, 1, true);
        encode_params(&mut buf, 1, &p);
        encode_stdin(&mut buf, 1, b"a=1&b=2");
        encode_stdin_end(&mut buf, 1);
        encode_abort_request(&mut buf, 1);
        assert_eq!(buf.len() % 8, 0);
        let side = decode_request(&buf, 1);
        assert_eq!(side.begin, Some((ROLE_RESPONDER, FLAG_KEEP_CONN)));
        assert_eq!(pairs(&side.params()), pairs(&p));
        assert_eq!(side.stdin, b"a=1&b=2");
        assert!(side.params_ended && side.stdin_ended && side.aborted);
    }
}
