//! [`Params`]: the CGI/FastCGI name-value list of one request, stored in one arena buffer so
//! building it costs two allocations whatever the number of entries.

/// An ordered list of CGI params (`SCRIPT_FILENAME`, `HTTP_HOST`, ...), names and values as
/// bytes. Later entries with the same name override earlier ones when read with
/// [`Params::get`] (PHP-FPM and PHP's `$_SERVER` keep the last one too).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params {
    buf: Vec<u8>,
    /// (name start, name len, value len) into `buf`; the value follows the name.
    spans: Vec<(u32, u32, u32)>,
}

impl Params {
    /// An empty list with room for about `entries` params of typical size.
    pub fn with_capacity(entries: usize) -> Self {
        Params { buf: Vec::with_capacity(entries * 32), spans: Vec::with_capacity(entries) }
    }

    /// Appends a param.
    pub fn push(&mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(value);
        self.spans.push((start, name.len() as u32, value.len() as u32));
    }

    /// Appends a param whose name is built from parts without a temporary allocation
    /// (e.g. `HTTP_` + the transformed header name): `write_name` appends the name bytes.
    pub fn push_with(&mut self, write_name: impl FnOnce(&mut Vec<u8>), value: &[u8]) {
        let start = self.buf.len();
        write_name(&mut self.buf);
        let name_len = self.buf.len() - start;
        self.buf.extend_from_slice(value);
        self.spans.push((start as u32, name_len as u32, value.len() as u32));
    }

    /// Appends a param whose value is the concatenation of `parts` (no temporary buffer).
    pub fn push_concat(&mut self, name: &[u8], parts: &[&[u8]]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(name);
        let value_start = self.buf.len();
        for part in parts {
            self.buf.extend_from_slice(part);
        }
        let value_len = self.buf.len() - value_start;
        self.spans.push((start as u32, name.len() as u32, value_len as u32));
    }

    /// Removes every entry named `name` (used before `fephp_param` overrides).
    pub fn remove(&mut self, name: &[u8]) {
        let buf = &self.buf;
        self.spans.retain(|&(s, n, _)| &buf[s as usize..(s + n) as usize] != name);
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter().filter(|(n, _)| *n == name).map(|(_, v)| v).last()
    }

    /// The last value for `name` as UTF-8 text, if it is valid UTF-8.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name.as_bytes()).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every entry in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(move |&(s, n, v)| {
            let (s, n, v) = (s as usize, n as usize, v as usize);
            (&self.buf[s..s + n], &self.buf[s + n..s + n + v])
        })
    }

    /// True when some name or value contains a NUL byte (one scan of the whole buffer): a C
    /// consumer that finds none needs no per-string check.
    pub fn has_nul(&self) -> bool {
        memchr::memchr(0, &self.buf).is_some()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.iter().map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v))))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_iter_remove() {
        let mut p = Params::with_capacity(4);
        p.push("A", "1");
        p.push_with(|b| b.extend_from_slice(b"HTTP_X"), b"y");
        p.push("A", "2");
        assert_eq!(p.get(b"A"), Some(&b"2"[..]));
        p.push_concat(b"C", &[b"/a.php", b"", b"/x"]);
        assert_eq!(p.get_str("C"), Some("/a.php/x"));
        p.remove(b"C");
        assert_eq!(p.get_str("HTTP_X"), Some("y"));
        assert_eq!(p.len(), 3);
        p.remove(b"A");
        assert_eq!(p.iter().collect::<Vec<_>>(), vec![(&b"HTTP_X"[..], &b"y"[..])]);
    }
}
