//! The resumable stanza scanner: validates one top-level element as its
//! bytes arrive and records the envelope (top element, direct children)
//! as spans, without building a tree.
//!
//! All offsets are relative to the first byte of the stanza (its `<`). The
//! caller passes the same growing slice on every call; scanning resumes
//! where it stopped, so every byte is looked at a bounded number of times.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::XmlError;
use crate::stanza::Child;
use crate::tokenizer::{
    check_attrs, check_ns_decl, check_text, find_by, find_seq, find_tag_end, nwf, parse_end_tag,
    parse_start_tag, validate_chars, RawAttr,
};
use crate::{NS_CLIENT, NS_SERVER, NS_STREAMS, NS_XML};

/// Namespace bindings inherited from outside the stanza (the stream header,
/// or the default namespace given to [`crate::Stanza::parse`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// `(prefix, uri)`; the empty prefix is the default namespace.
    pub bindings: Vec<(String, String)>,
}

impl Scope {
    pub fn lookup(&self, prefix: &[u8]) -> Option<&str> {
        if prefix == b"xml" {
            return Some(NS_XML);
        }
        match self
            .bindings
            .iter()
            .rev()
            .find(|(p, _)| p.as_bytes() == prefix)
        {
            Some((_, uri)) => Some(uri),
            None if prefix.is_empty() => Some(""),
            None => None,
        }
    }
    pub fn default_ns(&self) -> &str {
        self.lookup(b"").unwrap_or("")
    }
}

/// Avoid allocating for the namespaces nearly every stanza has.
pub(crate) fn intern(ns: Cow<'_, str>) -> Cow<'static, str> {
    match &*ns {
        NS_CLIENT => Cow::Borrowed(NS_CLIENT),
        NS_SERVER => Cow::Borrowed(NS_SERVER),
        NS_STREAMS => Cow::Borrowed(NS_STREAMS),
        "" => Cow::Borrowed(""),
        _ => Cow::Owned(ns.into_owned()),
    }
}

pub(crate) const FROM: usize = 0;
pub(crate) const TO: usize = 1;
pub(crate) const ID: usize = 2;
pub(crate) const TYPE: usize = 3;

/// What the scanner learnt about the top element.
#[derive(Debug, Default, Clone)]
pub(crate) struct TopInfo {
    pub name: Range<usize>,
    pub qname: Range<usize>,
    pub ns: Cow<'static, str>,
    pub start_tag_end: usize,
    pub self_closing: bool,
    /// Value spans of the unprefixed `from`, `to`, `id`, `type` attributes.
    pub known: [Option<Range<usize>>; 4],
}

/// A complete stanza found by the scanner.
pub(crate) struct Parts {
    pub len: usize,
    pub top: TopInfo,
    /// Offset of the end tag's `<` (== `top.start_tag_end` if self-closing).
    pub content_end: usize,
    pub children: Vec<Child>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// At the start of a token (`cur`).
    Start,
    StartTag,
    EndTag,
    Text,
    CData,
}

#[derive(Debug)]
struct Open {
    qname: Range<usize>,
    bindings_len: usize,
}

#[derive(Debug)]
struct Binding {
    /// Empty range = default namespace.
    prefix: Range<usize>,
    value: Range<usize>,
}

pub(crate) struct ScanLimits {
    pub max_bytes: usize,
    pub max_depth: usize,
    pub max_attrs: usize,
}

#[derive(Debug)]
pub(crate) struct Scanner {
    cur: usize,
    scan: usize,
    mode: Mode,
    quote: u8,
    stack: Vec<Open>,
    bindings: Vec<Binding>,
    pub attrs: Vec<RawAttr>,
    top: TopInfo,
    children: Vec<Child>,
}

fn resolve<'a>(
    bindings: &[Binding],
    data: &'a [u8],
    scope: &'a Scope,
    prefix: &[u8],
) -> Option<Cow<'a, str>> {
    if let Some(b) = bindings
        .iter()
        .rev()
        .find(|b| &data[b.prefix.clone()] == prefix)
    {
        return Some(crate::escape::unescape_attr(&data[b.value.clone()]));
    }
    scope.lookup(prefix).map(Cow::Borrowed)
}

