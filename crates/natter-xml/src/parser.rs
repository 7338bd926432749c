//! [`StreamParser`]: the push parser for one XMPP stream.

use std::sync::{Arc, OnceLock};

use crate::error::XmlError;
use crate::escape::unescape_attr;
use crate::scanner::{ScanLimits, Scanner, Scope};
use crate::stanza::Stanza;
use crate::tokenizer::{
    check_attrs, check_ns_decl, find_seq, find_tag_end, is_ws, nwf, parse_end_tag, parse_start_tag,
    validate_chars,
};
use crate::{NS_CLIENT, NS_STREAMS};
use std::borrow::Cow;

/// Resource limits enforced by [`StreamParser`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest top-level element, in bytes from its `<` (default 256 KiB).
    pub max_stanza_bytes: usize,
    /// Deepest element nesting inside a stanza; the top element is depth 1
    /// (default 64).
    pub max_depth: usize,
    /// Most attributes (including namespace declarations) on one element
    /// (default 64).
    pub max_attributes: usize,
    /// Largest stream header (and XML declaration), in bytes (default 4096).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stanza_bytes: 262_144,
            max_depth: 64,
            max_attributes: 64,
            max_header_bytes: 4096,
        }
    }
}

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The `<stream:stream …>` start tag.
    StreamOpen(StreamHeader),
    /// One complete top-level element.
    Stanza(Stanza),
    /// The `</stream:stream>` end tag.
    StreamClose,
}

/// The attributes of a stream header (unescaped).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamHeader {
    pub to: Option<String>,
    pub from: Option<String>,
    pub id: Option<String>,
    pub version: Option<String>,
    /// `xml:lang`.
    pub lang: Option<String>,
    /// The default namespace declared on the header (empty if none).
    pub default_ns: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the header: BOM, whitespace, XML declaration.
    Prolog,
    /// Inside the XML declaration.
    Decl,
    /// Inside the stream header start tag.
    Header,
    /// Between stanzas.
    Stream,
    /// Inside a stanza.
    Stanza,
    /// Inside the stream end tag.
    Close,
    /// After the stream end tag.
    Closed,
}

/// Buffer capacity kept once everything fed was consumed. Zero: an idle
/// connection holds no read buffer at all (one allocation per read for a
/// busy one is far cheaper than the read itself).
const BUF_KEEP: usize = 0;

/// Incremental parser for one XMPP stream: [`feed`](Self::feed) bytes,
/// then call [`next_event`](Self::next_event) until it returns `Ok(None)`.
///
/// All state offsets are relative to `pos` (the first unconsumed byte), so
/// the buffer can be compacted at any time.
#[derive(Debug)]
pub struct StreamParser {
    limits: Limits,
    buf: Vec<u8>,
    pos: usize,
    phase: Phase,
    /// Resume offset (relative to `pos`) for the prolog / header / close.
    scan: usize,
    quote: u8,
    bom_checked: bool,
    decl_seen: bool,
    pending_close: bool,
    header_qname: Cow<'static, str>,
    scope: Arc<Scope>,
    scanner: Scanner,
    error: Option<XmlError>,
}

fn empty_scope() -> Arc<Scope> {
    static EMPTY: OnceLock<Arc<Scope>> = OnceLock::new();
    EMPTY.get_or_init(|| Arc::new(Scope::default())).clone()
}

/// The scope of a stream header; the one nearly every client sends
/// (`jabber:client` by default, `stream` bound to the streams namespace)
/// is shared by all parsers instead of allocated for each connection.
fn shared_scope(scope: Scope) -> Arc<Scope> {
    static CLIENT: OnceLock<Arc<Scope>> = OnceLock::new();
    let usual = |s: &Scope| {
        s.bindings.len() == 2
            && s.lookup(b"") == Some(NS_CLIENT)
            && s.lookup(b"stream") == Some(NS_STREAMS)
    };
    if !usual(&scope) {
        return Arc::new(scope);
    }
    CLIENT
        .get_or_init(|| {
            Arc::new(Scope {
                bindings: vec![
                    (String::new(), NS_CLIENT.to_owned()),
                    ("stream".to_owned(), NS_STREAMS.to_owned()),
                ],
            })
        })
        .clone()
}

