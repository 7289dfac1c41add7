//! The transport's two ends in one process (a thread plays the executor through the real
//! [`Source`] / [`ShmRequest`]), including an executor that lies: positions past the ring,
//! garbage frames, death mid-response. The client must answer with the right error, never
//! hang, and get its slots back.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::region::{state, Layout, Region, RESP_CAP};
use super::serve::{Shared, ShmRequest, Source};
use super::ShmClient;
use crate::cgi::{Params, RequestBody, ResponseHead, Script};
use crate::error::EngineError;
use crate::executor::wire;

fn setup(per_client_queue: usize, read_timeout: Duration) -> (Arc<ShmClient>, Shared) {
    let layout = Layout::new(1, 1, per_client_queue);
    let region = Arc::new(Region::new(layout).unwrap());
    let bells = Arc::new(vec![super::wake::eventfd().unwrap()]);
    let shared = Shared { region: Arc::clone(&region), bells: Arc::clone(&bells) };
    let client = ShmClient::new(region, 0, bells[0].try_clone().unwrap(), None, read_timeout).unwrap();
    (Arc::new(client), shared)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

fn script() -> Script {
    Script { filename: "/r/a.php".into(), script_name: "/a.php".into(), path_info: String::new() }
}

/// Reads one whole request (preamble, head, body) like the serving loop does.
fn read_request(req: &mut ShmRequest) -> (wire::RequestHead, Vec<u8>) {
    let mut pre = [0u8; 8];
    read_exact(req, &mut pre);
    let len = wire::request_head_len(&pre).unwrap();
    let mut head = vec![0u8; len];
    read_exact(req, &mut head);
    let head = wire::decode_request_head(&head).unwrap();
    let mut body = vec![0u8; head.body_len as usize];
    read_exact(req, &mut body);
    (head, body)
}

fn read_exact(req: &mut ShmRequest, mut buf: &mut [u8]) {
    while !buf.is_empty() {
        let n = req.read_some(buf).unwrap();
        buf = &mut buf[n..];
    }
}

fn executor(shared: Shared, serve: impl FnOnce(ShmRequest) + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut src = Source::new(shared, 0);
        let req = src.next(|| false).expect("a request");
        serve(req)
    })
}

async fn collect(client: &Arc<ShmClient>, body: RequestBody) -> Result<(ResponseHead, Vec<u8>), EngineError> {
    let (head, mut b) = client.execute(&Params::with_capacity(0), &script(), body, 0, None).await?;
    let mut out = Vec::new();
    while let Some(c) = std::future::poll_fn(|cx| b.poll_chunk(cx)).await {
        out.extend_from_slice(&c?);
    }
    Ok((head, out))
}

#[test]
fn a_request_and_a_large_response_cross_both_rings() {
    let (client, shared) = setup(4, Duration::from_secs(20));
    let big_req: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let want = big_req.clone();
    let ex = executor(shared, move |mut req| {
        let (head, body) = read_request(&mut req);
        assert_eq!(head.filename, b"/r/a.php");
        assert_eq!(body, want);
        let mut out = BytesMut::new();
        let mut h = ResponseHead::new();
        h.set_status(201);
        wire::encode_head(&mut out, &h);
        assert!(req.write_all(&out));
        for i in 0..40u8 {
            out.clear();
            wire::encode_data(&mut out, &vec![i; 10_000]);
            assert!(req.write_all(&out), "client reads on (back-pressure, not loss)");
        }
        out.clear();
        wire::encode_end(&mut out);
        assert!(req.write_all(&out));
    });
    let (head, body) = rt().block_on(collect(&client, RequestBody::from_bytes(Bytes::from(big_req)))).unwrap();
    ex.join().unwrap();
    assert_eq!(head.status, 201);
    assert_eq!(body.len(), 400_000);
    assert!(body.chunks(10_000).enumerate().all(|(i, c)| c.iter().all(|&b| b == i as u8)));
}

