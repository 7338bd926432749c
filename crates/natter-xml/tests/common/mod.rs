//! Shared helpers: run a parser over input split in various ways.
#![allow(dead_code)]

use natter_xml::{Event, Limits, StreamParser, XmlError};

pub const HEADER: &[u8] =
    b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// Tiny deterministic PRNG (xorshift64*).
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Random chunk sizes covering `len` bytes.
pub fn random_chunks(len: usize, seed: u64) -> Vec<usize> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = 1 + rng.below(left.min(40));
        out.push(n);
        left -= n;
    }
    out
}

/// Feed `input` in chunks of the given sizes, draining events after each.
pub fn run_chunks(
    input: &[u8],
    limits: Limits,
    chunks: &[usize],
) -> (Vec<Event>, Option<XmlError>) {
    let mut p = StreamParser::new(limits);
    let mut events = Vec::new();
    let mut at = 0;
    for &n in chunks {
        p.feed(&input[at..at + n]);
        at += n;
        loop {
            match p.next_event() {
                Ok(Some(e)) => events.push(e),
                Ok(None) => break,
                Err(e) => {
                    // dead: keeps failing the same way
                    assert_eq!(p.next_event().unwrap_err(), e);
                    p.feed(b"<more/>");
                    assert_eq!(p.next_event().unwrap_err(), e);
                    return (events, Some(e));
                }
            }
        }
    }
    assert_eq!(at, input.len());
    (events, None)
}

/// Run `input` whole, byte by byte and at random split points; assert all
/// give identical results and return them.
pub fn run_all_ways(input: &[u8], limits: Limits) -> (Vec<Event>, Option<XmlError>) {
    let whole = run_chunks(input, limits, &[input.len()]);
    let bytes = run_chunks(input, limits, &vec![1; input.len()]);
    assert_eq!(
        whole,
        bytes,
        "whole vs byte-by-byte for {:?}",
        String::from_utf8_lossy(input)
    );
    for seed in 1..=6 {
        let r = run_chunks(input, limits, &random_chunks(input.len(), seed));
        assert_eq!(
            whole,
            r,
            "whole vs random split (seed {seed}) for {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

/// Header + `body`, all ways, default limits.
pub fn run_body(body: &[u8]) -> (Vec<Event>, Option<XmlError>) {
    let mut input = HEADER.to_vec();
    input.extend_from_slice(body);
    run_all_ways(&input, Limits::default())
}

/// Assert that header + `body` fails with `condition`.
pub fn expect_condition(body: &[u8], condition: &str) {
    let (_, err) = run_body(body);
    match err {
        Some(e) => assert_eq!(
            e.condition(),
            condition,
            "{e} for {:?}",
            String::from_utf8_lossy(body)
        ),
        None => panic!(
            "expected {condition} for {:?}",
            String::from_utf8_lossy(body)
        ),
    }
}

/// Assert that header + `body` parses without error; return the stanzas.
pub fn expect_ok(body: &[u8]) -> Vec<natter_xml::Stanza> {
    let (events, err) = run_body(body);
    assert!(
        err.is_none(),
        "{:?} for {:?}",
        err,
        String::from_utf8_lossy(body)
    );
    events
        .into_iter()
        .filter_map(|e| match e {
            Event::Stanza(s) => Some(s),
            _ => None,
        })
        .collect()
}
