//! A small owned element tree for stanzas the server has to understand.

use crate::error::XmlError;
use crate::escape::{escape_attr, escape_text, unescape_attr, unescape_text};
use crate::scanner::Scope;
use crate::tokenizer::{
    check_ns_decl, find_seq, find_tag_end, nwf, parse_end_tag, parse_start_tag,
};

/// An element with resolved namespace.
///
/// Attribute keys are local names for unprefixed attributes, `xml:…` for
/// attributes in the XML namespace (e.g. `xml:lang`) and `{uri}local` for
/// attributes in any other namespace. Namespace declarations are not
/// attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: String,
    pub ns: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// A child of an [`Element`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// An empty element `name` in namespace `ns`.
    pub fn new(name: &str, ns: &str) -> Self {
        Element {
            name: name.to_owned(),
            ns: ns.to_owned(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: set an attribute.
    pub fn with_attr(mut self, k: &str, v: impl Into<String>) -> Self {
        self.set_attr(k, v);
        self
    }

    /// Builder: append a child element.
    pub fn with_child(mut self, e: Element) -> Self {
        self.push_child(e);
        self
    }

    /// Builder: append text.
    pub fn with_text(mut self, t: impl Into<String>) -> Self {
        self.push_text(t);
        self
    }

    /// Set (or replace) an attribute.
    pub fn set_attr(&mut self, k: &str, v: impl Into<String>) {
        let v = v.into();
        match self.attrs.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v,
            None => self.attrs.push((k.to_owned(), v)),
        }
    }

    /// Remove an attribute, returning its value.
    pub fn remove_attr(&mut self, k: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(name, _)| name == k)?;
        Some(self.attrs.remove(i).1)
    }

    /// Append a child element.
    pub fn push_child(&mut self, e: Element) {
        self.children.push(Node::Element(e));
    }

    /// Append text (merged with a preceding text node; empty text is ignored).
    pub fn push_text(&mut self, t: impl Into<String>) {
        let t = t.into();
        if t.is_empty() {
            return;
        }
        match self.children.last_mut() {
            Some(Node::Text(prev)) => prev.push_str(&t),
            _ => self.children.push(Node::Text(t)),
        }
    }

    /// An attribute's value.
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.as_str())
    }

    /// The first child element with this name and namespace.
    pub fn get_child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name && e.ns == ns)
    }

    /// Mutable access to the first child element with this name and namespace.
    pub fn get_child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.name == name && e.ns == ns => Some(e),
            _ => None,
        })
    }

    /// Child elements, in order.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// Concatenated direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Serialise, emitting `xmlns='…'` only where the namespace differs from
    /// the parent's (`parent_ns` for this element).
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        out.push(b'<');
        out.extend_from_slice(self.name.as_bytes());
        if self.ns != parent_ns {
            out.extend_from_slice(b" xmlns='");
            escape_attr(&self.ns, out);
            out.push(b'\'');
        }
        let mut generated = 0usize;
        for (k, v) in &self.attrs {
            if k == "xmlns" || k.starts_with("xmlns:") {
                continue;
            }
            out.push(b' ');
            if let Some((uri, local)) = k.strip_prefix('{').and_then(|r| r.split_once('}')) {
                let p = format!("ns{generated}");
                generated += 1;
                out.extend_from_slice(b"xmlns:");
                out.extend_from_slice(p.as_bytes());
                out.extend_from_slice(b"='");
                escape_attr(uri, out);
                out.extend_from_slice(b"' ");
                out.extend_from_slice(p.as_bytes());
                out.push(b':');
                out.extend_from_slice(local.as_bytes());
            } else {
                out.extend_from_slice(k.as_bytes());
            }
            out.extend_from_slice(b"='");
            escape_attr(v, out);
            out.push(b'\'');
        }
        if self.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => escape_text(t, out),
            }
        }
        out.extend_from_slice(b"</");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    /// Serialise into a new buffer (see [`Element::write_to`]).
    pub fn to_bytes(&self, parent_ns: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        self.write_to(&mut out, parent_ns);
        out
    }
}

