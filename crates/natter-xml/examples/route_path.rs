//! The server's routing path without store or sockets, for instruction
//! counting under callgrind (`bench/callgrind.sh`): parse N chat messages
//! from one buffer, stamp `from` and a stanza-id on each, and serialise
//! them into one output buffer.
//!
//! Usage: `route_path [N]` (default 10000). Prints a checksum so the work
//! cannot be optimised away.

use natter_xml::{Event, Limits, StreamParser};

const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const MESSAGE: &[u8] = b"<message to='bob@localhost' type='chat' id='m1'>\
    <body>hello there, how are you?</body><request xmlns='urn:xmpp:receipts'/></message>";
const STANZA_ID: &[u8] = b"<stanza-id xmlns='urn:xmpp:sid:0' id='x' by='bob@localhost'/>";

fn main() {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse().expect("N must be a non-negative integer"),
        None => 10_000,
    };

    // Building the input is linear in N too, but only a memcpy per message.
    let mut input = Vec::with_capacity(HEADER.len() + n * MESSAGE.len());
    input.extend_from_slice(HEADER);
    for _ in 0..n {
        input.extend_from_slice(MESSAGE);
    }

    let mut p = StreamParser::new(Limits::default());
    p.feed(&input);
    drop(input);

    let mut out: Vec<u8> = Vec::new();
    let mut stanzas = 0usize;
    loop {
        match p.next_event() {
            Ok(Some(Event::StreamOpen(_))) => {}
            Ok(Some(Event::Stanza(s))) => {
                let stamped = s.rewrite(Some("alice@localhost/phone"), None, &[], STANZA_ID);
                out.extend_from_slice(&stamped);
                stanzas += 1;
            }
            Ok(Some(Event::StreamClose)) | Ok(None) => break,
            Err(e) => panic!("parse error: {e}"),
        }
    }
    assert_eq!(stanzas, n);

    // A cheap checksum (a few instructions per 8 bytes) so that it adds
    // little to the per-message instruction count.
    let mut h: u64 = 0;
    for c in out.chunks(8) {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        h = h.rotate_left(5) ^ u64::from_le_bytes(w);
    }
    println!("stanzas={stanzas} bytes={} checksum={h:016x}", out.len());
}