#[test]
fn a_lying_executor_costs_only_its_request() {
    let (client, shared) = setup(2, Duration::from_secs(20));
    let rt = rt();
    // A response position past the ring: 502, no hang, no read out of bounds.
    let s = shared.clone();
    let ex = executor(shared.clone(), move |req| {
        let slot = (0..s.region.layout().slots()).find(|&i| s.region.ctl(i).state.load(Ordering::SeqCst) >= state::TAKEN).unwrap();
        s.region.ctl(slot).resp_w.store(RESP_CAP as u32 + 7, Ordering::SeqCst);
        s.ring(0);
        drop(req);
    });
    let err = rt.block_on(collect(&client, RequestBody::empty())).unwrap_err();
    ex.join().unwrap();
    assert_eq!(err.status(), 502, "{err}");
    // Garbage where frames belong: 502.
    let ex = executor(shared.clone(), |mut req| {
        req.write_all(&[9u8; 64]);
    });
    let err = rt.block_on(collect(&client, RequestBody::empty())).unwrap_err();
    ex.join().unwrap();
    assert_eq!(err.status(), 502, "{err}");
    // Death mid-response, as the supervisor reports it: 502 for a crash, 504 for a kill after
    // the terminate timeout; the slot comes back either way.
    for (timed_out, status) in [(false, 502), (true, 504), (false, 502), (true, 504)] {
        let s = shared.clone();
        let ex = executor(shared.clone(), move |mut req| {
            let mut out = BytesMut::new();
            wire::encode_head(&mut out, &ResponseHead::new());
            wire::encode_data(&mut out, b"partial");
            req.write_all(&out);
            assert_eq!(s.executor_gone(0, timed_out), 1);
            std::mem::forget(req); // a dead process releases nothing
        });
        let err = rt.block_on(collect(&client, RequestBody::empty())).unwrap_err();
        ex.join().unwrap();
        assert_eq!(err.status(), status, "{err}");
    }
    // After all of that (more requests than this client has slots), a good one is served.
    let ex = executor(shared, |mut req| {
        let mut out = BytesMut::new();
        wire::encode_head(&mut out, &ResponseHead::new());
        wire::encode_data(&mut out, b"fine");
        wire::encode_end(&mut out);
        req.write_all(&out);
    });
    let (_, body) = rt.block_on(collect(&client, RequestBody::empty())).unwrap();
    ex.join().unwrap();
    assert_eq!(body, b"fine");
}

#[test]
fn no_executor_means_503_and_the_queue_share_is_bounded() {
    let (client, _shared) = setup(2, Duration::from_millis(300));
    let rt = rt();
    // Nobody takes it: withdrawn after the read timeout, 503, and the slot is free again.
    for _ in 0..5 {
        let err = rt.block_on(collect(&client, RequestBody::empty())).unwrap_err();
        assert_eq!(err.status(), 503, "{err}");
    }
    // Every slot of this client waiting: the next request is refused at once (503).
    let slots = client.region_slots();
    let waiting: Vec<_> = (0..slots)
        .map(|_| {
            let c = Arc::clone(&client);
            rt.spawn(async move { collect(&c, RequestBody::empty()).await })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let err = rt.block_on(collect(&client, RequestBody::empty())).unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(err.to_string().contains("queue is full"), "{err}");
    for w in waiting {
        assert_eq!(rt.block_on(w).unwrap().unwrap_err().status(), 503);
    }
}

#[test]
fn a_client_that_leaves_cancels_the_executor_and_gets_its_slot_back() {
    let (client, shared) = setup(1, Duration::from_secs(20));
    let rt = rt();
    let (tx, rx) = std::sync::mpsc::channel();
    let ex = executor(shared.clone(), move |mut req| {
        let mut out = BytesMut::new();
        wire::encode_head(&mut out, &ResponseHead::new());
        req.write_all(&out);
        // Writes until the client is gone (the ring fills, then cancel ends the wait).
        let mut n = 0;
        loop {
            out.clear();
            wire::encode_data(&mut out, &[1u8; 8192]);
            if !req.write_all(&out) {
                break;
            }
            n += 1;
        }
        tx.send(n).unwrap();
    });
    rt.block_on(async {
        let (_, mut body) = client.execute(&Params::with_capacity(0), &script(), RequestBody::empty(), 0, None).await.unwrap();
        let first = std::future::poll_fn(|cx| body.poll_chunk(cx)).await;
        assert!(first.unwrap().is_ok());
        drop(body);
    });
    let written = rx.recv_timeout(Duration::from_secs(10)).expect("the executor saw the cancel");
    assert!(written < 1000, "{written}");
    ex.join().unwrap();
    // Every slot (the cancelled one once released) serves again.
    for _ in 0..client.region_slots() + 1 {
        let ex = executor(shared.clone(), |mut req| {
            let mut out = BytesMut::new();
            wire::encode_head(&mut out, &ResponseHead::new());
            wire::encode_end(&mut out);
            req.write_all(&out);
        });
        rt.block_on(collect(&client, RequestBody::empty())).unwrap();
        ex.join().unwrap();
    }
}
