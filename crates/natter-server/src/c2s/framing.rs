//! RFC 7395 framing, with no I/O: how XMPP elements map onto WebSocket
//! text messages.
//!
//! Client to server, each message holds one complete element. `<open/>`
//! (in the framing namespace) opens a stream and `<close/>` closes it; they
//! are turned into the stream header and end tag the session's
//! `StreamParser` expects, so stream features, SASL, bind and stream
//! management run the same code as over TCP. Every other element is fed
//! to the parser as it came.
//!
//! Server to client, what the session writes as one buffer is cut into its
//! top-level elements, one message each; a stanza without a namespace
//! declaration gets `xmlns='jabber:client'` and a `stream:` element gets
//! its prefix declared, since no stream header declares them here.

use natter_xml::{Stanza, XmlError};

/// The RFC 7395 framing namespace.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// What one client message is.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// `<open/>`: the stream header to feed the parser instead.
    Open(Vec<u8>),
    /// `<close/>`: the stream end tag to feed instead.
    Close,
    /// Any other element: fed as it is.
    Element,
}

/// A client message that breaks RFC 7395: (stream error condition, text).
pub type FramingError = (&'static str, String);

/// Classifies one client message (already known to be UTF-8).
pub fn classify(msg: &[u8]) -> Result<Incoming, FramingError> {
    let body = trim_ws(msg);
    match elements(body) {
        Ok(spans) if spans.len() == 1 && spans[0] == (0, body.len()) => {}
        _ => return Err((
            "not-well-formed",
            "each WebSocket message must hold exactly one complete XML element (RFC 7395 §3.3.3)"
                .into(),
        )),
    }
    let name = start_tag_name(body);
    if name != b"open" && name != b"close" {
        if name.starts_with(b"stream:") {
            return Err((
                "invalid-namespace",
                "over WebSocket a stream opens with <open xmlns='urn:ietf:params:xml:ns:xmpp-framing'/> (RFC 7395)".into(),
            ));
        }
        return Ok(Incoming::Element);
    }
    let el = Stanza::parse(body, "").map_err(|e: XmlError| (e.condition(), e.to_string()))?;
    if el.ns() != NS_FRAMING {
        return Err((
            "invalid-namespace",
            format!("<{}/> must be in the {NS_FRAMING} namespace", el.name()),
        ));
    }
    if el.name() == "close" {
        return Ok(Incoming::Close);
    }
    let mut h =
        b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
            .to_vec();
    for (attr, out) in [
        ("to", "to"),
        ("from", "from"),
        ("version", "version"),
        ("xml:lang", "xml:lang"),
    ] {
        if let Some(v) = el.attr(attr) {
            h.push(b' ');
            h.extend_from_slice(out.as_bytes());
            h.extend_from_slice(b"='");
            natter_xml::escape_attr(&v, &mut h);
            h.push(b'\'');
        }
    }
    h.push(b'>');
    Ok(Incoming::Open(h))
}

fn trim_ws(b: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let start = b.iter().position(|c| !is_ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// The qualified name of the start tag at the beginning of `el`.
fn start_tag_name(el: &[u8]) -> &[u8] {
    let rest = el.get(1..).unwrap_or_default();
    let end = rest
        .iter()
        .position(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// `elements` found an element left open or a tag unterminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbalanced;

/// The byte spans `(start, end)` of the top-level elements in `data`, which
/// holds complete, well-formed elements (our own output, or a client's
/// message still to be validated by the parser). Text between elements is
/// skipped. Err when an element is left open or a tag unterminated.
pub fn elements(data: &[u8]) -> Result<Vec<(usize, usize)>, Unbalanced> {
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let mut i = 0;
    while let Some(p) = memchr::memchr(b'<', &data[i..]) {
        let lt = i + p;
        match data.get(lt + 1) {
            Some(b'/') => {
                let gt = lt + memchr::memchr(b'>', &data[lt..]).ok_or(Unbalanced)?;
                depth = depth.checked_sub(1).ok_or(Unbalanced)?;
                i = gt + 1;
                if depth == 0 {
                    spans.push((start, i));
                }
            }
            Some(b'!') => {
                // CDATA section (comments and DTDs never get this far).
                let end = find(&data[lt..], b"]]>").ok_or(Unbalanced)?;
                i = lt + end + 3;
            }
            Some(b'?') => {
                let end = find(&data[lt..], b"?>").ok_or(Unbalanced)?;
                i = lt + end + 2;
            }
            Some(_) => {
                let gt = tag_end(data, lt + 1).ok_or(Unbalanced)?;
                if depth == 0 {
                    start = lt;
                }
                i = gt + 1;
                if data[gt - 1] == b'/' {
                    if depth == 0 {
                        spans.push((start, i));
                    }
                } else {
                    depth += 1;
                }
            }
            None => return Err(Unbalanced),
        }
    }
    if depth != 0 {
        return Err(Unbalanced);
    }
    Ok(spans)
}

/// The `>` ending the start tag whose name begins at `from`, skipping quoted
/// attribute values (which may hold `>`).
fn tag_end(data: &[u8], from: usize) -> Option<usize> {
    let mut quote = 0u8;
    for (k, &c) in data[from..].iter().enumerate() {
        match c {
            b'\'' | b'"' if quote == 0 => quote = c,
            c if c == quote => quote = 0,
            b'>' if quote == 0 => return Some(from + k),
            _ => {}
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The attribute names of the start tag at the beginning of `el`.
fn has_attr(el: &[u8], wanted: &[u8]) -> bool {
    let name_len = start_tag_name(el).len();
    let Some(gt) = tag_end(el, 1) else {
        return false;
    };
    let tag = &el[1 + name_len..gt];
    let mut k = 0;
    while k < tag.len() {
        while k < tag.len() && matches!(tag[k], b' ' | b'\t' | b'\r' | b'\n' | b'/') {
            k += 1;
        }
        let ns = k;
        while k < tag.len() && !matches!(tag[k], b'=' | b' ' | b'\t' | b'\r' | b'\n') {
            k += 1;
        }
        if &tag[ns..k] == wanted {
            return true;
        }
        // Skip to the value and past it.
        let Some(q) = tag[k..].iter().position(|&c| c == b'\'' || c == b'"') else {
            return false;
        };
        let qc = tag[k + q];
        let vs = k + q + 1;
        let Some(ve) = tag[vs..].iter().position(|&c| c == qc) else {
            return false;
        };
        k = vs + ve + 1;
    }
    false
}

/// The namespace declaration a top-level element needs when it travels on
/// its own, if it lacks it.
pub fn missing_declaration(el: &[u8]) -> Option<&'static [u8]> {
    let name = start_tag_name(el);
    if name.starts_with(b"stream:") {
        (!has_attr(el, b"xmlns:stream"))
            .then_some(b" xmlns:stream='http://etherx.jabber.org/streams'".as_slice())
    } else if matches!(name, b"message" | b"presence" | b"iq") {
        (!has_attr(el, b"xmlns")).then_some(b" xmlns='jabber:client'".as_slice())
    } else {
        None
    }
}

/// Appends each top-level element of `data` to `out` as one WebSocket text
/// frame, with the namespace declaration it needs added.
pub fn frame_elements(data: &[u8], out: &mut Vec<u8>) {
    let spans = match elements(data) {
        Ok(s) => s,
        Err(Unbalanced) => {
            // Never happens with our own output; still send it whole.
            tracing::warn!("unsplittable output sent as one WebSocket message");
            vec![(0, data.len())]
        }
    };
    let mut buf = Vec::new();
    for (s, e) in spans {
        let el = &data[s..e];
        match missing_declaration(el) {
            None => super::ws_codec::encode_frame(super::ws_codec::OP_TEXT, el, out),
            Some(decl) => {
                let at = 1 + start_tag_name(el).len();
                buf.clear();
                buf.extend_from_slice(&el[..at]);
                buf.extend_from_slice(decl);
                buf.extend_from_slice(&el[at..]);
                super::ws_codec::encode_frame(super::ws_codec::OP_TEXT, &buf, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_and_close_become_header_and_end_tag() {
        let open = b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0' xml:lang='en'/>";
        let Ok(Incoming::Open(h)) = classify(open) else {
            panic!()
        };
        assert_eq!(
            String::from_utf8(h).unwrap(),
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>"
        );
        assert_eq!(
            classify(b" <close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>\n"),
            Ok(Incoming::Close)
        );
        assert_eq!(
            classify(b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
            Ok(Incoming::Element)
        );
    }

    #[test]
    fn refused_messages_name_the_problem() {
        let two = classify(b"<presence/><presence/>").unwrap_err();
        assert_eq!(two.0, "not-well-formed");
        assert!(two.1.contains("exactly one"), "{}", two.1);
        let half = classify(b"<message><body>hi</body>").unwrap_err();
        assert_eq!(half.0, "not-well-formed");
        let tcp_header = classify(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' to='localhost' version='1.0'>").unwrap_err();
        assert_eq!(tcp_header.0, "not-well-formed");
        let tcp_header =
            classify(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>")
                .unwrap_err();
        assert_eq!(tcp_header.0, "invalid-namespace");
        let wrong_ns = classify(b"<open xmlns='jabber:client' to='localhost'/>").unwrap_err();
        assert_eq!(wrong_ns.0, "invalid-namespace");
        assert_eq!(classify(b"hello").unwrap_err().0, "not-well-formed");
    }

    #[test]
    fn splits_output_and_declares_namespaces() {
        let data =
            b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>\
<message from='a@b/c' to='d@e' id=\"x>y\"><body>1 &gt; 0 <![CDATA[<no>]]></body></message>\
<iq xmlns='jabber:client' type='result' id='1'/><r xmlns='urn:xmpp:sm:3'/>";
        let spans = elements(data).unwrap();
        assert_eq!(spans.len(), 4);
        let mut out = Vec::new();
        frame_elements(data, &mut out);
        // Decode our own frames (unmasked) back into messages.
        let mut msgs = Vec::new();
        let mut k = 0;
        while k < out.len() {
            assert_eq!(out[k], 0x81);
            let (len, at) = match out[k + 1] {
                126 => (u16::from_be_bytes([out[k + 2], out[k + 3]]) as usize, k + 4),
                l => (l as usize, k + 2),
            };
            msgs.push(String::from_utf8(out[at..at + len].to_vec()).unwrap());
            k = at + len;
        }
        assert_eq!(
            msgs,
            vec![
                "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
                "<message xmlns='jabber:client' from='a@b/c' to='d@e' id=\"x>y\"><body>1 &gt; 0 <![CDATA[<no>]]></body></message>",
                "<iq xmlns='jabber:client' type='result' id='1'/>",
                "<r xmlns='urn:xmpp:sm:3'/>",
            ]
        );
        // Every message is a standalone element our parser accepts.
        for m in &msgs {
            Stanza::parse(m.as_bytes(), "").unwrap();
        }
    }

    #[test]
    fn attribute_values_do_not_count_as_declarations() {
        assert_eq!(
            missing_declaration(b"<message id=\"xmlns\" to='a'/>"),
            Some(b" xmlns='jabber:client'".as_slice())
        );
        assert_eq!(
            missing_declaration(b"<message xmlns='jabber:client'/>"),
            None
        );
        assert_eq!(missing_declaration(b"<a xmlns='urn:xmpp:sm:3'/>"), None);
    }
}