impl Scanner {
    pub fn new() -> Self {
        Scanner {
            cur: 0,
            scan: 0,
            mode: Mode::Start,
            quote: 0,
            stack: Vec::new(),
            bindings: Vec::new(),
            attrs: Vec::new(),
            top: TopInfo::default(),
            children: Vec::new(),
        }
    }

    /// Forget the stanza in progress.
    pub fn reset(&mut self) {
        self.cur = 0;
        self.scan = 0;
        self.mode = Mode::Start;
        self.quote = 0;
        self.stack.clear();
        self.bindings.clear();
        self.children.clear();
        self.top = TopInfo::default();
    }

    /// Release all scratch memory (between stanzas only).
    pub fn release(&mut self) {
        debug_assert!(self.stack.is_empty() && self.cur == 0);
        self.stack = Vec::new();
        self.bindings = Vec::new();
        self.attrs = Vec::new();
        self.children = Vec::new();
    }

    /// Release scratch memory that grew large (idle connections).
    pub fn shrink(&mut self) {
        if self.stack.capacity() > 16 {
            self.stack = Vec::new();
        }
        if self.bindings.capacity() > 16 {
            self.bindings = Vec::new();
        }
        if self.attrs.capacity() > 16 {
            self.attrs = Vec::new();
        }
    }

    fn need_more(all: &[u8], lim: &ScanLimits) -> Result<Option<Parts>, XmlError> {
        if all.len() >= lim.max_bytes {
            Err(XmlError::PolicyViolation("stanza too large"))
        } else {
            Ok(None)
        }
    }

    /// Continue scanning `all` (the stanza's bytes so far, possibly followed
    /// by more data). Returns `Ok(None)` if more data is needed.
    pub fn step(
        &mut self,
        all: &[u8],
        lim: &ScanLimits,
        scope: &Scope,
    ) -> Result<Option<Parts>, XmlError> {
        let data = &all[..all.len().min(lim.max_bytes)];
        loop {
            match self.mode {
                Mode::Start => {
                    let i = self.cur;
                    let Some(&c0) = data.get(i) else {
                        return Self::need_more(all, lim);
                    };
                    if c0 != b'<' {
                        if self.stack.is_empty() {
                            return Err(nwf("text outside the root element"));
                        }
                        self.mode = Mode::Text;
                        self.scan = i;
                        continue;
                    }
                    let Some(&c1) = data.get(i + 1) else {
                        return Self::need_more(all, lim);
                    };
                    match c1 {
                        b'/' => {
                            if self.stack.is_empty() {
                                return Err(nwf("end tag without start tag"));
                            }
                            self.mode = Mode::EndTag;
                            self.scan = i + 2;
                        }
                        b'?' => return Err(XmlError::RestrictedXml("processing instruction")),
                        b'!' => {
                            const CDATA: &[u8] = b"<![CDATA[";
                            let avail = &data[i..data.len().min(i + CDATA.len())];
                            if avail != &CDATA[..avail.len()] {
                                return Err(XmlError::RestrictedXml(
                                    "comment or markup declaration",
                                ));
                            }
                            if avail.len() < CDATA.len() {
                                return Self::need_more(all, lim);
                            }
                            if self.stack.is_empty() {
                                return Err(nwf("CDATA section outside the root element"));
                            }
                            self.mode = Mode::CData;
                            self.scan = i + CDATA.len();
                        }
                        _ => {
                            self.mode = Mode::StartTag;
                            self.quote = 0;
                            self.scan = i + 1;
                        }
                    }
                }
                Mode::StartTag => match find_tag_end(data, self.scan, &mut self.quote)? {
                    Some(e) => {
                        if let Some(p) = self.start_tag(data, e, lim, scope)? {
                            return Ok(Some(p));
                        }
                        self.cur = e + 1;
                        self.mode = Mode::Start;
                    }
                    None => {
                        self.scan = data.len();
                        return Self::need_more(all, lim);
                    }
                },
                Mode::EndTag => match find_by(&data[self.scan..], |c| c == b'>') {
                    Some(p) => {
                        let e = self.scan + p;
                        if let Some(p) = self.end_tag(data, e)? {
                            return Ok(Some(p));
                        }
                        self.cur = e + 1;
                        self.mode = Mode::Start;
                    }
                    None => {
                        self.scan = data.len();
                        return Self::need_more(all, lim);
                    }
                },
                Mode::Text => match find_by(&data[self.scan..], |c| c == b'<') {
                    Some(p) => {
                        let e = self.scan + p;
                        let t = &data[self.cur..e];
                        validate_chars(t)?;
                        check_text(t)?;
                        self.cur = e;
                        self.mode = Mode::Start;
                    }
                    None => {
                        self.scan = data.len();
                        return Self::need_more(all, lim);
                    }
                },
                Mode::CData => match find_seq(data, self.scan, b"]]>") {
                    Some(e) => {
                        validate_chars(&data[self.cur..e])?;
                        self.cur = e + 3;
                        self.mode = Mode::Start;
                    }
                    None => {
                        self.scan = self.scan.max(data.len().saturating_sub(2));
                        return Self::need_more(all, lim);
                    }
                },
            }
        }
    }

