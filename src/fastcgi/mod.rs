//! The FastCGI record codec (FastCGI 1.0), without I/O.
//!
//! This module turns a request into the bytes a web server sends to a FastCGI application
//! (BEGIN_REQUEST, PARAMS, STDIN, ABORT_REQUEST, GET_VALUES: the `encode_*` functions, which
//! append complete, padded records to a `BytesMut`) and turns the bytes the application sends
//! back into [`Event`]s ([`ResponseDecoder`], resumable: feed it whatever arrived, `Ok(None)`
//! means "need more bytes").
//!
//! **No I/O here.** Like quinn-proto, h2's frame codec and hyper's `proto/h1`, this module takes
//! bytes in and gives bytes and events out: it never touches a socket, a timer or tokio, and it
//! imports only `bytes`, `memchr`, [`crate::cgi::Params`] and its own [`FcgiError`]. The
//! connection pool (`crate::pool`) owns the sockets, the buffers and their limits, and maps
//! [`FcgiError`] to a 502.
//!
//! Files: `record` (header, record types, constants), `name_value` (the pair encoding),
//! `encode` (records we send), `decode` (records we receive), `error`.

mod decode;
mod encode;
mod error;
mod name_value;
mod record;

#[cfg(test)]
mod props;
#[cfg(test)]
mod test_support;

pub use decode::{Event, ResponseDecoder};
pub use encode::{
    encode_abort_request, encode_begin_request, encode_get_values, encode_params, encode_stdin,
    encode_stdin_end,
};
pub use error::FcgiError;
pub use name_value::{decode_name_values, encode_name_value};
pub use record::{ProtocolStatus, RecordType, FCGI_VERSION_1};
