//! [`RequestBody`]: the request body handed to a backend, in memory or in files (nginx keeps
//! large bodies in a temp file; we read it from there instead of holding it in memory).

use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// One piece of a request body.
#[derive(Debug)]
pub enum BodyPart {
    /// Bytes in memory.
    Bytes(Bytes),
    /// `len` bytes of `file` starting at `offset` (e.g. nginx's client body temp file).
    File {
        /// An open handle (a dup of the surface's descriptor).
        file: File,
        /// First byte.
        offset: u64,
        /// Number of bytes.
        len: u64,
    },
}

/// A request body whose total length is known up front (CONTENT_LENGTH).
#[derive(Debug, Default)]
pub struct RequestBody {
    parts: Vec<BodyPart>,
    len: u64,
}

impl RequestBody {
    /// No body.
    pub fn empty() -> Self {
        RequestBody::default()
    }

    /// A body held in one buffer.
    pub fn from_bytes(bytes: Bytes) -> Self {
        let len = bytes.len() as u64;
        if len == 0 {
            return RequestBody::empty();
        }
        RequestBody { parts: vec![BodyPart::Bytes(bytes)], len }
    }

    /// Appends a part.
    pub fn push(&mut self, part: BodyPart) {
        self.len += match &part {
            BodyPart::Bytes(b) => b.len() as u64,
            BodyPart::File { len, .. } => *len,
        };
        self.parts.push(part);
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the parts out, in order.
    pub fn into_parts(self) -> Vec<BodyPart> {
        self.parts
    }

    /// Reads the whole body into `f`, in chunks of at most `chunk` bytes (blocking file reads:
    /// call from a blocking context). Memory parts are passed without copying.
    pub fn for_each_chunk(self, chunk: usize, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        let mut buf = Vec::new();
        for part in self.parts {
            match part {
                BodyPart::Bytes(b) => {
                    for piece in b.chunks(chunk.max(1)) {
                        f(piece)?;
                    }
                }
                BodyPart::File { mut file, offset, len } => {
                    file.seek(SeekFrom::Start(offset))?;
                    buf.resize(chunk.max(1), 0);
                    let mut left = len;
                    while left > 0 {
                        let want = (left as usize).min(buf.len());
                        let got = file.read(&mut buf[..want])?;
                        if got == 0 {
                            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request body file is shorter than announced"));
                        }
                        f(&buf[..got])?;
                        left -= got as u64;
                    }
                }
            }
        }
        Ok(())
    }
}

impl RequestBody {
    /// The parts, in order, without taking them.
    pub fn parts(&self) -> &[BodyPart] {
        &self.parts
    }
}
