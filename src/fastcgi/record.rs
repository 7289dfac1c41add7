//! The FastCGI record header, record types and protocol constants (FastCGI 1.0, section 3 and 8).
//!
//! Every record is an 8-byte header, `content_length` bytes of content and `padding_length`
//! bytes of padding. [`Header::parse`] and [`Header::write`] are pure functions over bytes.

/// The only FastCGI protocol version (`FCGI_VERSION_1`).
pub const FCGI_VERSION_1: u8 = 1;

/// Length of a record header in bytes (`FCGI_HEADER_LEN`).
pub(crate) const HEADER_LEN: usize = 8;

/// Most content bytes one record can carry (the header's length field is 16 bits).
pub(crate) const MAX_CONTENT: usize = u16::MAX as usize;

/// The `FCGI_RESPONDER` role sent in BEGIN_REQUEST.
pub(crate) const ROLE_RESPONDER: u16 = 1;

/// The `FCGI_KEEP_CONN` flag of BEGIN_REQUEST: the application keeps the connection open
/// after END_REQUEST.
pub(crate) const FLAG_KEEP_CONN: u8 = 1;

/// Content length of BEGIN_REQUEST, END_REQUEST and UNKNOWN_TYPE bodies.
pub(crate) const FIXED_BODY_LEN: usize = 8;

/// The type byte of a record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RecordType {
    /// `FCGI_BEGIN_REQUEST`: web server → application, starts a request (role and flags).
    BeginRequest = 1,
    /// `FCGI_ABORT_REQUEST`: web server → application, the client went away.
    AbortRequest = 2,
    /// `FCGI_END_REQUEST`: application → web server, the request is complete.
    EndRequest = 3,
    /// `FCGI_PARAMS`: web server → application, the CGI name-value pairs (a stream).
    Params = 4,
    /// `FCGI_STDIN`: web server → application, the request body (a stream).
    Stdin = 5,
    /// `FCGI_STDOUT`: application → web server, the CGI response (a stream).
    Stdout = 6,
    /// `FCGI_STDERR`: application → web server, error output (a stream).
    Stderr = 7,
    /// `FCGI_DATA`: web server → application, filter data (a stream; unused by responders).
    Data = 8,
    /// `FCGI_GET_VALUES`: management query (request id 0).
    GetValues = 9,
    /// `FCGI_GET_VALUES_RESULT`: management answer (request id 0).
    GetValuesResult = 10,
    /// `FCGI_UNKNOWN_TYPE`: management answer to a management record the application does
    /// not know.
    UnknownType = 11,
}

impl RecordType {
    /// The record type for a header's type byte, `None` for values outside 1..=11.
    pub fn from_u8(value: u8) -> Option<RecordType> {
        Some(match value {
            1 => RecordType::BeginRequest,
            2 => RecordType::AbortRequest,
            3 => RecordType::EndRequest,
            4 => RecordType::Params,
            5 => RecordType::Stdin,
            6 => RecordType::Stdout,
            7 => RecordType::Stderr,
            8 => RecordType::Data,
            9 => RecordType::GetValues,
            10 => RecordType::GetValuesResult,
            11 => RecordType::UnknownType,
            _ => return None,
        })
    }
}

/// The `protocolStatus` of an END_REQUEST record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ProtocolStatus {
    /// `FCGI_REQUEST_COMPLETE`: normal end of request.
    RequestComplete = 0,
    /// `FCGI_CANT_MPX_CONN`: the application refuses a second concurrent request on the
    /// connection.
    CantMpxConn = 1,
    /// `FCGI_OVERLOADED`: the application is out of some resource (e.g. database connections).
    Overloaded = 2,
    /// `FCGI_UNKNOWN_ROLE`: the application does not support the role asked for.
    UnknownRole = 3,
}

impl ProtocolStatus {
    /// The status for an END_REQUEST `protocolStatus` byte, `None` for values outside 0..=3.
    pub fn from_u8(value: u8) -> Option<ProtocolStatus> {
        Some(match value {
            0 => ProtocolStatus::RequestComplete,
            1 => ProtocolStatus::CantMpxConn,
            2 => ProtocolStatus::Overloaded,
            3 => ProtocolStatus::UnknownRole,
            _ => return None,
        })
    }
}

