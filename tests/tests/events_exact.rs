//! ReadEvents against a real program (tests/bpf/events.bpf.c): N datagrams make exactly N
//! records in the ring buffer and in the perf event array, and the stream delivers exactly
//! those N, with their contents, in order, and nothing more. Every subscriber gets every
//! record. Formats and refused requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use bpfmap_tests::api::pb::{Format, MapType, ReadEventsRequest};
use bpfmap_tests::api::*;
use bpfmap_tests::events::{Event, PAYLOAD_LEN};
use bpfmap_tests::live::{read_events, receive, receive_for};
use bpfmap_tests::{kernel, names, EventsProgram, TestEnv};
use tonic::Code;

const N: u64 = 500;
const WAIT: Duration = Duration::from_secs(20);

fn expected(seq: u64) -> Event {
    Event {
        seq,
        len: 8 + PAYLOAD_LEN as u32,
        index: 0,
    }
}

#[tokio::test]
async fn a_ring_buffer_streams_exactly_the_records_the_program_wrote() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let mut stream = read_events(&mut t.client, by_id(prog.ring_id()), Format::Raw).await;
    prog.send(0..N);
    let got = receive(&mut stream, N, WAIT).await;
    assert_eq!(got.lost, 0, "nothing may be lost: {got:?}");
    assert_eq!(got.records.len() as u64, N);
    for (i, (cpu, bytes)) in got.records.iter().enumerate() {
        assert_eq!(*cpu, None, "ring buffer records carry no CPU");
        assert_eq!(bytes.len(), 16);
        assert_eq!(Event::parse(bytes), expected(i as u64), "record {i}");
    }
    let stats = prog.stats();
    assert_eq!((stats.ring_written, stats.ring_refused), (N, 0));
    // And nothing more than what was written.
    let extra = receive_for(&mut stream, Duration::from_millis(300)).await;
    assert!(extra.records.is_empty() && extra.lost == 0, "{extra:?}");
    // More traffic later goes on from there.
    prog.send(N..N + 10);
    let got = receive(&mut stream, 10, WAIT).await;
    let seqs: Vec<u64> = got
        .records
        .iter()
        .map(|(_, b)| Event::parse(b).seq)
        .collect();
    assert_eq!(seqs, (N..N + 10).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_perf_event_array_streams_exactly_the_records_with_their_cpu() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let mut stream = read_events(&mut t.client, by_id(prog.perf_id()), Format::Raw).await;
    prog.send(0..N);
    let got = receive(&mut stream, N, WAIT).await;
    assert_eq!(got.lost, 0, "nothing may be lost: {got:?}");
    assert_eq!(got.records.len() as u64, N);
    let cpus = kernel::possible_cpus() as u32;
    let mut seqs: Vec<u64> = got
        .records
        .iter()
        .map(|(cpu, bytes)| {
            let cpu = cpu.expect("perf records carry their CPU");
            assert!(cpu < cpus, "cpu {cpu} of {cpus}");
            // A perf record is padded to 8 bytes: raw samples are u32 size + data.
            assert!(bytes.len() >= 16, "{} bytes", bytes.len());
            let e = Event::parse(bytes);
            assert_eq!((e.len, e.index), (8 + PAYLOAD_LEN as u32, 0));
            e.seq
        })
        .collect();
    // Each CPU's buffer is in order; across CPUs the stream interleaves them.
    seqs.sort_unstable();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>());
    let stats = prog.stats();
    assert_eq!(
        (stats.perf_written, stats.perf_refused),
        (N, 0),
        "the daemon's perf buffers were in the map for every record"
    );
}

#[tokio::test]
async fn every_subscriber_gets_every_record_of_both_kinds() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let mut prog = EventsProgram::load();
    prog.configure(8, false);
    // By pin, by id and from a second connection: three subscribers of one ring.
    let pin = prog.pin("ev_ring", &t.fs.path().join("prog"));
    let mut other = t.daemon.client().await;
    let mut a = read_events(&mut t.client, by_pin(pin.to_string_lossy()), Format::Raw).await;
    let mut b = read_events(&mut other, by_id(prog.ring_id()), Format::Raw).await;
    let mut c = read_events(&mut other, by_id(prog.ring_id()), Format::Raw).await;
    let mut p = read_events(&mut t.client, by_id(prog.perf_id()), Format::Raw).await;
    prog.send(0..100);
    let want = 800;
    for (name, s) in [("a", &mut a), ("b", &mut b), ("c", &mut c)] {
        let got = receive(s, want, WAIT).await;
        assert_eq!((got.records.len() as u64, got.lost), (want, 0), "{name}");
        let order: Vec<(u64, u32)> = got
            .records
            .iter()
            .map(|(_, r)| {
                let e = Event::parse(r);
                (e.seq, e.index)
            })
            .collect();
        let expect: Vec<(u64, u32)> = (0..100).flat_map(|s| (0..8).map(move |i| (s, i))).collect();
        assert_eq!(order, expect, "{name}: ring order is write order");
    }
    let got = receive(&mut p, want, WAIT).await;
    assert_eq!((got.records.len() as u64, got.lost), (want, 0), "perf");
    let stats = prog.stats();
    assert_eq!(stats.ring_written, want);
    assert_eq!(stats.perf_written, want);
}

#[tokio::test]
async fn records_come_in_hex_and_refused_formats_say_why() {
    let Some(mut t) = TestEnv::start().await else {
        return;
    };
    let prog = EventsProgram::load();
    let mut hex_stream = read_events(&mut t.client, by_id(prog.ring_id()), Format::Hex).await;
    let mut num_stream = read_events(&mut t.client, by_id(prog.ring_id()), Format::Number).await;
    prog.send([7]);
    let e = hex_stream.message().await.unwrap().expect("an event");
    let mut want = 7u64.to_ne_bytes().to_vec();
    want.extend_from_slice(&32u32.to_ne_bytes());
    want.extend_from_slice(&0u32.to_ne_bytes());
    assert_eq!(hex_of(&e.data), bpfmap_proto::hex::format(&want));
    // A 16-byte record is no number: the stream ends with a reason.
    let r = num_stream.message().await;
    assert_status(r, Code::InvalidArgument, &["FORMAT_NUMBER", "16 bytes"]);

    let read = |map, format: Format, record_type: &str| ReadEventsRequest {
        map,
        format: format as i32,
        record_type: record_type.into(),
    };
    let r = t
        .client
        .read_events(read(by_id(prog.ring_id()), Format::Json, ""))
        .await;
    assert_status(r, Code::InvalidArgument, &["record_type"]);
    let info = create(
        &mut t.client,
        create_req(MapType::Hash, &names::unique("notring"), 4, 4, 8),
    )
    .await;
    let r = t
        .client
        .read_events(read(by_id(info.id), Format::Raw, ""))
        .await;
    assert_status(
        r,
        Code::InvalidArgument,
        &["ringbuf", "perf_event_array", "hash"],
    );
    let r = t
        .client
        .read_events(read(by_name(names::unique("nosuchmap")), Format::Raw, ""))
        .await;
    assert_status(r, Code::NotFound, &[]);
}
