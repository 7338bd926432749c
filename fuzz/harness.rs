//! The checks of the `stream_parser` fuzz target, shared with the
//! `natter-xml` test that replays the committed corpus on every CI run.

use natter_xml::{Event, Limits, Stanza, StreamParser, XmlError};

const HEADER: &[u8] =
    b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/// Feed the header, then `pieces`; collect events (stanzas are checked).
fn run(pieces: &[&[u8]]) -> (Vec<Event>, Option<XmlError>) {
    let mut p = StreamParser::new(Limits {
        max_stanza_bytes: 4096,
        ..Limits::default()
    });
    let mut events = Vec::new();
    p.feed(HEADER);
    for piece in std::iter::once(&[][..]).chain(pieces.iter().copied()) {
        p.feed(piece);
        loop {
            match p.next_event() {
                Ok(Some(e)) => {
                    if let Event::Stanza(s) = &e {
                        check(s);
                    }
                    events.push(e);
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = e.condition();
                    assert_eq!(p.next_event().unwrap_err(), e, "parser must stay dead");
                    return (events, Some(e));
                }
            }
        }
    }
    (events, None)
}

fn check(s: &Stanza) {
    s.element().expect("validated stanza must build a tree");
    let _ = (
        s.to(),
        s.from(),
        s.id(),
        s.stanza_type(),
        s.attr("xml:lang"),
    );
    for c in s.children() {
        let _ = c.attr(s, "by");
    }
    let out = s.rewrite(Some("a@b/c"), None, &[], b"<x/>");
    let r = Stanza::parse(&out, "jabber:client").unwrap_or_else(|e| {
        panic!(
            "rewrite not re-parseable ({e}): {:?} -> {:?}",
            String::from_utf8_lossy(s.bytes()),
            String::from_utf8_lossy(&out)
        )
    });
    assert_eq!(r.from().as_deref(), Some("a@b/c"));
    assert_eq!(r.name(), s.name());
    let all: Vec<usize> = (0..s.children().len()).collect();
    Stanza::parse(&s.rewrite(None, Some("d@e"), &all, b""), "jabber:client")
        .expect("rewrite with removals");
    // the tree serialises to something that parses to the same tree
    let tree = s.element().unwrap();
    let again = Stanza::parse(&tree.to_bytes("jabber:client"), "jabber:client")
        .expect("serialised tree parses");
    assert_eq!(again.element().unwrap(), tree);
}

/// Runs every check on one input.
pub fn one_input(data: &[u8]) {
    let split = if data.is_empty() {
        0
    } else {
        data[0] as usize % (data.len() + 1)
    };
    let two = run(&[&data[..split], &data[split..]]);
    // The result must not depend on how the input is split.
    assert_eq!(run(&[data]), two, "whole vs split");
    if data.len() <= 512 {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_eq!(run(&bytes), two, "byte by byte vs split");
    }
}