fn lookup<'a>(binds: &'a [(String, String)], scope: &'a Scope, prefix: &str) -> Option<&'a str> {
    match binds.iter().rev().find(|(p, _)| p == prefix) {
        Some((_, uri)) => Some(uri),
        None => scope.lookup(prefix.as_bytes()),
    }
}

fn add_text(stack: &mut [(Element, usize)], t: &str) -> Result<(), XmlError> {
    match stack.last_mut() {
        Some((e, _)) => {
            e.push_text(t);
            Ok(())
        }
        None => Err(nwf("text outside the root element")),
    }
}

/// Build the tree of one complete element (already validated by the
/// scanner, but every step is still checked).
pub(crate) fn build_tree(bytes: &[u8], scope: &Scope) -> Result<Element, XmlError> {
    let mut attrs = Vec::new();
    let mut stack: Vec<(Element, usize)> = Vec::new();
    let mut binds: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            let j = bytes[i..]
                .iter()
                .position(|&c| c == b'<')
                .map_or(bytes.len(), |p| i + p);
            add_text(&mut stack, &unescape_text(&bytes[i..j]))?;
            i = j;
            continue;
        }
        let finished = if bytes[i..].starts_with(b"<![CDATA[") {
            let e =
                find_seq(bytes, i + 9, b"]]>").ok_or_else(|| nwf("unterminated CDATA section"))?;
            add_text(&mut stack, &String::from_utf8_lossy(&bytes[i + 9..e]))?;
            i = e + 3;
            None
        } else if bytes.get(i + 1) == Some(&b'/') {
            let e = bytes[i..]
                .iter()
                .position(|&c| c == b'>')
                .ok_or_else(|| nwf("unterminated end tag"))?
                + i;
            parse_end_tag(bytes, i, e)?;
            let (el, bl) = stack
                .pop()
                .ok_or_else(|| nwf("end tag without start tag"))?;
            binds.truncate(bl);
            i = e + 1;
            Some(el)
        } else {
            let mut q = 0;
            let e =
                find_tag_end(bytes, i + 1, &mut q)?.ok_or_else(|| nwf("unterminated start tag"))?;
            let st = parse_start_tag(bytes, i, e, &mut attrs, usize::MAX)?;
            let bl = binds.len();
            for a in &attrs {
                if let Some(p) = a.ns_decl(bytes) {
                    let uri = unescape_attr(&bytes[a.value.clone()]);
                    check_ns_decl(p, &uri)?;
                    binds.push((String::from_utf8_lossy(p).into_owned(), uri.into_owned()));
                }
            }
            let prefix = String::from_utf8_lossy(st.prefix(bytes));
            let ns = lookup(&binds, scope, &prefix).ok_or_else(|| nwf("unbound element prefix"))?;
            let mut el = Element::new(&String::from_utf8_lossy(&bytes[st.local()]), ns);
            for a in &attrs {
                if a.ns_decl(bytes).is_some() {
                    continue;
                }
                let local = String::from_utf8_lossy(a.local(bytes));
                let key = match a.prefix(bytes) {
                    None => local.into_owned(),
                    Some(b"xml") => format!("xml:{local}"),
                    Some(p) => {
                        let uri = lookup(&binds, scope, &String::from_utf8_lossy(p))
                            .ok_or_else(|| nwf("unbound attribute prefix"))?;
                        format!("{{{uri}}}{local}")
                    }
                };
                el.attrs
                    .push((key, unescape_attr(&bytes[a.value.clone()]).into_owned()));
            }
            i = e + 1;
            if st.self_closing {
                binds.truncate(bl);
                Some(el)
            } else {
                stack.push((el, bl));
                None
            }
        };
        if let Some(el) = finished {
            match stack.last_mut() {
                Some((parent, _)) => parent.push_child(el),
                None => {
                    return if bytes[i..].iter().all(|&c| crate::tokenizer::is_ws(c)) {
                        Ok(el)
                    } else {
                        Err(nwf("data after the root element"))
                    };
                }
            }
        }
    }
    Err(XmlError::BadFormat("incomplete element"))
}
