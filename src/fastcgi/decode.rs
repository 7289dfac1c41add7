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
