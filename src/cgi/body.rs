//! [`RequestBody`]: the request body handed to a backend, in memory or in files (nginx keeps
//! large bodies in a temp file; we read it from there instead of holding it in memory), and
//! [`BodyReader`], the one way to read it front to back into caller buffers.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;

use bytes::Bytes;

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

impl BodyPart {
    /// Number of bytes in this part.
    pub fn len(&self) -> u64 {
        match self {
            BodyPart::Bytes(b) => b.len() as u64,
            BodyPart::File { len, .. } => *len,
        }
    }

    /// True when the part holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A request body whose total length is known up front (CONTENT_LENGTH), in one or more
/// parts (nginx hands a body as the bytes read with the headers, then the rest, in memory or
/// in a temp file).
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
        let mut body = RequestBody::empty();
        body.push(BodyPart::Bytes(bytes));
        body
    }

    /// Appends a part (empty parts are dropped).
    pub fn push(&mut self, part: BodyPart) {
        if part.is_empty() {
            return;
        }
        self.len += part.len();
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

    /// The parts, in order, without taking them.
    pub fn parts(&self) -> &[BodyPart] {
        &self.parts
    }

    /// Takes the parts out, in order.
    pub fn into_parts(self) -> Vec<BodyPart> {
        self.parts
    }

    /// A second handle on the same body, to send it again (a retry on another PHP-FPM server):
    /// memory parts are shared, file parts get a duplicated descriptor (reads are positioned,
    /// so both handles read the whole file). Fails only when `dup` fails.
    pub fn try_clone(&self) -> io::Result<RequestBody> {
        let parts = self
            .parts
            .iter()
            .map(|p| {
                Ok(match p {
                    BodyPart::Bytes(b) => BodyPart::Bytes(b.clone()),
                    BodyPart::File { file, offset, len } => BodyPart::File { file: file.try_clone()?, offset: *offset, len: *len },
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(RequestBody { parts, len: self.len })
    }

    /// A reader over the whole body, front to back.
    pub fn into_reader(self) -> BodyReader {
        BodyReader { parts: self.parts.into(), pos: 0 }
    }
}

/// Reads a [`RequestBody`] front to back, across its parts. Every read FILLS the caller's
/// buffer unless the body ends first, so a read shorter than the buffer always means "this
/// is the end" — what PHP's `read_post` callers (`sapi_read_standard_form_data`,
/// `php://input`) take it to mean. (A reader returning one part per call loses every part
/// after the first: fe-php 0.1.0 did, see CHANGELOG.md.)
///
/// File parts are read with positioned reads (`pread`), so a descriptor shared with the
/// surface (nginx's temp file) keeps its offset.
#[derive(Debug)]
pub struct BodyReader {
    parts: VecDeque<BodyPart>,
    /// Bytes of the front part already read.
    pos: u64,
}

impl BodyReader {
    /// Fills `buf` from the body; returns the number of bytes written, less than `buf.len()`
    /// only when the body has ended. A file part that ends before its announced length (or
    /// cannot be read) is an error; the bytes copied before it are lost to the caller, and
    /// the reader is left empty.
    pub fn fill(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let Some(front) = self.parts.front() else { break };
            let left = front.len() - self.pos;
            if left == 0 {
                self.parts.pop_front();
                self.pos = 0;
                continue;
            }
            let want = left.min((buf.len() - done) as u64) as usize;
            let out = &mut buf[done..done + want];
            let got = match front {
                BodyPart::Bytes(b) => {
                    let start = self.pos as usize;
                    out.copy_from_slice(&b[start..start + want]);
                    want
                }
                BodyPart::File { file, offset, .. } => match file.read_at(out, offset + self.pos) {
                    Ok(0) => {
                        self.abandon();
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("request body file ended {left} bytes before its announced length"),
                        ));
                    }
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.abandon();
                        return Err(e);
                    }
                },
            };
            self.pos += got as u64;
            done += got;
        }
        Ok(done)
    }

    /// Drops what is left (after a read error: the body cannot be trusted any more).
    fn abandon(&mut self) {
        self.parts.clear();
        self.pos = 0;
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.parts.iter().map(BodyPart::len).sum::<u64>() - self.pos
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.fill(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    fn file_with(prefix: usize, data: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![b'#'; prefix]).unwrap();
        f.write_all(data).unwrap();
        f.write_all(b"trailing bytes that are not part of the body").unwrap();
        f
    }

    /// Reads everything with buffers of the given sizes (cycled); checks that every read
    /// shorter than its buffer is the end.
    fn read_all(mut r: BodyReader, sizes: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        for size in sizes.iter().cycle() {
            let mut buf = vec![0u8; *size];
            let n = r.fill(&mut buf).unwrap();
            out.extend_from_slice(&buf[..n]);
            if n < *size {
                assert_eq!(r.remaining(), 0, "a short read before the end");
                assert_eq!(r.fill(&mut [0u8; 8]).unwrap(), 0);
                return out;
            }
        }
        unreachable!()
    }

    #[test]
    fn reads_bytes_and_file_parts_in_order() {
        let mut body = RequestBody::from_bytes(Bytes::from_static(b"ab"));
        body.push(BodyPart::File { file: file_with(2, b"HELLO"), offset: 2, len: 5 });
        body.push(BodyPart::Bytes(Bytes::from_static(b"cd")));
        assert_eq!(body.len(), 9);
        assert_eq!(read_all(body.into_reader(), &[3]), b"abHELLOcd");
    }

    #[test]
    fn a_clone_reads_the_same_bytes_again() {
        let mut body = RequestBody::from_bytes(Bytes::from_static(b"head-"));
        body.push(BodyPart::File { file: file_with(3, b"in a file"), offset: 3, len: 9 });
        let again = body.try_clone().unwrap();
        assert_eq!(again.len(), body.len());
        assert_eq!(read_all(body.into_reader(), &[4]), b"head-in a file");
        assert_eq!(read_all(again.into_reader(), &[64]), b"head-in a file");
    }

    #[test]
    fn a_read_fills_the_buffer_across_parts() {
        // nginx's two buffers: the bytes read with the headers, then the rest.
        let mut body = RequestBody::from_bytes(Bytes::from(vec![b'a'; 860]));
        body.push(BodyPart::Bytes(Bytes::from(vec![b'b'; 2142])));
        let mut r = body.into_reader();
        let mut buf = vec![0u8; 16 * 1024];
        assert_eq!(r.fill(&mut buf).unwrap(), 3002);
        assert_eq!(r.fill(&mut buf).unwrap(), 0);
    }

    #[test]
    fn a_file_shorter_than_announced_is_an_error() {
        let mut body = RequestBody::from_bytes(Bytes::from_static(b"ab"));
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(b"xyz").unwrap();
        body.push(BodyPart::File { file: f, offset: 0, len: 10 });
        let mut r = body.into_reader();
        let err = r.fill(&mut [0u8; 64]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn empty_parts_are_dropped() {
        let mut body = RequestBody::empty();
        body.push(BodyPart::Bytes(Bytes::new()));
        assert!(body.is_empty() && body.parts().is_empty());
        assert_eq!(body.into_reader().fill(&mut [0u8; 4]).unwrap(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random bodies split into random parts (memory and file), read with random buffer
        /// sizes: the bytes equal, and only the last read is short.
        #[test]
        fn any_split_any_buffers_reads_every_byte(
            data in proptest::collection::vec(any::<u8>(), 0..40_000),
            cuts in proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>(), 0usize..64), 0..12),
            sizes in proptest::collection::vec(1usize..20_000, 1..8),
        ) {
            let mut points: Vec<usize> = cuts.iter().map(|(i, _, _)| i.index(data.len() + 1)).collect();
            points.push(0);
            points.push(data.len());
            points.sort_unstable();
            let mut body = RequestBody::empty();
            for (k, w) in points.windows(2).enumerate() {
                let piece = &data[w[0]..w[1]];
                let (in_file, prefix) = cuts.get(k).map_or((false, 0), |c| (c.1, c.2));
                if in_file {
                    body.push(BodyPart::File { file: file_with(prefix, piece), offset: prefix as u64, len: piece.len() as u64 });
                } else {
                    body.push(BodyPart::Bytes(Bytes::copy_from_slice(piece)));
                }
            }
            prop_assert_eq!(body.len(), data.len() as u64);
            prop_assert_eq!(read_all(body.into_reader(), &sizes), data);
        }
    }
}
