//! The CGI layer, shared by every backend and surface: the ONE place that turns an HTTP
//! request into the params PHP sees, resolves the script inside the document root (and refuses
//! what must never run), and parses the CGI response head PHP sends back.

mod body;
mod head;
mod lookup_cache;
mod params;
mod request;
mod resolve;

pub use body::{BodyPart, BodyReader, RequestBody};
pub use head::{content_length, header_use, HeadParse, HeaderUse, ResponseHead};
pub use params::Params;
pub use request::{build_params, HttpRequest};
pub use resolve::{Script, Site, SplitRule, SymlinkPolicy};

/// `b` as text: borrowed after the standard (fast) UTF-8 check, lossy (U+FFFD) only when it is
/// not UTF-8.
pub(crate) fn text(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(b),
    }
}