/// A record header as it is on the wire; the type byte is kept raw so that unknown types can be
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u8,
    pub(crate) record_type: u8,
    pub(crate) request_id: u16,
    pub(crate) content_length: u16,
    pub(crate) padding_length: u8,
}

impl Header {
    /// A version-1 header for `content_length` content bytes and the padding that rounds the
    /// record up to a multiple of 8 bytes.
    pub(crate) fn new(record_type: RecordType, request_id: u16, content_length: u16) -> Header {
        Header {
            version: FCGI_VERSION_1,
            record_type: record_type as u8,
            request_id,
            content_length,
            padding_length: padding_for(content_length as usize),
        }
    }

    /// Reads a header from the first 8 bytes of `bytes`; `None` when fewer are given.
    pub(crate) fn parse(bytes: &[u8]) -> Option<Header> {
        let h: &[u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
        // h[7] is the reserved byte; it is ignored.
        Some(Header {
            version: h[0],
            record_type: h[1],
            request_id: u16::from_be_bytes([h[2], h[3]]),
            content_length: u16::from_be_bytes([h[4], h[5]]),
            padding_length: h[6],
        })
    }

    /// The 8 header bytes.
    pub(crate) fn to_bytes(self) -> [u8; HEADER_LEN] {
        let [id_hi, id_lo] = self.request_id.to_be_bytes();
        let [len_hi, len_lo] = self.content_length.to_be_bytes();
        [self.version, self.record_type, id_hi, id_lo, len_hi, len_lo, self.padding_length, 0]
    }

    /// Header, content and padding: the whole record's length in bytes.
    pub(crate) fn record_len(&self) -> usize {
        HEADER_LEN + self.content_length as usize + self.padding_length as usize
    }
}

/// Padding that rounds `content_length` up to a multiple of 8 (0..=7); 65535 gets 1.
pub(crate) fn padding_for(content_length: usize) -> u8 {
    ((8 - content_length % 8) % 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_type_round_trips_and_rejects_unknown() {
        for v in 1..=11u8 {
            assert_eq!(RecordType::from_u8(v).map(|t| t as u8), Some(v));
        }
        for v in [0u8, 12, 13, 100, 255] {
            assert_eq!(RecordType::from_u8(v), None);
        }
    }

    #[test]
    fn protocol_status_round_trips_and_rejects_unknown() {
        for v in 0..=3u8 {
            assert_eq!(ProtocolStatus::from_u8(v).map(|s| s as u8), Some(v));
        }
        for v in [4u8, 5, 255] {
            assert_eq!(ProtocolStatus::from_u8(v), None);
        }
    }

    #[test]
    fn header_bytes_round_trip() {
        let h = Header::new(RecordType::Stdout, 0x1234, 0xabcd);
        let bytes = h.to_bytes();
        assert_eq!(bytes, [1, 6, 0x12, 0x34, 0xab, 0xcd, 3, 0]);
        assert_eq!(Header::parse(&bytes), Some(h));
        assert_eq!(h.record_len(), 8 + 0xabcd + 3);
    }

    #[test]
    fn header_parse_needs_eight_bytes_and_ignores_reserved() {
        assert_eq!(Header::parse(&[1, 6, 0, 1, 0, 0, 0]), None);
        let h = Header::parse(&[1, 6, 0, 1, 0, 0, 0, 0xff, 0xee]).unwrap();
        assert_eq!(h.request_id, 1);
        assert_eq!(h.padding_length, 0);
    }

    #[test]
    fn padding_rounds_up_to_eight() {
        assert_eq!(padding_for(0), 0);
        assert_eq!(padding_for(1), 7);
        assert_eq!(padding_for(7), 1);
        assert_eq!(padding_for(8), 0);
        assert_eq!(padding_for(9), 7);
        assert_eq!(padding_for(65535), 1);
        for len in 0..100 {
            assert_eq!((len + padding_for(len) as usize) % 8, 0);
        }
    }
}
