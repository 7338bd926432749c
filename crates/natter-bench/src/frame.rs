//! A lean XMPP stream framer: finds where each top-level element ends and
//! reads a few attributes, without validating or building anything. The
//! server under test is trusted to send well-formed XML; this only has to be
//! cheap enough that the generator is never the bottleneck.

use memchr::{memchr, memmem};

/// What starts the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// Not enough bytes for the next item.
    Incomplete,
    /// Whitespace, text or an XML declaration: drop this many bytes.
    Skip(usize),
    /// The `<stream:stream …>` header, this long.
    Open(usize),
    /// The `</stream:stream>` end tag, this long.
    Close(usize),
    /// One complete top-level element, this long.
    Element(usize),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memmem::find(hay, needle)
}

/// The end (index after `>`) of the tag starting at `b[0] == '<'`, honouring quotes.
fn tag_end(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'>' => return Some(i + 1),
            q @ (b'\'' | b'"') => i += memchr(q, &b[i + 1..])? + 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The qualified name of the tag starting at `b[0] == '<'` (or `</`).
pub fn tag_name(b: &[u8]) -> &[u8] {
    let s = if b.get(1) == Some(&b'/') { 2 } else { 1 };
    let end = b[s..]
        .iter()
        .position(|&c| matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>'))
        .map_or(b.len(), |p| p + s);
    &b[s.min(end)..end]
}

/// The local name (prefix stripped) of the element starting `b`.
pub fn local_name(b: &[u8]) -> &[u8] {
    let q = tag_name(b);
    match memchr(b':', q) {
        Some(p) => &q[p + 1..],
        None => q,
    }
}

/// Scans the start of `b` for the next stream item.
pub fn scan(b: &[u8]) -> Scan {
    let text = memchr(b'<', b).unwrap_or(b.len());
    if text > 0 {
        return Scan::Skip(text);
    }
    if b.len() < 2 {
        return Scan::Incomplete;
    }
    match b[1] {
        b'?' => return find(b, b"?>").map_or(Scan::Incomplete, |e| Scan::Skip(e + 2)),
        b'/' => return tag_end(b).map_or(Scan::Incomplete, Scan::Close),
        _ => {}
    }
    let mut depth = 0usize;
    let mut i = 0;
    loop {
        // b[i] == '<'
        let rest = &b[i..];
        if rest.len() < 2 {
            return Scan::Incomplete;
        }
        match rest[1] {
            b'/' => {
                let Some(e) = tag_end(rest) else {
                    return Scan::Incomplete;
                };
                i += e;
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Scan::Element(i);
                }
            }
            b'!' => {
                let (open, close): (&[u8], &[u8]) = if rest.starts_with(b"<![CDATA[") {
                    (b"<![CDATA[", b"]]>")
                } else {
                    (b"<!--", b"-->")
                };
                let Some(e) = find(&rest[open.len().min(rest.len())..], close) else {
                    return Scan::Incomplete;
                };
                i += open.len() + e + close.len();
            }
            b'?' => {
                let Some(e) = find(rest, b"?>") else {
                    return Scan::Incomplete;
                };
                i += e + 2;
            }
            _ => {
                let Some(e) = tag_end(rest) else {
                    return Scan::Incomplete;
                };
                let self_closing = rest[e - 2] == b'/';
                if depth == 0 && !self_closing && local_name(rest) == b"stream" {
                    return Scan::Open(e);
                }
                i += e;
                if self_closing {
                    if depth == 0 {
                        return Scan::Element(i);
                    }
                } else {
                    depth += 1;
                }
            }
        }
        match memchr(b'<', &b[i..]) {
            Some(p) => i += p,
            None => return Scan::Incomplete,
        }
    }
}

/// The raw (still escaped) value of attribute `name` on the start tag of `el`.
pub fn attr<'a>(el: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    let end = tag_end(el)?;
    let tag = &el[..end];
    let mut i = 1 + tag_name(tag).len();
    loop {
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= tag.len() || matches!(tag[i], b'/' | b'>') {
            return None;
        }
        let eq = i + memchr(b'=', &tag[i..])?;
        let key = tag[i..eq].trim_ascii();
        let mut v = eq + 1;
        while v < tag.len() && tag[v].is_ascii_whitespace() {
            v += 1;
        }
        let q = *tag.get(v)?;
        let close = v + 1 + memchr(q, &tag[v + 1..])?;
        if key == name {
            return Some(&tag[v + 1..close]);
        }
        i = close + 1;
    }
}

