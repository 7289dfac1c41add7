//! [`FcgiError`]: why the application's byte stream is not valid FastCGI for our request.

use std::fmt;

/// A protocol violation found by [`ResponseDecoder`](super::ResponseDecoder). Every variant means
/// the connection can no longer be trusted and must be closed (the engine answers 502).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcgiError {
    /// A record header's version byte is not [`FCGI_VERSION_1`](super::FCGI_VERSION_1).
    BadVersion(u8),
    /// A record type the application must not send to a web server (BEGIN_REQUEST,
    /// ABORT_REQUEST, PARAMS, STDIN, DATA, GET_VALUES) or a type byte outside 1..=11.
    UnexpectedType(u8),
    /// A record addressed to another request: a request id other than ours, or request id 0
    /// (management) on a record that is not a management answer, or a management answer with a
    /// non-zero request id (then `expected` is 0).
    WrongRequestId {
        /// The request id the record had to carry.
        expected: u16,
        /// The request id it carried.
        got: u16,
    },
    /// A record's content has the wrong size or shape: END_REQUEST or UNKNOWN_TYPE content
    /// that is not 8 bytes, or name-value pairs whose lengths run past the content.
    BadLength,
    /// An END_REQUEST record's `protocolStatus` byte is not one of the four defined values.
    BadProtocolStatus(u8),
    /// Bytes arrived after END_REQUEST.
    TrailingData,
    /// The connection reached end-of-file before END_REQUEST
    /// (from [`ResponseDecoder::finish_eof`](super::ResponseDecoder::finish_eof)).
    Truncated,
}

impl fmt::Display for FcgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FcgiError::BadVersion(v) => write!(f, "fastcgi: unsupported record version {v}"),
            FcgiError::UnexpectedType(t) => write!(f, "fastcgi: unexpected record type {t}"),
            FcgiError::WrongRequestId { expected, got } => {
                write!(f, "fastcgi: record for request id {got}, expected {expected}")
            }
            FcgiError::BadLength => write!(f, "fastcgi: malformed record content length"),
            FcgiError::BadProtocolStatus(s) => {
                write!(f, "fastcgi: unknown END_REQUEST protocol status {s}")
            }
            FcgiError::TrailingData => write!(f, "fastcgi: data after END_REQUEST"),
            FcgiError::Truncated => write!(f, "fastcgi: connection closed before END_REQUEST"),
        }
    }
}

impl std::error::Error for FcgiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_problem() {
        assert_eq!(FcgiError::BadVersion(2).to_string(), "fastcgi: unsupported record version 2");
        assert_eq!(
            FcgiError::WrongRequestId { expected: 1, got: 2 }.to_string(),
            "fastcgi: record for request id 2, expected 1"
        );
        let errs = [
            FcgiError::UnexpectedType(1),
            FcgiError::BadLength,
            FcgiError::BadProtocolStatus(9),
            FcgiError::TrailingData,
            FcgiError::Truncated,
        ];
        for e in errs {
            assert!(e.to_string().starts_with("fastcgi: "));
            let _: &dyn std::error::Error = &e;
        }
    }
}
