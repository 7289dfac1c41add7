//! [`ResponseDecoder`]: the resumable decoder of what the application sends back for one
//! request. It takes whatever bytes have arrived and gives events; the caller owns the socket
//! and the buffer.

use bytes::{Buf, Bytes, BytesMut};

use super::error::FcgiError;
use super::name_value::decode_name_values;
use super::record::{Header, ProtocolStatus, RecordType, FCGI_VERSION_1, FIXED_BODY_LEN, HEADER_LEN};
use crate::cgi::Params;

/// What the application said, in the order it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Bytes of the CGI response (headers, blank line, body). A STDOUT record may be handed out
    /// in several pieces as it arrives; pieces are never empty.
    Stdout(Bytes),
    /// Bytes the script wrote to its error stream (for the error log); never empty.
    Stderr(Bytes),
    /// The request is over. Nothing may follow on this connection for this request.
    EndRequest {
        /// The CGI exit status (`appStatus`).
        app_status: u32,
        /// Whether the application completed or refused the request.
        protocol_status: ProtocolStatus,
    },
    /// The answer to a GET_VALUES query: the variables the application knows, with values.
    GetValuesResult(Params),
}

/// Where the decoder is within the record stream.
#[derive(Debug, Clone)]
enum State {
    /// At a record boundary, waiting for a header.
    Header,
    /// Inside a non-empty STDOUT/STDERR record: `remaining` content bytes, then `padding`.
    Stream { stderr: bool, remaining: usize, padding: u8 },
    /// Skipping `n` padding bytes.
    Padding(usize),
    /// END_REQUEST has been consumed whole.
    Finished,
    /// An error was returned; it is returned again on every call.
    Failed(FcgiError),
}

/// Resumable decoder of the application's records (STDOUT, STDERR, END_REQUEST, and the
/// GET_VALUES_RESULT / UNKNOWN_TYPE management answers) for one request id.
///
/// Memory stays bounded by one record: STDOUT and STDERR content is handed out as it arrives
/// (split off the caller's buffer, not copied), and only END_REQUEST, GET_VALUES_RESULT and
/// UNKNOWN_TYPE records (at most 8 + 65535 + 255 bytes) are waited for whole.
///
/// Choices where the specification leaves room:
/// * An UNKNOWN_TYPE record (request id 0, 8-byte body) is consumed and produces no event: we
///   only ever send GET_VALUES, so it carries nothing the caller can act on.
/// * Record checks, in order: version ([`FcgiError::BadVersion`]); type, where anything but
///   STDOUT, STDERR, END_REQUEST, GET_VALUES_RESULT, UNKNOWN_TYPE is
///   [`FcgiError::UnexpectedType`]; request id ([`FcgiError::WrongRequestId`]: management
///   answers need id 0, the others need ours); then content length ([`FcgiError::BadLength`]).
///   A decoder made with request id 0 accepts management answers only; a STDOUT, STDERR or
///   END_REQUEST record is then [`FcgiError::UnexpectedType`].
/// * After END_REQUEST any further byte is [`FcgiError::TrailingData`].
/// * Errors are sticky: once `decode` has failed it returns the same error on every call.
///
/// # Example
/// ```
/// use bytes::BytesMut;
/// use fephp::fastcgi::{Event, ProtocolStatus, ResponseDecoder};
///
/// let mut dec = ResponseDecoder::new(1);
/// let mut buf = BytesMut::new();
/// // STDOUT "hi" (padded to 8), then END_REQUEST with app status 0, arriving in two reads.
/// buf.extend_from_slice(&[1, 6, 0, 1, 0, 2, 6, 0, b'h', b'i', 0, 0, 0]);
/// assert_eq!(dec.decode(&mut buf), Ok(Some(Event::Stdout("hi".into()))));
/// assert_eq!(dec.decode(&mut buf), Ok(None)); // padding not all here yet
/// buf.extend_from_slice(&[0, 0, 0, 1, 3, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// assert_eq!(
///     dec.decode(&mut buf),
///     Ok(Some(Event::EndRequest { app_status: 0, protocol_status: ProtocolStatus::RequestComplete }))
/// );
/// assert!(dec.is_finished());
/// assert_eq!(dec.finish_eof(), Ok(()));
/// ```
#[derive(Debug, Clone)]
pub struct ResponseDecoder {
    request_id: u16,
    state: State,
}

