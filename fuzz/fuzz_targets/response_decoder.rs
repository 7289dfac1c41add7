//! Feeds arbitrary bytes, in arbitrary read splits, to `ResponseDecoder`.
//!
//! Input layout: byte 0 = control (bit 7: decoder for request id 0 instead of 1; bits 0..3: how
//! many split-size bytes follow), then that many split sizes (cycled), then the byte stream.
//! Checks: no panic; no empty STDOUT/STDERR piece; at most one record left in the buffer when
//! more bytes are needed; errors are sticky; `finish_eof` agrees with `is_finished`; and the
//! split feed gives the same events (adjacent stream pieces joined) and the same outcome as the
//! whole input given at once.
#![no_main]

use bytes::BytesMut;
use fephp::fastcgi::{Event, FcgiError, ResponseDecoder};
use libfuzzer_sys::fuzz_target;

/// Header + largest content + largest padding.
const MAX_RECORD: usize = 8 + 65535 + 255;

/// An event with adjacent STDOUT (or STDERR) pieces joined.
#[derive(Debug, PartialEq)]
enum Joined {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Other(Event),
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Joined>,
    error: Option<FcgiError>,
    finished: bool,
    eof: Result<(), FcgiError>,
}

fn push_joined(events: &mut Vec<Joined>, ev: Event) {
    match (events.last_mut(), ev) {
        (Some(Joined::Stdout(a)), Event::Stdout(b)) | (Some(Joined::Stderr(a)), Event::Stderr(b)) => {
            a.extend_from_slice(&b)
        }
        (_, Event::Stdout(b)) => events.push(Joined::Stdout(b.to_vec())),
        (_, Event::Stderr(b)) => events.push(Joined::Stderr(b.to_vec())),
        (_, ev) => events.push(Joined::Other(ev)),
    }
}

fn run<'a>(request_id: u16, chunks: impl Iterator<Item = &'a [u8]>) -> Outcome {
    let mut dec = ResponseDecoder::new(request_id);
    let mut buf = BytesMut::new();
    let mut events = Vec::new();
    let mut error = None;
    'feed: for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(ev)) => {
                    if let Event::Stdout(b) | Event::Stderr(b) = &ev {
                        assert!(!b.is_empty(), "empty stream piece");
                    }
                    push_joined(&mut events, ev);
                }
                Ok(None) => {
                    assert!(buf.len() <= MAX_RECORD, "decoder holds more than one record");
                    break;
                }
                Err(e) => {
                    assert_eq!(dec.decode(&mut buf), Err(e.clone()), "error not sticky");
                    assert_eq!(dec.finish_eof(), Err(e.clone()));
                    error = Some(e);
                    break 'feed;
                }
            }
        }
    }
    let finished = dec.is_finished();
    let eof = dec.finish_eof();
    assert_eq!(eof.is_ok(), finished);
    Outcome { events, error, finished, eof }
}

/// Cuts `stream` into chunks whose sizes cycle through `sizes` (0 = an empty read).
fn chunks<'a>(stream: &'a [u8], sizes: &'a [u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![stream];
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &s in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        // Mostly small reads; the top of the range gives reads of several KB.
        let n = if s < 0xf0 { s as usize } else { (s as usize - 0xef) * 4096 };
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&control, rest)) = data.split_first() else { return };
    let request_id = if control & 0x80 != 0 { 0 } else { 1 };
    let (sizes, stream) = rest.split_at(((control & 0x0f) as usize).min(rest.len()));

    let whole = run(request_id, std::iter::once(stream));
    let split = run(request_id, chunks(stream, sizes).into_iter());
    assert_eq!(whole, split, "split reads changed the outcome");
});