    fn start_tag(
        &mut self,
        data: &[u8],
        e: usize,
        lim: &ScanLimits,
        scope: &Scope,
    ) -> Result<Option<Parts>, XmlError> {
        let start = self.cur;
        validate_chars(&data[start..=e])?;
        let st = parse_start_tag(data, start, e, &mut self.attrs, lim.max_attrs)?;
        let depth = self.stack.len() + 1;
        if depth > lim.max_depth {
            return Err(XmlError::PolicyViolation("elements nested too deeply"));
        }
        let bindings_len = self.bindings.len();
        for a in &self.attrs {
            if let Some(prefix) = a.ns_decl(data) {
                check_ns_decl(
                    prefix,
                    &crate::escape::unescape_attr(&data[a.value.clone()]),
                )?;
                let prefix = if prefix.is_empty() {
                    0..0
                } else {
                    a.colon.map_or(0, |c| c + 1)..a.name.end
                };
                self.bindings.push(Binding {
                    prefix,
                    value: a.value.clone(),
                });
            }
        }
        let prefix = st.prefix(data);
        if prefix == b"xmlns" {
            return Err(nwf("element with the xmlns prefix"));
        }
        let ns = resolve(&self.bindings, data, scope, prefix)
            .ok_or_else(|| nwf("unbound element prefix"))?;
        let bindings = &self.bindings;
        check_attrs(data, &self.attrs, |p| resolve(bindings, data, scope, p))?;
        let local = st.local();
        let end = e + 1;
        if depth == 1 {
            let mut known: [Option<Range<usize>>; 4] = Default::default();
            for a in self.attrs.iter().filter(|a| a.colon.is_none()) {
                let slot = match &data[a.name.clone()] {
                    b"from" => FROM,
                    b"to" => TO,
                    b"id" => ID,
                    b"type" => TYPE,
                    _ => continue,
                };
                known[slot] = Some(a.value.clone());
            }
            self.top = TopInfo {
                name: local,
                qname: st.qname.clone(),
                ns: intern(ns),
                start_tag_end: end,
                self_closing: st.self_closing,
                known,
            };
        } else if depth == 2 {
            self.children.push(Child {
                name: String::from_utf8_lossy(&data[local]).into_owned(),
                ns: ns.into_owned(),
                span: start..end,
            });
        }
        if st.self_closing {
            self.bindings.truncate(bindings_len);
            if depth == 1 {
                return Ok(Some(self.finish(end, end)));
            }
        } else {
            self.stack.push(Open {
                qname: st.qname,
                bindings_len,
            });
        }
        Ok(None)
    }

    fn end_tag(&mut self, data: &[u8], e: usize) -> Result<Option<Parts>, XmlError> {
        let start = self.cur;
        validate_chars(&data[start..=e])?;
        let qname = parse_end_tag(data, start, e)?;
        let open = self
            .stack
            .pop()
            .ok_or_else(|| nwf("end tag without start tag"))?;
        if data[open.qname] != data[qname] {
            return Err(nwf("mismatched end tag"));
        }
        self.bindings.truncate(open.bindings_len);
        match self.stack.len() {
            0 => Ok(Some(self.finish(e + 1, start))),
            1 => {
                if let Some(c) = self.children.last_mut() {
                    c.span.end = e + 1;
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn finish(&mut self, len: usize, content_end: usize) -> Parts {
        let parts = Parts {
            len,
            top: std::mem::take(&mut self.top),
            content_end,
            children: std::mem::take(&mut self.children),
        };
        self.reset();
        parts
    }
}
