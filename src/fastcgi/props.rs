//! Property tests: random inputs in random read splits never panic and decode the same as when
//! given whole; random params and stdin round-trip through the encoders; random application
//! streams decode to the events they were built from.

use bytes::BytesMut;
use proptest::prelude::*;

use super::record::{padding_for, RecordType, MAX_CONTENT};
use super::test_support::{app_record, decode_request, end_body, feed, normalize, parse_records, split_at_offsets};
use super::{encode_name_value, encode_params, encode_stdin, encode_stdin_end, Event, ProtocolStatus};
use crate::cgi::Params;

/// Sorted cut offsets into a buffer of `len` bytes, from raw random numbers.
fn offsets(len: usize, raw: &[usize]) -> Vec<usize> {
    let mut cuts: Vec<usize> = raw.iter().map(|r| r % (len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// Bytes of mostly small, sometimes large size.
fn blob(small: usize, large: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => prop::collection::vec(any::<u8>(), 0..small),
        1 => (large, any::<u8>()).prop_map(|(n, b)| (0..n).map(|i| b.wrapping_add(i as u8)).collect()),
    ]
}

/// A record as an application might (mis)behave: any type, ids around ours, any padding.
fn any_record() -> impl Strategy<Value = (u8, u16, Vec<u8>, u8)> {
    let record_type = prop_oneof![
        4 => Just(RecordType::Stdout as u8),
        2 => Just(RecordType::Stderr as u8),
        2 => Just(RecordType::EndRequest as u8),
        1 => Just(RecordType::GetValuesResult as u8),
        1 => Just(RecordType::UnknownType as u8),
        1 => any::<u8>(),
    ];
    let request_id = prop_oneof![4 => Just(1u16), 1 => Just(0u16), 1 => any::<u16>()];
    let padding = prop_oneof![4 => 0u8..8, 1 => any::<u8>()];
    (record_type, request_id, prop::collection::vec(any::<u8>(), 0..64), padding)
}

/// One thing an application sends for a well-behaved response.
#[derive(Debug, Clone)]
enum Piece {
    Out(Vec<u8>, u8),
    Err(Vec<u8>, u8),
    Values(Vec<(Vec<u8>, Vec<u8>)>, u8),
    Unknown(u8, u8),
}

fn piece() -> impl Strategy<Value = Piece> {
    let pad = || prop_oneof![4 => 0u8..8, 1 => any::<u8>()];
    let content = || blob(300, 60_000..65_536);
    let pairs = prop::collection::vec((blob(20, 128..300), blob(20, 128..300)), 0..5);
    prop_oneof![
        5 => (content(), pad()).prop_map(|(c, p)| Piece::Out(c, p)),
        2 => (content(), pad()).prop_map(|(c, p)| Piece::Err(c, p)),
        1 => (pairs, pad()).prop_map(|(v, p)| Piece::Values(v, p)),
        1 => (any::<u8>(), pad()).prop_map(|(t, p)| Piece::Unknown(t, p)),
    ]
}

fn to_params(pairs: &[(Vec<u8>, Vec<u8>)]) -> Params {
    let mut p = Params::with_capacity(pairs.len());
    for (n, v) in pairs {
        p.push(n, v);
    }
    p
}

fn pairs_of(p: &Params) -> Vec<(Vec<u8>, Vec<u8>)> {
    p.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_in_random_splits_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        request_id in prop_oneof![Just(1u16), Just(0u16), any::<u16>()],
    ) {
        let whole = feed(request_id, [&bytes[..]]);
        let split = feed(request_id, split_at_offsets(&bytes, &offsets(bytes.len(), &cuts)));
        prop_assert_eq!(normalize(whole.0), normalize(split.0));
        prop_assert_eq!(whole.1, split.1);
        prop_assert_eq!(whole.2.finish_eof(), split.2.finish_eof());
    }

    #[test]
    fn random_records_in_random_splits_never_panic(
        records in prop::collection::vec(any_record(), 0..12),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut buf = BytesMut::new();
        for (t, id, content, pad) in &records {
            app_record(&mut buf, *t, *id, content, *pad);
        }
        if !buf.is_empty() {
            for (at, x) in &flips {
                let i = at % buf.len();
                buf[i] ^= x;
            }
        }
        let whole = feed(1, [&buf[..]]);
        let split = feed(1, split_at_offsets(&buf, &offsets(buf.len(), &cuts)));
        let one_by_one = feed(1, buf.chunks(1));
        prop_assert_eq!(normalize(whole.0.clone()), normalize(split.0));
        prop_assert_eq!(normalize(whole.0), normalize(one_by_one.0));
        prop_assert_eq!(&whole.1, &split.1);
        prop_assert_eq!(&whole.1, &one_by_one.1);
        prop_assert_eq!(whole.2.is_finished(), split.2.is_finished());
    }

    #[test]
    fn params_round_trip(
        pairs in prop::collection::vec((blob(40, 128..1000), blob(200, 60_000..140_000)), 0..20),
        request_id in any::<u16>(),
    ) {
        let params = to_params(&pairs);
        let mut buf = BytesMut::new();
        encode_params(&mut buf, request_id, &params);
        let recs = parse_records(&buf); // checks alignment and zero padding
        prop_assert!(recs.iter().all(|r| r.header.record_type == RecordType::Params as u8));
        prop_assert!(recs.iter().all(|r| r.header.padding_length == padding_for(r.content.len())));
        // Every record but the last two is full; the last is the empty terminator.
        prop_assert_eq!(recs.last().map(|r| r.content.len()), Some(0));
        for r in recs.iter().rev().skip(2) {
            prop_assert_eq!(r.content.len(), MAX_CONTENT);
        }
        let side = decode_request(&buf, request_id);
        prop_assert!(side.params_ended);
        prop_assert_eq!(pairs_of(&side.params()), pairs);
        // The stream is exactly the pairs encoded one after another.
        let mut flat = BytesMut::new();
        for (n, v) in params.iter() {
            encode_name_value(&mut flat, n, v);
        }
        prop_assert_eq!(&side.params_stream[..], &flat[..]);
    }

    #[test]
    fn stdin_round_trips(seed in prop::collection::vec(any::<u8>(), 0..700), repeat in 0usize..300, request_id in any::<u16>()) {
        let data = seed.repeat(repeat);
        let mut buf = BytesMut::new();
        encode_stdin(&mut buf, request_id, &data);
        let recs = parse_records(&buf);
        prop_assert_eq!(recs.len(), data.len().div_ceil(MAX_CONTENT));
        prop_assert!(recs.iter().all(|r| !r.content.is_empty() && r.content.len() <= MAX_CONTENT));
        encode_stdin_end(&mut buf, request_id);
        let side = decode_request(&buf, request_id);
        prop_assert!(side.stdin_ended);
        prop_assert_eq!(side.stdin, data);
    }

    #[test]
    fn application_streams_decode_to_their_events_under_random_splits(
        pieces in prop::collection::vec(piece(), 0..10),
        app_status in any::<u32>(),
        status in 0u8..4,
        end_pad in prop_oneof![0u8..8, any::<u8>()],
        cuts in prop::collection::vec(any::<usize>(), 0..16),
    ) {
        let mut buf = BytesMut::new();
        let mut expected = Vec::new();
        for piece in &pieces {
            match piece {
                Piece::Out(c, p) => {
                    app_record(&mut buf, RecordType::Stdout as u8, 1, c, *p);
                    if !c.is_empty() { expected.push(Event::Stdout(c.clone().into())); }
                }
                Piece::Err(c, p) => {
                    app_record(&mut buf, RecordType::Stderr as u8, 1, c, *p);
                    if !c.is_empty() { expected.push(Event::Stderr(c.clone().into())); }
                }
                Piece::Values(pairs, p) => {
                    let mut content = BytesMut::new();
                    for (n, v) in pairs { encode_name_value(&mut content, n, v); }
                    app_record(&mut buf, RecordType::GetValuesResult as u8, 0, &content, *p);
                    expected.push(Event::GetValuesResult(to_params(pairs)));
                }
                Piece::Unknown(t, p) => {
                    app_record(&mut buf, RecordType::UnknownType as u8, 0, &[*t, 0, 0, 0, 0, 0, 0, 0], *p);
                }
            }
        }
        app_record(&mut buf, RecordType::EndRequest as u8, 1, &end_body(app_status, status), end_pad);
        expected.push(Event::EndRequest { app_status, protocol_status: ProtocolStatus::from_u8(status).unwrap() });

        let (events, error, dec) = feed(1, split_at_offsets(&buf, &offsets(buf.len(), &cuts)));
        prop_assert_eq!(error, None);
        prop_assert_eq!(normalize(events), normalize(expected));
        prop_assert!(dec.is_finished());
        prop_assert_eq!(dec.finish_eof(), Ok(()));
    }
}
