//! [`Stanza`]: the routing envelope of one top-level element.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use crate::element::{build_tree, Element};
use crate::error::XmlError;
use crate::escape::{escape_attr, unescape_attr};
use crate::scanner::{Parts, ScanLimits, Scanner, Scope, FROM, ID, TO, TYPE};
use crate::tokenizer::{attr_in_tag, is_ws};
use crate::{Limits, NS_CLIENT, NS_SERVER, NS_STREAMS};

/// One complete, validated top-level element (a stanza, or a stream-level
/// element such as `<starttls/>` or `<stream:features>`).
///
/// It owns its raw bytes and knows, as spans into them, where its top-level
/// attributes and direct children are; nothing else is parsed until
/// [`Stanza::element`] is called.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stanza {
    bytes: Vec<u8>,
    name: Range<usize>,
    qname: Range<usize>,
    ns: Cow<'static, str>,
    start_tag_end: usize,
    content_end: usize,
    self_closing: bool,
    known: [Option<Range<usize>>; 4],
    children: Vec<Child>,
    scope: Arc<Scope>,
}

/// A direct child of a [`Stanza`]'s top element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Child {
    /// Local name.
    pub name: String,
    /// Resolved namespace.
    pub ns: String,
    /// Byte range of the whole child element in [`Stanza::bytes`].
    pub span: Range<usize>,
}

impl Child {
    /// The unescaped value of the child's unprefixed attribute `local_name`
    /// (a name with a colon matches the qualified name as written).
    pub fn attr<'a>(&self, stanza: &'a Stanza, local_name: &str) -> Option<Cow<'a, str>> {
        if self.span.end > stanza.bytes.len() {
            return None;
        }
        attr_in_tag(&stanza.bytes[..self.span.end], self.span.start, local_name)
    }

    /// The child's raw bytes.
    pub fn bytes<'a>(&self, stanza: &'a Stanza) -> &'a [u8] {
        stanza.bytes.get(self.span.clone()).unwrap_or(&[])
    }
}

/// Depth limit of [`Stanza::parse`] (keeps the recursive [`Element`]
/// drop and serialisation far from stack exhaustion).
pub const PARSE_MAX_DEPTH: usize = 256;

fn parse_scope(default_ns: &str) -> Arc<Scope> {
    fn make(default_ns: &str) -> Arc<Scope> {
        Arc::new(Scope {
            bindings: vec![
                (String::new(), default_ns.to_owned()),
                ("stream".to_owned(), NS_STREAMS.to_owned()),
            ],
        })
    }
    static CLIENT: OnceLock<Arc<Scope>> = OnceLock::new();
    static SERVER: OnceLock<Arc<Scope>> = OnceLock::new();
    match default_ns {
        NS_CLIENT => CLIENT.get_or_init(|| make(NS_CLIENT)).clone(),
        NS_SERVER => SERVER.get_or_init(|| make(NS_SERVER)).clone(),
        other => make(other),
    }
}

impl Stanza {
    pub(crate) fn from_parts(bytes: Vec<u8>, parts: Parts, scope: Arc<Scope>) -> Stanza {
        Stanza {
            bytes,
            name: parts.top.name,
            qname: parts.top.qname,
            ns: parts.top.ns,
            start_tag_end: parts.top.start_tag_end,
            content_end: parts.content_end,
            self_closing: parts.top.self_closing,
            known: parts.top.known,
            children: parts.children,
            scope,
        }
    }

    /// Parse one complete element. `default_ns` is the default namespace in
    /// scope (e.g. `jabber:client`); the `stream` prefix is also bound to
    /// [`NS_STREAMS`]. Leading and trailing whitespace is ignored; anything
    /// else around the element is an error.
    ///
    /// Meant for trusted input (stored or self-built stanzas, rewrite
    /// results): size and attribute count are not limited and depth is
    /// limited to [`PARSE_MAX_DEPTH`]. Use [`Stanza::parse_with_limits`] for
    /// untrusted input.
    pub fn parse(bytes: &[u8], default_ns: &str) -> Result<Stanza, XmlError> {
        let limits = Limits {
            max_stanza_bytes: usize::MAX,
            max_depth: PARSE_MAX_DEPTH,
            max_attributes: usize::MAX,
            max_header_bytes: 0,
        };
        Stanza::parse_with_limits(bytes, default_ns, &limits)
    }

    /// [`Stanza::parse`] enforcing `limits` (`max_header_bytes` is unused).
    pub fn parse_with_limits(
        bytes: &[u8],
        default_ns: &str,
        limits: &Limits,
    ) -> Result<Stanza, XmlError> {
        let start = bytes.iter().position(|&c| !is_ws(c)).unwrap_or(bytes.len());
        let end = bytes
            .iter()
            .rposition(|&c| !is_ws(c))
            .map_or(start, |p| p + 1);
        let bytes = &bytes[start..end];
        if bytes.is_empty() {
            return Err(XmlError::BadFormat("no element"));
        }
        let lim = ScanLimits {
            max_bytes: limits.max_stanza_bytes,
            max_depth: limits.max_depth,
            max_attrs: limits.max_attributes,
        };
        let scope = parse_scope(default_ns);
        let mut scanner = Scanner::new();
        match scanner.step(bytes, &lim, &scope)? {
            Some(parts) if parts.len == bytes.len() => {
                Ok(Stanza::from_parts(bytes.to_vec(), parts, scope))
            }
            Some(_) => Err(XmlError::NotWellFormed("data after the element")),
            None => Err(XmlError::BadFormat("incomplete element")),
        }
    }