impl ResponseDecoder {
    /// A decoder for the records of request `request_id` (the id given in BEGIN_REQUEST), or
    /// with 0 for a connection used only for a GET_VALUES query.
    pub fn new(request_id: u16) -> Self {
        ResponseDecoder { request_id, state: State::Header }
    }

    /// Consumes records from the front of `buf` and returns the next event.
    ///
    /// `Ok(None)` means more bytes are needed: append what the socket gives to `buf` and call
    /// again. Bytes already consumed (headers, padding, handed-out STDOUT pieces) are removed
    /// from `buf`; an incomplete END_REQUEST or management record is left there whole. Call in a
    /// loop until `Ok(None)`, since one read can hold many records. Never panics, whatever
    /// the input.
    ///
    /// # Errors
    /// An [`FcgiError`] for any protocol violation (see the type-level notes for the order of
    /// checks); the connection must then be closed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, FcgiError> {
        match self.step(buf) {
            Err(e) => {
                self.state = State::Failed(e.clone());
                Err(e)
            }
            ok => ok,
        }
    }

    /// True once END_REQUEST has been decoded (the response is complete).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// To be called when the connection reaches end-of-file: `Ok(())` only if END_REQUEST was
    /// seen.
    ///
    /// # Errors
    /// [`FcgiError::Truncated`] when the response was cut short, or the error an earlier
    /// `decode` returned.
    pub fn finish_eof(&self) -> Result<(), FcgiError> {
        match &self.state {
            State::Finished => Ok(()),
            State::Failed(e) => Err(e.clone()),
            _ => Err(FcgiError::Truncated),
        }
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, FcgiError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Finished => {
                    return if buf.is_empty() { Ok(None) } else { Err(FcgiError::TrailingData) };
                }
                State::Padding(n) => {
                    let k = n.min(buf.len());
                    buf.advance(k);
                    if k < n {
                        self.state = State::Padding(n - k);
                        return Ok(None);
                    }
                    self.state = State::Header;
                }
                State::Stream { stderr, remaining, padding } => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let k = remaining.min(buf.len());
                    let piece = buf.split_to(k).freeze();
                    self.state = if k < remaining {
                        State::Stream { stderr, remaining: remaining - k, padding }
                    } else {
                        State::Padding(padding as usize)
                    };
                    return Ok(Some(if stderr { Event::Stderr(piece) } else { Event::Stdout(piece) }));
                }
                State::Header => {
                    let Some(header) = Header::parse(buf) else { return Ok(None) };
                    let record_type = self.check(&header)?;
                    let content_len = header.content_length as usize;
                    match record_type {
                        RecordType::Stdout | RecordType::Stderr => {
                            buf.advance(HEADER_LEN);
                            self.state = if content_len == 0 {
                                // A stream terminator: no event.
                                State::Padding(header.padding_length as usize)
                            } else {
                                State::Stream {
                                    stderr: record_type == RecordType::Stderr,
                                    remaining: content_len,
                                    padding: header.padding_length,
                                }
                            };
                        }
                        _ => {
                            // A record taken whole, padding included, so that a finished
                            // decoder leaves nothing of its record behind.
                            if buf.len() < header.record_len() {
                                return Ok(None);
                            }
                            buf.advance(HEADER_LEN);
                            let content = buf.split_to(content_len);
                            buf.advance(header.padding_length as usize);
                            if let Some(event) = self.whole_record(record_type, &content)? {
                                return Ok(Some(event));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Validates a header against what we may receive; returns its type.
    fn check(&self, header: &Header) -> Result<RecordType, FcgiError> {
        if header.version != FCGI_VERSION_1 {
            return Err(FcgiError::BadVersion(header.version));
        }
        let unexpected = FcgiError::UnexpectedType(header.record_type);
        let Some(record_type) = RecordType::from_u8(header.record_type) else { return Err(unexpected) };
        let expected_id = match record_type {
            RecordType::GetValuesResult | RecordType::UnknownType => 0,
            RecordType::Stdout | RecordType::Stderr | RecordType::EndRequest if self.request_id != 0 => {
                self.request_id
            }
            _ => return Err(unexpected),
        };
        if header.request_id != expected_id {
            return Err(FcgiError::WrongRequestId { expected: expected_id, got: header.request_id });
        }
        let fixed_len = matches!(record_type, RecordType::EndRequest | RecordType::UnknownType);
        if fixed_len && header.content_length as usize != FIXED_BODY_LEN {
            return Err(FcgiError::BadLength);
        }
        Ok(record_type)
    }

    /// The event for a record received whole (END_REQUEST, GET_VALUES_RESULT, UNKNOWN_TYPE).
    fn whole_record(&mut self, record_type: RecordType, content: &[u8]) -> Result<Option<Event>, FcgiError> {
        match record_type {
            RecordType::EndRequest => {
                // appStatus (4 bytes, big-endian), protocolStatus, 3 reserved bytes.
                let &[s0, s1, s2, s3, status, _, _, _] = content else { return Err(FcgiError::BadLength) };
                let app_status = u32::from_be_bytes([s0, s1, s2, s3]);
                let protocol_status =
                    ProtocolStatus::from_u8(status).ok_or(FcgiError::BadProtocolStatus(status))?;
                self.state = State::Finished;
                Ok(Some(Event::EndRequest { app_status, protocol_status }))
            }
            RecordType::GetValuesResult => Ok(Some(Event::GetValuesResult(decode_name_values(content)?))),
            // UNKNOWN_TYPE: consumed without an event (see the type-level notes).
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fastcgi::encode_name_value;
    use crate::fastcgi::test_support::{app_record, end_body, feed, normalize, split_at_offsets};

    const ID: u16 = 1;
    const STDOUT: u8 = RecordType::Stdout as u8;
    const STDERR: u8 = RecordType::Stderr as u8;
    const END: u8 = RecordType::EndRequest as u8;
    const GVR: u8 = RecordType::GetValuesResult as u8;
    const UNKNOWN: u8 = RecordType::UnknownType as u8;

    fn out(s: &[u8]) -> Event {
        Event::Stdout(Bytes::copy_from_slice(s))
    }
    fn err(s: &[u8]) -> Event {
        Event::Stderr(Bytes::copy_from_slice(s))
    }
    fn end(app_status: u32, protocol_status: ProtocolStatus) -> Event {
        Event::EndRequest { app_status, protocol_status }
    }

    /// Decodes `bytes` given all at once.
    fn all_at_once(id: u16, bytes: &[u8]) -> (Vec<Event>, Option<FcgiError>, ResponseDecoder) {
        feed(id, [bytes])
    }

    /// A response using every record the application may send, odd paddings included.
    fn sample_response() -> (BytesMut, Vec<Event>) {
        let mut b = BytesMut::new();
        let mut gv = BytesMut::new();
        encode_name_value(&mut gv, b"FCGI_MAX_CONNS", b"10");
        encode_name_value(&mut gv, b"FCGI_MPXS_CONNS", b"0");
        app_record(&mut b, GVR, 0, &gv, 3);
        app_record(&mut b, STDERR, ID, b"PHP Notice: x", 0);
        app_record(&mut b, STDOUT, ID, b"Status: 200\r\nContent-Type: text/html\r\n\r\n", 255);
        app_record(&mut b, UNKNOWN, 0, &[42, 0, 0, 0, 0, 0, 0, 0], 1);
        app_record(&mut b, STDOUT, ID, b"<p>hello</p>", 4);
        app_record(&mut b, STDERR, ID, b"", 0);
        app_record(&mut b, STDOUT, ID, b"", 7);
        app_record(&mut b, END, ID, &end_body(0x01020304, 0), 6);
        let mut params = Params::with_capacity(2);
        params.push("FCGI_MAX_CONNS", "10");
        params.push("FCGI_MPXS_CONNS", "0");
        let events = vec![
            Event::GetValuesResult(params),
            err(b"PHP Notice: x"),
            out(b"Status: 200\r\nContent-Type: text/html\r\n\r\n"),
            out(b"<p>hello</p>"),
            end(0x01020304, ProtocolStatus::RequestComplete),
        ];
        (b, events)
    }

    #[test]
    fn sample_decodes_all_at_once() {
        let (bytes, expected) = sample_response();
        let (events, error, dec) = all_at_once(ID, &bytes);
        assert_eq!(error, None);
        // Given all at once, each STDOUT record comes out as one piece.
        assert_eq!(events, expected);
        assert!(dec.is_finished());
        assert_eq!(dec.finish_eof(), Ok(()));
    }

    #[test]
    fn sample_split_at_every_offset_gives_same_events() {
        let (bytes, expected) = sample_response();
        for i in 0..=bytes.len() {
            let (events, error, dec) = feed(ID, split_at_offsets(&bytes, &[i]));
            assert_eq!(error, None, "split at {i}");
            assert_eq!(normalize(events), normalize(expected.clone()), "split at {i}");
            assert!(dec.is_finished());
        }
    }

    #[test]
    fn sample_split_at_every_pair_of_offsets_gives_same_events() {
        let (bytes, expected) = sample_response();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let (events, error, _) = feed(ID, split_at_offsets(&bytes, &[i, j]));
                assert_eq!(error, None, "split at {i}, {j}");
                assert_eq!(normalize(events), normalize(expected.clone()), "split at {i}, {j}");
            }
        }
    }

    #[test]
    fn sample_one_byte_at_a_time_gives_same_events() {
        let (bytes, expected) = sample_response();
        let (events, error, dec) = feed(ID, bytes.chunks(1));
        assert_eq!(error, None);
        assert_eq!(normalize(events), normalize(expected.clone()));
        assert!(dec.is_finished());
    }

    #[test]
    fn every_proper_prefix_is_truncated_at_eof() {
        let (bytes, _) = sample_response();
        for i in 0..bytes.len() {
            let (_, error, dec) = all_at_once(ID, &bytes[..i]);
            assert_eq!(error, None);
            assert!(!dec.is_finished());
            assert_eq!(dec.finish_eof(), Err(FcgiError::Truncated), "prefix {i}");
        }
    }

    #[test]
    fn each_protocol_status_decodes() {
        for (byte, status) in [
            (0, ProtocolStatus::RequestComplete),
            (1, ProtocolStatus::CantMpxConn),
            (2, ProtocolStatus::Overloaded),
            (3, ProtocolStatus::UnknownRole),
        ] {
            let mut b = BytesMut::new();
            app_record(&mut b, END, ID, &end_body(u32::MAX, byte), 0);
            let (events, error, _) = all_at_once(ID, &b);
            assert_eq!((events, error), (vec![end(u32::MAX, status)], None));
        }
    }

    #[test]
    fn end_request_waits_for_its_padding_and_leaves_nothing() {
        let mut b = BytesMut::new();
        app_record(&mut b, END, ID, &end_body(0, 0), 5);
        let mut dec = ResponseDecoder::new(ID);
        let mut buf = BytesMut::from(&b[..b.len() - 1]);
        assert_eq!(dec.decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), b.len() - 1, "incomplete record left whole");
        buf.extend_from_slice(&b[b.len() - 1..]);
        assert_eq!(dec.decode(&mut buf), Ok(Some(end(0, ProtocolStatus::RequestComplete))));
        assert!(buf.is_empty());
        assert_eq!(dec.decode(&mut buf), Ok(None));
    }

    #[test]
    fn stdout_is_split_off_the_buffer_without_copying() {
        let mut b = BytesMut::new();
        app_record(&mut b, STDOUT, ID, b"0123456789", 6);
        let mut buf = b.clone();
        let content_ptr = buf[8..].as_ptr();
        let mut dec = ResponseDecoder::new(ID);
        match dec.decode(&mut buf) {
            Ok(Some(Event::Stdout(bytes))) => {
                assert_eq!(&bytes[..], b"0123456789");
                assert_eq!(bytes.as_ptr(), content_ptr);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_full_stdout_record_streams_in_pieces_with_bounded_buffer() {
        let data: Vec<u8> = (0..65535u32).map(|i| (i % 253) as u8).collect();
        let mut b = BytesMut::new();
        app_record(&mut b, STDOUT, ID, &data, 1);
        app_record(&mut b, STDERR, ID, &data[..65534], 2);
        app_record(&mut b, END, ID, &end_body(7, 0), 0);
        let mut dec = ResponseDecoder::new(ID);
        let mut buf = BytesMut::new();
        let mut events = Vec::new();
        for chunk in b.chunks(4096) {
            buf.extend_from_slice(chunk);
            while let Some(ev) = dec.decode(&mut buf).unwrap() {
                events.push(ev);
            }
            assert!(buf.len() < 4096 + 16, "STDOUT is handed out as it arrives");
        }
        assert!(events.len() > 30, "pieces, not whole records");
        assert_eq!(
            normalize(events),
            vec![out(&data), err(&data[..65534]), end(7, ProtocolStatus::RequestComplete)]
        );
    }

    #[test]
    fn empty_stream_records_and_padding_only_produce_no_events() {
        let mut b = BytesMut::new();
        app_record(&mut b, STDOUT, ID, b"", 0);
        app_record(&mut b, STDERR, ID, b"", 255);
        app_record(&mut b, STDOUT, ID, b"", 0);
        let (events, error, dec) = feed(ID, b.chunks(3));
        assert_eq!((events, error), (vec![], None));
        assert_eq!(dec.finish_eof(), Err(FcgiError::Truncated));
    }

    #[test]
    fn get_values_result_decodes_to_params() {
        let mut content = BytesMut::new();
        encode_name_value(&mut content, b"FCGI_MAX_REQS", b"500");
        encode_name_value(&mut content, &[b'L'; 130], &[b'v'; 1000]);
        let mut b = BytesMut::new();
        app_record(&mut b, GVR, 0, &content, 2);
        for id in [0, ID] {
            let (events, error, dec) = all_at_once(id, &b);
            assert_eq!(error, None);
            let Event::GetValuesResult(params) = &events[0] else { panic!("{events:?}") };
            assert_eq!(params.get(b"FCGI_MAX_REQS"), Some(&b"500"[..]));
            assert_eq!(params.get(&[b'L'; 130]), Some(&[b'v'; 1000][..]));
            assert!(!dec.is_finished());
        }
        // An empty answer is an empty list.
        let mut b = BytesMut::new();
        app_record(&mut b, GVR, 0, b"", 0);
        assert_eq!(all_at_once(0, &b).0, vec![Event::GetValuesResult(Params::default())]);
    }

    #[test]
    fn unknown_type_record_is_skipped() {
        let mut b = BytesMut::new();
        app_record(&mut b, UNKNOWN, 0, &[200, 0, 0, 0, 0, 0, 0, 0], 0);
        app_record(&mut b, STDOUT, ID, b"x", 7);
        assert_eq!(all_at_once(ID, &b).0, vec![out(b"x")]);
    }

    /// Decodes `bytes` all at once, one byte at a time, and split in the middle; all must end in
    /// `expected` after the same events.
    fn assert_fails(id: u16, bytes: &[u8], expected: FcgiError) {
        let (events, error, _) = all_at_once(id, bytes);
        assert_eq!(error, Some(expected.clone()), "{bytes:?}");
        let (events1, error1, _) = feed(id, bytes.chunks(1));
        assert_eq!(error1, Some(expected.clone()));
        let (events2, error2, _) = feed(id, split_at_offsets(bytes, &[bytes.len() / 2]));
        assert_eq!(error2, Some(expected));
        assert_eq!(normalize(events1), events);
        assert_eq!(normalize(events2), events);
    }

    #[test]
    fn bad_version_is_refused() {
        for v in [0u8, 2, 255] {
            let mut b = BytesMut::new();
            app_record(&mut b, STDOUT, ID, b"hi", 6);
            b[0] = v;
            assert_fails(ID, &b, FcgiError::BadVersion(v));
        }
    }

    #[test]
    fn types_we_must_not_receive_are_refused() {
        for t in [0u8, 1, 2, 4, 5, 8, 9, 12, 100, 255] {
            let mut b = BytesMut::new();
            app_record(&mut b, t, ID, &[0; 8], 0);
            assert_fails(ID, &b, FcgiError::UnexpectedType(t));
        }
    }

    #[test]
    fn records_for_other_requests_are_refused() {
        let cases: Vec<(u8, u16, Vec<u8>, FcgiError)> = vec![
            (STDOUT, 2, b"x".to_vec(), FcgiError::WrongRequestId { expected: ID, got: 2 }),
            (STDERR, 0, b"x".to_vec(), FcgiError::WrongRequestId { expected: ID, got: 0 }),
            (END, 0, end_body(0, 0).to_vec(), FcgiError::WrongRequestId { expected: ID, got: 0 }),
            (END, 65535, end_body(0, 0).to_vec(), FcgiError::WrongRequestId { expected: ID, got: 65535 }),
            (GVR, ID, vec![], FcgiError::WrongRequestId { expected: 0, got: ID }),
            (UNKNOWN, 3, vec![0; 8], FcgiError::WrongRequestId { expected: 0, got: 3 }),
        ];
        for (t, id, content, expected) in cases {
            let mut b = BytesMut::new();
            app_record(&mut b, t, id, &content, 0);
            assert_fails(ID, &b, expected);
        }
    }

    #[test]
    fn a_management_decoder_refuses_request_records() {
        for t in [STDOUT, STDERR, END] {
            let mut b = BytesMut::new();
            app_record(&mut b, t, 0, &[0; 8], 0);
            assert_fails(0, &b, FcgiError::UnexpectedType(t));
        }
    }

    #[test]
    fn fixed_size_bodies_of_other_sizes_are_bad_length() {
        for len in [0usize, 7, 9, 16, 65535] {
            for (t, id) in [(END, ID), (UNKNOWN, 0)] {
                let mut b = BytesMut::new();
                app_record(&mut b, t, id, &vec![0; len], 0);
                // Detected from the header alone.
                assert_fails(ID, &b[..8], FcgiError::BadLength);
            }
        }
    }

    #[test]
    fn unknown_protocol_status_is_refused() {
        for s in [4u8, 200, 255] {
            let mut b = BytesMut::new();
            app_record(&mut b, END, ID, &end_body(0, s), 0);
            assert_fails(ID, &b, FcgiError::BadProtocolStatus(s));
        }
    }

    #[test]
    fn malformed_get_values_result_is_bad_length() {
        for content in [&b"\x01"[..], b"\x05\x00abc", b"\x80\x00", b"\x01\x01N"] {
            let mut b = BytesMut::new();
            app_record(&mut b, GVR, 0, content, 0);
            assert_fails(ID, &b, FcgiError::BadLength);
        }
    }

    #[test]
    fn bytes_after_end_request_are_trailing_data() {
        let mut b = BytesMut::new();
        app_record(&mut b, STDOUT, ID, b"body", 4);
        app_record(&mut b, END, ID, &end_body(0, 0), 0);
        for extra in [&[0u8][..], &[1, 6, 0, 1, 0, 0, 0, 0], &b[..]] {
            let mut all = b.to_vec();
            all.extend_from_slice(extra);
            assert_fails(ID, &all, FcgiError::TrailingData);
            let (events, _, _) = all_at_once(ID, &all);
            assert_eq!(events, vec![out(b"body"), end(0, ProtocolStatus::RequestComplete)]);
        }
        // Once finished, an empty buffer is just "nothing more".
        let (_, error, mut dec) = all_at_once(ID, &b);
        assert_eq!(error, None);
        assert_eq!(dec.decode(&mut BytesMut::new()), Ok(None));
        assert_eq!(dec.finish_eof(), Ok(()));
    }

    #[test]
    fn errors_are_sticky_and_reported_at_eof() {
        let mut dec = ResponseDecoder::new(ID);
        let mut buf = BytesMut::from(&[9u8, 6, 0, 1, 0, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut buf), Err(FcgiError::BadVersion(9)));
        let (mut good, _) = sample_response();
        assert_eq!(dec.decode(&mut good), Err(FcgiError::BadVersion(9)));
        assert_eq!(dec.finish_eof(), Err(FcgiError::BadVersion(9)));
        assert!(!dec.is_finished());
    }

    #[test]
    fn an_error_after_good_records_keeps_their_events() {
        let mut b = BytesMut::new();
        app_record(&mut b, STDOUT, ID, b"partial", 1);
        app_record(&mut b, STDOUT, 2, b"other", 0);
        let (events, error, _) = all_at_once(ID, &b);
        assert_eq!(events, vec![out(b"partial")]);
        assert_eq!(error, Some(FcgiError::WrongRequestId { expected: ID, got: 2 }));
    }

    #[test]
    fn fresh_decoder_needs_bytes() {
        let mut dec = ResponseDecoder::new(ID);
        assert_eq!(dec.decode(&mut BytesMut::new()), Ok(None));
        assert_eq!(dec.finish_eof(), Err(FcgiError::Truncated));
        assert!(!dec.is_finished());
    }
}
