//! FastCGI name-value pairs (FastCGI 1.0, section 3.4): each pair is the name length, the value
//! length, the name, the value. A length below 128 is one byte; otherwise it is four bytes,
//! big-endian, with the top bit set (so at most 2^31 - 1).

use bytes::{BufMut, BytesMut};

use super::error::FcgiError;
use crate::cgi::Params;

/// Longest name or value a pair can carry.
pub(crate) const MAX_PAIR_FIELD: usize = 0x7fff_ffff;

/// The length prefix for `len`: the bytes to write are `prefix[..n]`.
///
/// Panics when `len` exceeds 2^31 - 1, which FastCGI cannot express.
pub(crate) fn length_prefix(len: usize) -> ([u8; 4], usize) {
    if len <= 127 {
        ([len as u8, 0, 0, 0], 1)
    } else {
        assert!(len <= MAX_PAIR_FIELD, "fastcgi: name or value of {len} bytes exceeds 2^31 - 1");
        ((len as u32 | 0x8000_0000).to_be_bytes(), 4)
    }
}

/// Encoded size of one pair.
pub(crate) fn pair_len(name: &[u8], value: &[u8]) -> usize {
    length_prefix(name.len()).1 + length_prefix(value.len()).1 + name.len() + value.len()
}

/// Appends one name-value pair to `buf` (no record header): the name length, the value length
/// (each 1 byte when <= 127, else 4 bytes with the top bit set), the name, the value.
///
/// # Panics
/// When `name` or `value` is longer than 2^31 - 1 bytes, the most FastCGI can express.
pub fn encode_name_value(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    let (np, nl) = length_prefix(name.len());
    let (vp, vl) = length_prefix(value.len());
    buf.reserve(nl + vl + name.len() + value.len());
    buf.put_slice(&np[..nl]);
    buf.put_slice(&vp[..vl]);
    buf.put_slice(name);
    buf.put_slice(value);
}

/// Reads one length field from the front of `input`.
fn read_length(input: &mut &[u8]) -> Result<usize, FcgiError> {
    let first = *input.first().ok_or(FcgiError::BadLength)?;
    if first & 0x80 == 0 {
        *input = &input[1..];
        return Ok(first as usize);
    }
    let four: [u8; 4] = input.get(..4).ok_or(FcgiError::BadLength)?.try_into().map_err(|_| FcgiError::BadLength)?;
    *input = &input[4..];
    Ok((u32::from_be_bytes(four) & 0x7fff_ffff) as usize)
}

/// Takes `len` bytes from the front of `input`.
fn take<'a>(input: &mut &'a [u8], len: usize) -> Result<&'a [u8], FcgiError> {
    if input.len() < len {
        return Err(FcgiError::BadLength);
    }
    let (head, rest) = input.split_at(len);
    *input = rest;
    Ok(head)
}

/// Decodes a whole sequence of name-value pairs (e.g. the content of a GET_VALUES_RESULT
/// record, or a reassembled PARAMS stream) into [`Params`], in order.
///
/// # Errors
/// [`FcgiError::BadLength`] when a length field is cut short or a name or value runs past the
/// end of `content`.
pub fn decode_name_values(content: &[u8]) -> Result<Params, FcgiError> {
    let mut params = Params::with_capacity(4);
    let mut input = content;
    while !input.is_empty() {
        let name_len = read_length(&mut input)?;
        let value_len = read_length(&mut input)?;
        let name = take(&mut input, name_len)?;
        let value = take(&mut input, value_len)?;
        params.push(name, value);
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(name: &[u8], value: &[u8]) -> Vec<u8> {
        let mut buf = BytesMut::new();
        encode_name_value(&mut buf, name, value);
        assert_eq!(buf.len(), pair_len(name, value));
        buf.to_vec()
    }

    #[test]
    fn short_lengths_take_one_byte() {
        assert_eq!(encoded(b"A", b"bc"), b"\x01\x02Abc");
        assert_eq!(encoded(b"", b""), b"\x00\x00");
        let name = [b'n'; 127];
        let out = encoded(&name, b"");
        assert_eq!(&out[..2], &[127, 0]);
        assert_eq!(out.len(), 2 + 127);
    }

    #[test]
    fn long_lengths_take_four_bytes_with_top_bit() {
        let value = vec![b'v'; 128];
        let out = encoded(b"N", &value);
        assert_eq!(&out[..6], &[1, 0x80, 0, 0, 128, b'N']);
        let value = vec![b'v'; 70_000];
        let out = encoded(&[b'k'; 300], &value);
        assert_eq!(&out[..8], &[0x80, 0, 0x01, 0x2c, 0x80, 0x01, 0x11, 0x70]);
        assert_eq!(out.len(), 8 + 300 + 70_000);
    }

    #[test]
    fn length_prefix_boundaries() {
        assert_eq!(length_prefix(0), ([0, 0, 0, 0], 1));
        assert_eq!(length_prefix(127), ([127, 0, 0, 0], 1));
        assert_eq!(length_prefix(128), ([0x80, 0, 0, 128], 4));
        assert_eq!(length_prefix(MAX_PAIR_FIELD), ([0xff, 0xff, 0xff, 0xff], 4));
    }

    #[test]
    #[should_panic(expected = "exceeds 2^31 - 1")]
    fn length_prefix_refuses_over_31_bits() {
        length_prefix(MAX_PAIR_FIELD + 1);
    }

    #[test]
    fn decode_round_trips_mixed_lengths() {
        let long = vec![b'x'; 70_000];
        let mut buf = BytesMut::new();
        encode_name_value(&mut buf, b"SCRIPT_FILENAME", b"/srv/index.php");
        encode_name_value(&mut buf, b"EMPTY", b"");
        encode_name_value(&mut buf, &[b'L'; 200], &long);
        encode_name_value(&mut buf, b"", b"no name");
        let params = decode_name_values(&buf).unwrap();
        let got: Vec<_> = params.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (b"SCRIPT_FILENAME".to_vec(), b"/srv/index.php".to_vec()),
                (b"EMPTY".to_vec(), vec![]),
                (vec![b'L'; 200], long),
                (vec![], b"no name".to_vec()),
            ]
        );
        assert!(decode_name_values(b"").unwrap().is_empty());
    }

    #[test]
    fn decode_reads_four_byte_form_even_for_small_lengths() {
        // Senders may use the 4-byte form for any length.
        let params = decode_name_values(b"\x80\x00\x00\x01\x80\x00\x00\x02Nvv").unwrap();
        assert_eq!(params.get(b"N"), Some(&b"vv"[..]));
    }

    #[test]
    fn malformed_pairs_are_bad_length() {
        let cases: &[&[u8]] = &[
            b"\x01",                     // value length missing
            b"\x80\x00\x00",             // 4-byte name length cut short
            b"\x01\x80\x00",             // 4-byte value length cut short
            b"\x01\x01N",                // value missing
            b"\x05\x00abc",              // name runs past the end
            b"\x01\x01NV\x02",           // second pair cut short
            b"\xff\xff\xff\xff\x00",     // huge name length
            b"\x00\xff\xff\xff\xffabc",  // huge value length
        ];
        for case in cases {
            assert_eq!(decode_name_values(case), Err(FcgiError::BadLength), "{case:?}");
        }
    }
}
