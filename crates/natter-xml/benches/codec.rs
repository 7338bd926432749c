//! Criterion micro-benchmarks of the routing-path codec: parsing one chat
//! message from a stream, stamping it, and parsing it byte by byte.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use natter_xml::{Event, Limits, Stanza, StreamParser};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const MESSAGE: &[u8] = b"<message to='bob@localhost' type='chat' id='m1'>\
    <body>hello there, how are you?</body><request xmlns='urn:xmpp:receipts'/></message>";
const STANZA_ID: &[u8] = b"<stanza-id xmlns='urn:xmpp:sid:0' id='x' by='bob@localhost'/>";

/// A parser that has consumed the stream header.
fn open_parser() -> StreamParser {
    let mut p = StreamParser::new(Limits::default());
    p.feed(HEADER);
    match p.next_event() {
        Ok(Some(Event::StreamOpen(_))) => p,
        other => panic!("expected stream header, got {other:?}"),
    }
}

fn expect_stanza(ev: Result<Option<Event>, natter_xml::XmlError>) -> Stanza {
    match ev {
        Ok(Some(Event::Stanza(s))) => s,
        other => panic!("expected stanza, got {other:?}"),
    }
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(MESSAGE.len() as u64));

    // (a) One message fed whole into an open stream, then pulled.
    g.bench_function("parse_message", |b| {
        let mut p = open_parser();
        b.iter(|| {
            p.feed(black_box(MESSAGE));
            black_box(expect_stanza(p.next_event()))
        });
    });

    // (b) Stamp `from` and append a stanza-id.
    let stanza = expect_stanza({
        let mut p = open_parser();
        p.feed(MESSAGE);
        p.next_event()
    });
    g.bench_function("rewrite_message", |b| {
        b.iter(|| {
            black_box(&stanza).rewrite(
                black_box(Some("alice@localhost/phone")),
                None,
                &[],
                black_box(STANZA_ID),
            )
        });
    });

    // (c) The same message fed one byte at a time, polling after each byte.
    g.bench_function("parse_message_bytewise", |b| {
        let mut p = open_parser();
        b.iter(|| {
            let (last, init) = MESSAGE.split_last().expect("non-empty");
            for byte in init {
                p.feed(std::slice::from_ref(black_box(byte)));
                assert!(matches!(p.next_event(), Ok(None)));
            }
            p.feed(std::slice::from_ref(last));
            black_box(expect_stanza(p.next_event()))
        });
    });

    g.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
