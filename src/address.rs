//! [`Address`]: where PHP-FPM listens, `unix:/path` or `host:port` (a configuration value:
//! [`crate::config`] checks it, [`crate::pool`] connects to it).

use std::fmt;
use std::path::PathBuf;

/// A PHP-FPM listen address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// `host:port` (resolved at connect time).
    Tcp(String),
    /// `unix:/path/to.sock`.
    Unix(PathBuf),
}

impl Address {
    /// Parses `unix:/path` or `host:port`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Address, String> {
        if let Some(path) = text.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(format!("`{text}`: unix socket path must be absolute (unix:/path)"));
            }
            return Ok(Address::Unix(PathBuf::from(path)));
        }
        match text.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().map(|p| p > 0).unwrap_or(false) => {
                Ok(Address::Tcp(text.to_string()))
            }
            _ => Err(format!("`{text}` is neither unix:/path nor host:port")),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(hp) => f.write_str(hp),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_junk() {
        assert_eq!(Address::parse("unix:/run/php.sock"), Ok(Address::Unix("/run/php.sock".into())));
        assert_eq!(Address::parse("127.0.0.1:9000"), Ok(Address::Tcp("127.0.0.1:9000".into())));
        assert_eq!(Address::parse("[::1]:9000"), Ok(Address::Tcp("[::1]:9000".into())));
        for bad in ["", "nowhere", "unix:relative.sock", "host:0", "host:99999", ":9000"] {
            assert!(Address::parse(bad).is_err(), "{bad}");
        }
    }
}