impl StreamParser {
    /// Frees scratch memory kept between stanzas (for a connection about
    /// to sit idle); a partial stanza in the buffer is kept.
    pub fn trim(&mut self) {
        if self.pos == self.buf.len() && self.buf.capacity() > 0 {
            self.buf = Vec::new();
            self.pos = 0;
        }
        if self.buf.is_empty() {
            self.scanner.release();
        }
    }

    /// A parser expecting a stream header.
    pub fn new(limits: Limits) -> Self {
        StreamParser {
            limits,
            buf: Vec::new(),
            pos: 0,
            phase: Phase::Prolog,
            scan: 0,
            quote: 0,
            bom_checked: false,
            decl_seen: false,
            pending_close: false,
            header_qname: Cow::Borrowed(""),
            scope: empty_scope(),
            scanner: Scanner::new(),
            error: None,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Append received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if self.pos > 0 && self.pos * 2 >= self.buf.len() {
            // Moving at most as many bytes as were consumed keeps this amortised O(1).
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
    }

    /// Unconsumed buffered bytes.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A new stream follows (after STARTTLS or SASL success): forget the
    /// stream header and its namespace context, keep unconsumed bytes.
    /// A parser that has failed stays failed.
    pub fn restart(&mut self) {
        self.phase = Phase::Prolog;
        self.scan = 0;
        self.quote = 0;
        self.bom_checked = false;
        self.decl_seen = false;
        self.pending_close = false;
        self.header_qname = Cow::Borrowed("");
        self.scope = empty_scope();
        self.scanner.reset();
    }

    /// The next event, `Ok(None)` if more data is needed. After an error
    /// the parser is dead and keeps returning that error.
    pub fn next_event(&mut self) -> Result<Option<Event>, XmlError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        let r = self.next_inner();
        if let Err(e) = &r {
            self.error = Some(e.clone());
            self.buf = Vec::new();
            self.pos = 0;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > BUF_KEEP {
                self.buf = Vec::new();
            }
            if self.phase != Phase::Stanza {
                self.scanner.shrink();
            }
        }
        r
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    fn header_need_more(&self) -> Result<Option<Event>, XmlError> {
        if self.rest().len() >= self.limits.max_header_bytes {
            Err(XmlError::PolicyViolation("stream header too large"))
        } else {
            Ok(None)
        }
    }

    fn next_inner(&mut self) -> Result<Option<Event>, XmlError> {
        loop {
            match self.phase {
                Phase::Prolog => {
                    if !self.bom_checked {
                        let d = self.rest();
                        let Some(&c0) = d.first() else {
                            return Ok(None);
                        };
                        match c0 {
                            0xEF => {
                                const BOM: &[u8] = b"\xEF\xBB\xBF";
                                let n = d.len().min(3);
                                if d[..n] != BOM[..n] {
                                    return Err(nwf("unexpected data before the stream header"));
                                }
                                if n < 3 {
                                    return Ok(None);
                                }
                                self.pos += 3;
                            }
                            0x00 | 0xFE | 0xFF => {
                                return Err(XmlError::UnsupportedEncoding(
                                    "only UTF-8 is supported",
                                ));
                            }
                            _ => {}
                        }
                        self.bom_checked = true;
                    }
                    let d = self.rest();
                    let n = d.iter().position(|&c| !is_ws(c)).unwrap_or(d.len());
                    self.pos += n;
                    let d = self.rest();
                    let Some(&c0) = d.first() else {
                        return Ok(None);
                    };
                    if c0 != b'<' {
                        return Err(nwf("unexpected data before the stream header"));
                    }
                    let Some(&c1) = d.get(1) else { return Ok(None) };
                    match c1 {
                        b'?' => {
                            const DECL: &[u8] = b"<?xml";
                            let n = d.len().min(DECL.len());
                            if d[..n] != DECL[..n]
                                || d.get(5).is_some_and(|&c| !is_ws(c))
                                || self.decl_seen
                            {
                                return Err(XmlError::RestrictedXml("processing instruction"));
                            }
                            if d.len() < 6 {
                                return Ok(None);
                            }
                            self.phase = Phase::Decl;
                            self.scan = 5;
                        }
                        b'!' => return Err(XmlError::RestrictedXml("DTD or comment")),
                        b'/' => return Err(nwf("end tag before the stream header")),
                        _ => {
                            self.phase = Phase::Header;
                            self.scan = 1;
                            self.quote = 0;
                        }
                    }
                }
                Phase::Decl => {
                    let max = self.limits.max_header_bytes;
                    let d = self.rest();
                    let w = &d[..d.len().min(max)];
                    match find_seq(w, self.scan, b"?>") {
                        Some(e) => {
                            parse_decl(&w[..e + 2])?;
                            self.pos += e + 2;
                            self.decl_seen = true;
                            self.phase = Phase::Prolog;
                        }
                        None => {
                            self.scan = self.scan.max(w.len().saturating_sub(1));
                            return self.header_need_more();
                        }
                    }
                }
                Phase::Header => {
                    let max = self.limits.max_header_bytes;
                    let d = &self.buf[self.pos..];
                    let w = &d[..d.len().min(max)];
                    match find_tag_end(w, self.scan, &mut self.quote)? {
                        Some(e) => {
                            let header = self.header(e)?;
                            self.pos += e + 1;
                            self.phase = Phase::Stream;
                            return Ok(Some(Event::StreamOpen(header)));
                        }
                        None => {
                            self.scan = w.len();
                            return self.header_need_more();
                        }
                    }
                }
                Phase::Stream => {
                    if self.pending_close {
                        self.pending_close = false;
                        self.phase = Phase::Closed;
                        return Ok(Some(Event::StreamClose));
                    }
                    let d = self.rest();
                    let n = d.iter().position(|&c| !is_ws(c)).unwrap_or(d.len());
                    self.pos += n;
                    let d = self.rest();
                    let Some(&c0) = d.first() else {
                        return Ok(None);
                    };
                    if c0 != b'<' {
                        return Err(nwf("text at stream level"));
                    }
                    let Some(&c1) = d.get(1) else { return Ok(None) };
                    if c1 == b'/' {
                        self.phase = Phase::Close;
                        self.scan = 2;
                    } else {
                        self.scanner.reset();
                        self.phase = Phase::Stanza;
                    }
                }
                Phase::Stanza => {
                    let lim = ScanLimits {
                        max_bytes: self.limits.max_stanza_bytes,
                        max_depth: self.limits.max_depth,
                        max_attrs: self.limits.max_attributes,
                    };
                    let Some(parts) =
                        self.scanner
                            .step(&self.buf[self.pos..], &lim, &self.scope)?
                    else {
                        return Ok(None);
                    };
                    let bytes = self.buf[self.pos..self.pos + parts.len].to_vec();
                    self.pos += parts.len;
                    self.phase = Phase::Stream;
                    return Ok(Some(Event::Stanza(Stanza::from_parts(
                        bytes,
                        parts,
                        self.scope.clone(),
                    ))));
                }
                Phase::Close => {
                    let max = self.limits.max_header_bytes;
                    let d = self.rest();
                    let w = &d[..d.len().min(max)];
                    match w[self.scan..].iter().position(|&c| c == b'>') {
                        Some(p) => {
                            let e = self.scan + p;
                            validate_chars(&w[..=e])?;
                            let q = parse_end_tag(w, 0, e)?;
                            if w[q] != *self.header_qname.as_bytes() {
                                return Err(nwf("end tag does not match the stream header"));
                            }
                            self.pos += e + 1;
                            self.phase = Phase::Closed;
                            return Ok(Some(Event::StreamClose));
                        }
                        None => {
                            self.scan = w.len();
                            return self.header_need_more();
                        }
                    }
                }
                Phase::Closed => return Ok(None),
            }
        }
    }

    /// Parse the stream header `rest()[..=e]` and install its scope.
    fn header(&mut self, e: usize) -> Result<StreamHeader, XmlError> {
        let d = &self.buf[self.pos..self.pos + e + 1];
        validate_chars(d)?;
        let attrs = &mut self.scanner.attrs;
        let st = parse_start_tag(d, 0, e, attrs, self.limits.max_attributes)?;
        let mut scope = Scope::default();
        for a in attrs.iter() {
            if let Some(p) = a.ns_decl(d) {
                let uri = unescape_attr(&d[a.value.clone()]);
                check_ns_decl(p, &uri)?;
                scope
                    .bindings
                    .push((String::from_utf8_lossy(p).into_owned(), uri.into_owned()));
            }
        }
        check_attrs(d, attrs, |p| scope.lookup(p))?;
        let prefix = st.prefix(d);
        if prefix == b"xmlns" {
            return Err(nwf("element with the xmlns prefix"));
        }
        let ns = scope
            .lookup(prefix)
            .ok_or_else(|| nwf("unbound stream header prefix"))?;
        if ns != NS_STREAMS || &d[st.local()] != b"stream" {
            return Err(XmlError::InvalidNamespace(
                "stream header is not <stream> in the streams namespace",
            ));
        }
        let mut h = StreamHeader {
            default_ns: scope.default_ns().to_owned(),
            ..StreamHeader::default()
        };
        for a in attrs.iter() {
            let slot = match (a.prefix(d), a.local(d)) {
                (None, b"to") => &mut h.to,
                (None, b"from") => &mut h.from,
                (None, b"id") => &mut h.id,
                (None, b"version") => &mut h.version,
                (Some(b"xml"), b"lang") => &mut h.lang,
                _ => continue,
            };
            *slot = Some(unescape_attr(&d[a.value.clone()]).into_owned());
        }
        self.header_qname = match &d[st.qname.clone()] {
            b"stream:stream" => Cow::Borrowed("stream:stream"),
            q => Cow::Owned(String::from_utf8_lossy(q).into_owned()),
        };
        self.pending_close = st.self_closing;
        self.scope = shared_scope(scope);
        Ok(h)
    }
}

/// Validate an XML declaration `<?xml … ?>`.
fn parse_decl(d: &[u8]) -> Result<(), XmlError> {
    validate_chars(d)?;
    let end = d.len() - 2;
    let mut i = 5;
    // 0 = nothing yet, 1 = version, 2 = encoding, 3 = standalone
    let mut last = 0;
    loop {
        let ws = i;
        while i < end && is_ws(d[i]) {
            i += 1;
        }
        if i == end {
            break;
        }
        if i == ws {
            return Err(nwf("malformed XML declaration"));
        }
        let ns = i;
        while i < end && d[i].is_ascii_alphabetic() {
            i += 1;
        }
        let name = &d[ns..i];
        while i < end && is_ws(d[i]) {
            i += 1;
        }
        if i >= end || d[i] != b'=' {
            return Err(nwf("malformed XML declaration"));
        }
        i += 1;
        while i < end && is_ws(d[i]) {
            i += 1;
        }
        let q = d[i];
        if i >= end || (q != b'"' && q != b'\'') {
            return Err(nwf("malformed XML declaration"));
        }
        let vs = i + 1;
        let ve = vs
            + d[vs..end]
                .iter()
                .position(|&c| c == q)
                .ok_or_else(|| nwf("malformed XML declaration"))?;
        let v = &d[vs..ve];
        i = ve + 1;
        match name {
            b"version" if last == 0 => {
                let ok =
                    v.len() > 2 && v.starts_with(b"1.") && v[2..].iter().all(u8::is_ascii_digit);
                if !ok {
                    return Err(nwf("unsupported XML version"));
                }
                last = 1;
            }
            b"encoding" if last == 1 => {
                if !v.eq_ignore_ascii_case(b"UTF-8") {
                    return Err(XmlError::UnsupportedEncoding("only UTF-8 is supported"));
                }
                last = 2;
            }
            b"standalone" if last == 1 || last == 2 => {
                if v != b"yes" && v != b"no" {
                    return Err(nwf("malformed XML declaration"));
                }
                last = 3;
            }
            _ => return Err(nwf("malformed XML declaration")),
        }
    }
    if last == 0 {
        return Err(nwf("XML declaration without version"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stanza_name(ev: Option<Event>) -> String {
        match ev {
            Some(Event::Stanza(st)) => st.name().to_owned(),
            other => panic!("expected a stanza, got {other:?}"),
        }
    }

    #[test]
    fn trim_between_and_inside_stanzas_keeps_parsing() {
        let mut p = StreamParser::new(Limits::default());
        p.feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
        assert!(matches!(p.next_event(), Ok(Some(Event::StreamOpen(_)))));
        // The usual header scope is shared, not allocated per parser.
        let other = {
            let mut q = StreamParser::new(Limits::default());
            q.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>");
            q.next_event().unwrap();
            q.scope.clone()
        };
        assert!(Arc::ptr_eq(&p.scope, &other));
        p.feed(b"<message to='a@b'><body>hi</body></message>");
        assert_eq!(stanza_name(p.next_event().unwrap()), "message");
        p.trim();
        assert_eq!(p.buf.capacity(), 0);
        // Half a stanza survives a trim.
        p.feed(b"<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'");
        assert!(p.next_event().unwrap().is_none());
        p.trim();
        p.feed(b"/></iq><presence/>");
        assert_eq!(stanza_name(p.next_event().unwrap()), "iq");
        assert_eq!(stanza_name(p.next_event().unwrap()), "presence");
        p.trim();
        p.feed(b"<message><body>x</body></message>");
        assert_eq!(stanza_name(p.next_event().unwrap()), "message");
    }

    #[test]
    fn decl() {
        assert!(parse_decl(b"<?xml version='1.0'?>").is_ok());
        assert!(parse_decl(b"<?xml version=\"1.0\" encoding='utf-8' standalone='yes' ?>").is_ok());
        assert_eq!(
            parse_decl(b"<?xml version='1.0' encoding='UTF-16'?>")
                .unwrap_err()
                .condition(),
            "unsupported-encoding"
        );
        assert_eq!(
            parse_decl(b"<?xml encoding='UTF-8'?>")
                .unwrap_err()
                .condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_decl(b"<?xml version='2.0'?>")
                .unwrap_err()
                .condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_decl(b"<?xml version='1.0'encoding='UTF-8'?>")
                .unwrap_err()
                .condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_decl(b"<?xml version='1.0' foo='x'?>")
                .unwrap_err()
                .condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_decl(b"<?xml version='1.0?>").unwrap_err().condition(),
            "not-well-formed"
        );
    }

    #[test]
    fn releases_buffer_when_idle() {
        let mut p = StreamParser::new(Limits::default());
        p.feed(b"<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>");
        p.next_event().unwrap();
        let big = format!("<m>{}</m>", "x".repeat(100_000));
        p.feed(&big.as_bytes()[..50_000]);
        assert_eq!(p.next_event(), Ok(None));
        assert!(p.buf.capacity() >= 50_000);
        p.feed(&big.as_bytes()[50_000..]);
        assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(_)))));
        assert_eq!(p.buffered(), 0);
        assert_eq!(p.buf.capacity(), 0);
        // partially consumed buffers are compacted on feed
        p.feed(b"<a/><b");
        assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(_)))));
        assert_eq!(p.next_event(), Ok(None));
        p.feed(b"/>");
        assert_eq!(p.pos, 0);
        assert_eq!(p.buf, b"<b/>");
        assert!(matches!(p.next_event(), Ok(Some(Event::Stanza(_)))));
    }

    #[test]
    fn idle_size() {
        let p = StreamParser::new(Limits::default());
        assert!(
            std::mem::size_of_val(&p) < 640,
            "{}",
            std::mem::size_of_val(&p)
        );
    }
}