    /// Serialise `e` (in a context whose default namespace is `default_ns`)
    /// and parse the result.
    pub fn from_element(e: &Element, default_ns: &str) -> Result<Stanza, XmlError> {
        Stanza::parse(&e.to_bytes(default_ns), default_ns)
    }

    /// The raw, validated bytes of the element.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Take the raw bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Local name of the top element, e.g. `message`.
    pub fn name(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.name.clone()]).unwrap_or("")
    }

    /// Resolved namespace of the top element, e.g. `jabber:client`.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// Unescaped value of the top element's unprefixed attribute
    /// `local_name`. (A name containing a colon, e.g. `xml:lang`, matches
    /// the attribute's qualified name as written.)
    pub fn attr(&self, local_name: &str) -> Option<Cow<'_, str>> {
        let slot = match local_name {
            "from" => FROM,
            "to" => TO,
            "id" => ID,
            "type" => TYPE,
            _ => return attr_in_tag(&self.bytes[..self.start_tag_end], 0, local_name),
        };
        self.known_attr(slot)
    }

    fn known_attr(&self, slot: usize) -> Option<Cow<'_, str>> {
        self.known[slot]
            .as_ref()
            .map(|r| unescape_attr(&self.bytes[r.clone()]))
    }

    /// The `to` attribute.
    pub fn to(&self) -> Option<Cow<'_, str>> {
        self.known_attr(TO)
    }

    /// The `from` attribute.
    pub fn from(&self) -> Option<Cow<'_, str>> {
        self.known_attr(FROM)
    }

    /// The `id` attribute.
    pub fn id(&self) -> Option<Cow<'_, str>> {
        self.known_attr(ID)
    }

    /// The `type` attribute.
    pub fn stanza_type(&self) -> Option<Cow<'_, str>> {
        self.known_attr(TYPE)
    }

    /// Direct children of the top element, in document order.
    pub fn children(&self) -> &[Child] {
        &self.children
    }

    /// The first direct child with this local name and namespace.
    pub fn child(&self, name: &str, ns: &str) -> Option<&Child> {
        self.children.iter().find(|c| c.name == name && c.ns == ns)
    }

    /// Is there a direct child with this local name and namespace?
    pub fn has_child(&self, name: &str, ns: &str) -> bool {
        self.child(name, ns).is_some()
    }

    /// Is the top element written as an empty-element tag (`<x/>`)?
    pub fn is_self_closing(&self) -> bool {
        self.self_closing
    }

    /// The raw content between the top element's start and end tags.
    pub fn inner_bytes(&self) -> &[u8] {
        &self.bytes[self.start_tag_end..self.content_end]
    }

    /// Build the full element tree.
    pub fn element(&self) -> Result<Element, XmlError> {
        build_tree(&self.bytes, &self.scope)
    }

    /// A copy with the top-level attributes `from` / `to` set (`Some` =
    /// set or replace, the value is escaped; `None` = leave as is), the
    /// direct children at the `remove` indexes (into [`Stanza::children`];
    /// out of range indexes are ignored) removed, and `append` (already
    /// serialised XML) inserted just before the end tag. A self-closing
    /// `<x/>` becomes `<x>…</x>` if `append` is not empty.
    pub fn rewrite(
        &self,
        from: Option<&str>,
        to: Option<&str>,
        remove: &[usize],
        append: &[u8],
    ) -> Vec<u8> {
        let b = &self.bytes;
        let mut out = Vec::with_capacity(b.len() + append.len() + self.qname.len() + 64);

        // Start tag: replace existing values in place, insert missing ones
        // right after the element name.
        let mut replace: [Option<(Range<usize>, &str)>; 2] = [None, None];
        out.extend_from_slice(&b[..self.qname.end]);
        for (k, (name, slot, val)) in [("from", FROM, from), ("to", TO, to)]
            .into_iter()
            .enumerate()
        {
            let Some(v) = val else { continue };
            match &self.known[slot] {
                Some(r) => replace[k] = Some((r.clone(), v)),
                None => {
                    out.push(b' ');
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"='");
                    escape_attr(v, &mut out);
                    out.push(b'\'');
                }
            }
        }
        if let [Some(a), Some(c)] = &replace {
            if c.0.start < a.0.start {
                replace.swap(0, 1);
            }
        }
        let mut last = self.qname.end;
        for (r, v) in replace.iter().flatten() {
            out.extend_from_slice(&b[last..r.start]);
            escape_attr(v, &mut out);
            last = r.end;
        }
        if self.self_closing {
            if append.is_empty() {
                out.extend_from_slice(&b[last..]);
            } else {
                // `.../>` -> `...>` + append + `</qname>`
                out.extend_from_slice(&b[last..self.start_tag_end - 2]);
                out.push(b'>');
                out.extend_from_slice(append);
                out.extend_from_slice(b"</");
                out.extend_from_slice(&b[self.qname.clone()]);
                out.push(b'>');
            }
            return out;
        }
        out.extend_from_slice(&b[last..self.start_tag_end]);

        // Content minus removed children.
        let mut last = self.start_tag_end;
        for (i, c) in self.children.iter().enumerate() {
            if remove.contains(&i) {
                out.extend_from_slice(&b[last..c.span.start]);
                last = c.span.end;
            }
        }
        out.extend_from_slice(&b[last..self.content_end]);
        out.extend_from_slice(append);
        out.extend_from_slice(&b[self.content_end..]);
        out
    }
}