/// The text of the first `<body>` child (raw, still escaped).
pub fn body(el: &[u8]) -> Option<&[u8]> {
    let s = find(el, b"<body")?;
    let gt = s + memchr(b'>', &el[s..])?;
    if el[gt - 1] == b'/' {
        return Some(&[]);
    }
    let e = gt + 1 + find(&el[gt + 1..], b"</body>")?;
    Some(&el[gt + 1..e])
}

/// The text between `<tag>` and `</tag>` (first occurrence), e.g. the bound JID.
pub fn inner_text<'a>(el: &'a [u8], open: &[u8], close: &[u8]) -> Option<&'a [u8]> {
    let s = find(el, open)? + open.len();
    let e = s + find(&el[s..], close)?;
    Some(&el[s..e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_a_stream() {
        let s = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' id='x>y'> <stream:features><bind xmlns='b'/></stream:features><r xmlns='urn:xmpp:sm:3'/><message a=\"<>\"><body>1 2</body><!-- c --></message></stream:stream>";
        let mut b: &[u8] = s;
        let mut out = vec![];
        loop {
            match scan(b) {
                Scan::Incomplete => break,
                Scan::Skip(n) => b = &b[n..],
                Scan::Open(n) => {
                    out.push(("open", &b[..n]));
                    b = &b[n..]
                }
                Scan::Close(n) => {
                    out.push(("close", &b[..n]));
                    b = &b[n..]
                }
                Scan::Element(n) => {
                    out.push(("el", &b[..n]));
                    b = &b[n..]
                }
            }
        }
        assert!(b.is_empty());
        let names: Vec<_> = out
            .iter()
            .map(|(k, e)| (*k, String::from_utf8_lossy(local_name(e)).into_owned()))
            .collect();
        assert_eq!(
            names,
            [
                ("open", "stream".into()),
                ("el", "features".into()),
                ("el", "r".into()),
                ("el", "message".into()),
                ("close", "stream".into())
            ]
        );
        assert_eq!(body(out[3].1), Some(&b"1 2"[..]));
        assert_eq!(attr(out[3].1, b"a"), Some(&b"<>"[..]));
        assert_eq!(attr(out[0].1, b"id"), Some(&b"x>y"[..]));
    }

    #[test]
    fn incomplete_until_the_end_tag() {
        let full = b"<message from='a@b/c' id='7'><body>hi</body></message>";
        for cut in 0..full.len() {
            assert_eq!(scan(&full[..cut]), Scan::Incomplete, "cut at {cut}");
        }
        assert_eq!(scan(full), Scan::Element(full.len()));
        assert_eq!(attr(full, b"from"), Some(&b"a@b/c"[..]));
        assert_eq!(attr(full, b"id"), Some(&b"7"[..]));
        assert_eq!(attr(full, b"to"), None);
    }

    #[test]
    fn helpers() {
        let iq = b"<iq type='result' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>u@d/r</jid></bind></iq>";
        assert_eq!(inner_text(iq, b"<jid>", b"</jid>"), Some(&b"u@d/r"[..]));
        assert_eq!(body(b"<message><body/></message>"), Some(&b""[..]));
        assert_eq!(body(b"<message/>"), None);
        assert_eq!(local_name(b"<sm:a h='3'/>"), b"a");
        assert_eq!(
            attr(b"<a xmlns='urn:xmpp:sm:3' h = \"3\"/>", b"h"),
            Some(&b"3"[..])
        );
    }
}
