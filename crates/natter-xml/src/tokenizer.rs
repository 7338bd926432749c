//! Low level lexical helpers shared by the stream scanner, the header parser
//! and the tree builder. Everything here works on complete tokens: the
//! callers first find a token's boundary (resumably) and then validate it in
//! one pass, which keeps the whole parser linear.

use std::borrow::Cow;
use std::ops::Range;

use crate::error::XmlError;
use crate::escape::is_xml_char;
use crate::NS_XML;

/// The namespace reserved for `xmlns` declarations.
pub(crate) const NS_XMLNS: &str = "http://www.w3.org/2000/xmlns/";

#[inline]
pub(crate) fn nwf(reason: &'static str) -> XmlError {
    XmlError::NotWellFormed(reason)
}

#[inline]
pub(crate) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Check that `b` is UTF-8 and contains only XML 1.0 characters.
pub(crate) fn validate_chars(b: &[u8]) -> Result<(), XmlError> {
    // Fast path (vectorisable, no early exit): printable ASCII only.
    if b.iter()
        .fold(0u8, |acc, &c| acc | u8::from(c < 0x20) | (c & 0x80))
        == 0
    {
        return Ok(());
    }
    if std::str::from_utf8(b).is_err() {
        return Err(XmlError::UnsupportedEncoding("input is not valid UTF-8"));
    }
    for (i, &c) in b.iter().enumerate() {
        if c < 0x20 {
            if !matches!(c, b'\t' | b'\n' | b'\r') {
                return Err(nwf("illegal control character"));
            }
        } else if c == 0xEF
            && b.get(i + 1) == Some(&0xBF)
            && matches!(b.get(i + 2), Some(0xBE | 0xBF))
        {
            return Err(nwf("illegal character U+FFFE/U+FFFF"));
        }
    }
    Ok(())
}

#[inline]
fn is_name_start_ascii(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b':'
}

#[inline]
fn is_name_ascii(c: u8) -> bool {
    is_name_start_ascii(c) || c.is_ascii_digit() || c == b'-' || c == b'.'
}

fn is_name_start_char(c: char) -> bool {
    matches!(c as u32,
        0xC0..=0xD6 | 0xD8..=0xF6 | 0xF8..=0x2FF | 0x370..=0x37D | 0x37F..=0x1FFF
        | 0x200C..=0x200D | 0x2070..=0x218F | 0x2C00..=0x2FEF | 0x3001..=0xD7FF
        | 0xF900..=0xFDCF | 0xFDF0..=0xFFFD | 0x10000..=0xEFFFF)
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c) || matches!(c as u32, 0xB7 | 0x300..=0x36F | 0x203F..=0x2040)
}

/// Decode one char of (already validated) UTF-8 at `i`.
fn decode_char(b: &[u8], i: usize) -> (char, usize) {
    let c0 = b[i];
    let (n, init) = if c0 >= 0xF0 {
        (4, c0 & 0x07)
    } else if c0 >= 0xE0 {
        (3, c0 & 0x0F)
    } else {
        (2, c0 & 0x1F)
    };
    let mut v = u32::from(init);
    for k in 1..n {
        v = (v << 6) | u32::from(b.get(i + k).copied().unwrap_or(0x80) & 0x3F);
    }
    (char::from_u32(v).unwrap_or('\u{FFFD}'), n)
}

/// Parse an XML Name starting at `i`; returns its end and the position of
/// its colon if it is a prefixed QName. Names that are not QNames (several
/// colons, leading or trailing colon) are rejected.
pub(crate) fn parse_qname(b: &[u8], start: usize) -> Result<(usize, Option<usize>), XmlError> {
    let mut i = start;
    let mut colon = None;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            let ok = if i == start {
                is_name_start_ascii(c)
            } else {
                is_name_ascii(c)
            };
            if !ok {
                break;
            }
            if c == b':' {
                if colon.is_some() {
                    return Err(nwf("name with more than one colon"));
                }
                colon = Some(i);
            }
            i += 1;
        } else {
            let (ch, n) = decode_char(b, i);
            let ok = if i == start {
                is_name_start_char(ch)
            } else {
                is_name_char(ch)
            };
            if !ok {
                break;
            }
            i += n;
        }
    }
    if i == start {
        return Err(nwf("expected a name"));
    }
    if colon == Some(start) || colon == Some(i - 1) {
        return Err(nwf("malformed qualified name"));
    }
    Ok((i, colon))
}

/// Parse the reference starting with `&` at `i`; returns the character and
/// the index just past the `;`.
pub(crate) fn parse_ref(b: &[u8], i: usize) -> Result<(char, usize), XmlError> {
    let mut j = i + 1;
    if b.get(j) == Some(&b'#') {
        j += 1;
        let hex = b.get(j) == Some(&b'x');
        if hex {
            j += 1;
        }
        let digits_start = j;
        let mut v: u32 = 0;
        while let Some(&c) = b.get(j) {
            let d = match c {
                b'0'..=b'9' => u32::from(c - b'0'),
                b'a'..=b'f' if hex => u32::from(c - b'a' + 10),
                b'A'..=b'F' if hex => u32::from(c - b'A' + 10),
                _ => break,
            };
            v = v
                .saturating_mul(if hex { 16 } else { 10 })
                .saturating_add(d)
                .min(0x11_0000);
            j += 1;
        }
        if j == digits_start || b.get(j) != Some(&b';') {
            return Err(nwf("malformed character reference"));
        }
        if !is_xml_char(v) {
            return Err(nwf("character reference to an illegal character"));
        }
        let c =
            char::from_u32(v).ok_or_else(|| nwf("character reference to an illegal character"))?;
        return Ok((c, j + 1));
    }
    let (end, _) = match parse_qname(b, j) {
        Ok(r) => r,
        Err(_) => return Err(nwf("'&' not starting a reference")),
    };
    if b.get(end) != Some(&b';') {
        return Err(nwf("unterminated entity reference"));
    }
    let c = match &b[j..end] {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        _ => {
            return Err(XmlError::RestrictedXml(
                "entity reference other than the predefined five",
            ))
        }
    };
    Ok((c, end + 1))
}

/// Validate character data (chars must already be validated): references
/// and the forbidden `]]>` sequence.
pub(crate) fn check_text(t: &[u8]) -> Result<(), XmlError> {
    let mut i = 0;
    while i < t.len() {
        match t[i] {
            b'&' => i = parse_ref(t, i)?.1,
            b']' if t[i..].starts_with(b"]]>") => return Err(nwf("']]>' in character data")),
            _ => i += 1,
        }
    }
    Ok(())
}

fn check_attr_value(v: &[u8]) -> Result<(), XmlError> {
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'&' => i = parse_ref(v, i)?.1,
            b'<' => return Err(nwf("'<' in attribute value")),
            _ => i += 1,
        }
    }
    Ok(())
}

/// One attribute of a start tag, as offsets into the buffer.
#[derive(Debug, Clone)]
pub(crate) struct RawAttr {
    pub name: Range<usize>,
    pub colon: Option<usize>,
    /// Inside the quotes, still escaped.
    pub value: Range<usize>,
}

impl RawAttr {
    /// `Some(prefix)` if this is a namespace declaration (`b""` = default).
    pub fn ns_decl<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        let name = &data[self.name.clone()];
        match self.colon {
            None if name == b"xmlns" => Some(&data[0..0]),
            Some(c) if &data[self.name.start..c] == b"xmlns" => Some(&data[c + 1..self.name.end]),
            _ => None,
        }
    }
    pub fn prefix<'a>(&self, data: &'a [u8]) -> Option<&'a [u8]> {
        self.colon.map(|c| &data[self.name.start..c])
    }
    pub fn local<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        match self.colon {
            Some(c) => &data[c + 1..self.name.end],
            None => &data[self.name.clone()],
        }
    }
}

/// A parsed start tag.
#[derive(Debug, Clone)]
pub(crate) struct StartTag {
    pub qname: Range<usize>,
    pub colon: Option<usize>,
    pub self_closing: bool,
}

impl StartTag {
    pub fn prefix<'a>(&self, data: &'a [u8]) -> &'a [u8] {
        match self.colon {
            Some(c) => &data[self.qname.start..c],
            None => &data[0..0],
        }
    }
    pub fn local(&self) -> Range<usize> {
        self.colon.map_or(self.qname.start, |c| c + 1)..self.qname.end
    }
}

/// Parse the start tag `data[start..=end]` (`data[start] == b'<'`,
/// `data[end] == b'>'`, the first unquoted `>`). Characters must already be
/// validated. Attributes are written to `attrs` (cleared first).
pub(crate) fn parse_start_tag(
    data: &[u8],
    start: usize,
    end: usize,
    attrs: &mut Vec<RawAttr>,
    max_attrs: usize,
) -> Result<StartTag, XmlError> {
    let b = &data[..=end];
    attrs.clear();
    let (qend, colon) = parse_qname(b, start + 1)?;
    let qname = start + 1..qend;
    let mut i = qend;
    loop {
        let ws_start = i;
        while is_ws(b[i]) {
            i += 1;
        }
        match b[i] {
            b'>' if i == end => {
                return Ok(StartTag {
                    qname,
                    colon,
                    self_closing: false,
                })
            }
            b'/' if i + 1 == end => {
                return Ok(StartTag {
                    qname,
                    colon,
                    self_closing: true,
                })
            }
            b'>' | b'/' => return Err(nwf("malformed start tag")),
            _ => {}
        }
        if i == ws_start {
            return Err(nwf("missing whitespace before attribute"));
        }
        let (nend, ncolon) = parse_qname(b, i)?;
        let name = i..nend;
        i = nend;
        while is_ws(b[i]) {
            i += 1;
        }
        if b[i] != b'=' {
            return Err(nwf("attribute without '='"));
        }
        i += 1;
        while is_ws(b[i]) {
            i += 1;
        }
        let q = b[i];
        if q != b'"' && q != b'\'' {
            return Err(nwf("unquoted attribute value"));
        }
        i += 1;
        let vstart = i;
        let vend = match find_by(&b[vstart..end], |c| c == q) {
            Some(p) => vstart + p,
            None => return Err(nwf("unterminated attribute value")),
        };
        check_attr_value(&b[vstart..vend])?;
        if attrs.len() >= max_attrs {
            return Err(XmlError::PolicyViolation("too many attributes"));
        }
        attrs.push(RawAttr {
            name,
            colon: ncolon,
            value: vstart..vend,
        });
        i = vend + 1;
    }
}

/// Parse the end tag `data[start..=end]` (`</qname S? >`); returns the qname.
pub(crate) fn parse_end_tag(
    data: &[u8],
    start: usize,
    end: usize,
) -> Result<Range<usize>, XmlError> {
    let b = &data[..=end];
    let (qend, _) = parse_qname(b, start + 2)?;
    let mut i = qend;
    while is_ws(b[i]) {
        i += 1;
    }
    if i != end {
        return Err(nwf("malformed end tag"));
    }
    Ok(start + 2..qend)
}

/// Position of the first byte of `hay` matching `pred`. Checks 16-byte
/// blocks without early exit first, which the compiler vectorises.
#[inline]
pub(crate) fn find_by(hay: &[u8], pred: impl Fn(u8) -> bool) -> Option<usize> {
    let mut base = 0;
    for chunk in hay.chunks(16) {
        if chunk.iter().fold(false, |a, &c| a | pred(c)) {
            return chunk.iter().position(|&c| pred(c)).map(|p| base + p);
        }
        base += chunk.len();
    }
    None
}

/// Find the first unquoted `>` at or after `from`, tracking the quote state
/// in `quote` (0 = outside quotes) so that the search can be resumed.
pub(crate) fn find_tag_end(
    data: &[u8],
    from: usize,
    quote: &mut u8,
) -> Result<Option<usize>, XmlError> {
    let mut i = from;
    while i < data.len() {
        if *quote != 0 {
            let q = *quote;
            match find_by(&data[i..], |c| c == q) {
                Some(p) => {
                    i += p + 1;
                    *quote = 0;
                }
                None => return Ok(None),
            }
        } else {
            match data[i..]
                .iter()
                .position(|&c| matches!(c, b'>' | b'"' | b'\'' | b'<'))
            {
                Some(p) => {
                    i += p;
                    match data[i] {
                        b'>' => return Ok(Some(i)),
                        b'<' => return Err(nwf("'<' inside a tag")),
                        q => *quote = q,
                    }
                    i += 1;
                }
                None => return Ok(None),
            }
        }
    }
    Ok(None)
}

/// Find `pat` in `data[from..]`.
pub(crate) fn find_seq(data: &[u8], from: usize, pat: &[u8]) -> Option<usize> {
    let first = pat[0];
    let mut i = from;
    while i + pat.len() <= data.len() {
        match data[i..=data.len() - pat.len()]
            .iter()
            .position(|&c| c == first)
        {
            Some(p) => {
                i += p;
                if data[i..].starts_with(pat) {
                    return Some(i);
                }
                i += 1;
            }
            None => return None,
        }
    }
    None
}

/// Validate a namespace declaration `xmlns:prefix='uri'` (prefix empty for
/// the default namespace).
pub(crate) fn check_ns_decl(prefix: &[u8], uri: &str) -> Result<(), XmlError> {
    if prefix == b"xmlns" {
        return Err(nwf("the xmlns prefix cannot be declared"));
    }
    if prefix == b"xml" {
        if uri != NS_XML {
            return Err(nwf("the xml prefix cannot be rebound"));
        }
        return Ok(());
    }
    if uri == NS_XML || uri == NS_XMLNS {
        return Err(nwf("reserved namespace bound to another prefix"));
    }
    if !prefix.is_empty() && uri.is_empty() {
        return Err(nwf("a prefix cannot be undeclared"));
    }
    Ok(())
}

/// Check the attributes of one start tag for duplicates (by qname and by
/// expanded name) and unbound prefixes. `resolve` maps a prefix to its
/// namespace (None = unbound).
pub(crate) fn check_attrs<R, F>(data: &[u8], attrs: &[RawAttr], resolve: F) -> Result<(), XmlError>
where
    R: AsRef<str>,
    F: Fn(&[u8]) -> Option<R>,
{
    for (i, a) in attrs.iter().enumerate() {
        let name = &data[a.name.clone()];
        for b in &attrs[..i] {
            if &data[b.name.clone()] == name {
                return Err(nwf("duplicate attribute"));
            }
        }
        if a.ns_decl(data).is_some() {
            continue;
        }
        let Some(prefix) = a.prefix(data) else {
            continue;
        };
        if prefix == b"xmlns" {
            continue;
        }
        let Some(ns) = resolve(prefix) else {
            return Err(nwf("unbound attribute prefix"));
        };
        let local = a.local(data);
        for b in &attrs[..i] {
            let Some(bp) = b.prefix(data) else { continue };
            if bp == b"xmlns" || b.local(data) != local {
                continue;
            }
            if let Some(bns) = resolve(bp) {
                if bns.as_ref() == ns.as_ref() {
                    return Err(nwf("duplicate attribute after namespace resolution"));
                }
            }
        }
    }
    Ok(())
}

/// Lightweight attribute lookup in an already validated start tag beginning
/// at `start` (`bytes[start] == b'<'`): unprefixed attribute `local`.
pub(crate) fn attr_in_tag<'a>(bytes: &'a [u8], start: usize, local: &str) -> Option<Cow<'a, str>> {
    let raw = raw_attr_in_tag(bytes, start, local)?;
    Some(crate::escape::unescape_attr(&bytes[raw]))
}

/// Value span of the unprefixed attribute `local` in a validated start tag.
pub(crate) fn raw_attr_in_tag(bytes: &[u8], start: usize, local: &str) -> Option<Range<usize>> {
    let mut i = start + 1;
    while i < bytes.len() && !is_ws(bytes[i]) && bytes[i] != b'>' && bytes[i] != b'/' {
        i += 1;
    }
    loop {
        while i < bytes.len() && is_ws(bytes[i]) {
            i += 1;
        }
        match bytes.get(i) {
            None | Some(b'>') | Some(b'/') => return None,
            _ => {}
        }
        let ns = i;
        while i < bytes.len() && !is_ws(bytes[i]) && bytes[i] != b'=' {
            i += 1;
        }
        let name = &bytes[ns..i];
        while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\'' {
            i += 1;
        }
        let q = *bytes.get(i)?;
        let vs = i + 1;
        let ve = vs + bytes.get(vs..)?.iter().position(|&c| c == q)?;
        if name == local.as_bytes() {
            return Some(vs..ve);
        }
        i = ve + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(parse_qname(b"abc def", 0).unwrap(), (3, None));
        assert_eq!(parse_qname(b"a:b>", 0).unwrap(), (3, Some(1)));
        assert_eq!(parse_qname("é-1.x/".as_bytes(), 0).unwrap(), (6, None));
        assert!(parse_qname(b"1a", 0).is_err());
        assert!(parse_qname(b":a", 0).is_err());
        assert!(parse_qname(b"a:", 0).is_err());
        assert!(parse_qname(b"a:b:c", 0).is_err());
        assert!(parse_qname(b"-", 0).is_err());
    }

    #[test]
    fn refs() {
        assert_eq!(parse_ref(b"&amp;x", 0).unwrap(), ('&', 5));
        assert_eq!(parse_ref(b"&#x1F600;", 0).unwrap(), ('\u{1F600}', 9));
        assert_eq!(parse_ref(b"&#0065;", 0).unwrap(), ('A', 7));
        assert_eq!(
            parse_ref(b"&#0;", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"&#xFFFE;", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"&#xD800;", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"&#99999999999;", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"&#x;", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"&nbsp;", 0).unwrap_err().condition(),
            "restricted-xml"
        );
        assert_eq!(
            parse_ref(b"&amp", 0).unwrap_err().condition(),
            "not-well-formed"
        );
        assert_eq!(
            parse_ref(b"& ", 0).unwrap_err().condition(),
            "not-well-formed"
        );
    }

    #[test]
    fn start_tags() {
        let mut attrs = Vec::new();
        let t = b"<a:b x='1' y = \"2\"/>";
        let st = parse_start_tag(t, 0, t.len() - 1, &mut attrs, 10).unwrap();
        assert!(st.self_closing);
        assert_eq!(&t[st.qname.clone()], b"a:b");
        assert_eq!(&t[st.local()], b"b");
        assert_eq!(attrs.len(), 2);
        assert_eq!(&t[attrs[1].value.clone()], b"2");
        for bad in [
            &b"<a x='1'y='2'>"[..],
            b"<a x>",
            b"<a x=1>",
            b"<a x='<'>",
            b"<a / >",
            b"< a>",
            b"<a x='1'y>",
        ] {
            let mut q = 0;
            let e = find_tag_end(bad, 1, &mut q).unwrap().unwrap();
            assert!(
                parse_start_tag(bad, 0, e, &mut attrs, 10).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let t = b"<a x='1' y='2'>";
        assert_eq!(
            parse_start_tag(t, 0, t.len() - 1, &mut attrs, 1)
                .unwrap_err()
                .condition(),
            "policy-violation"
        );
    }

    #[test]
    fn tag_end_resumes() {
        let t = b"<a x='>\"' y=\"'>\">";
        let mut q = 0;
        assert_eq!(find_tag_end(&t[..7], 1, &mut q).unwrap(), None);
        assert_eq!(q, b'\'');
        assert_eq!(find_tag_end(t, 7, &mut q).unwrap(), Some(t.len() - 1));
    }

    #[test]
    fn seq() {
        assert_eq!(find_seq(b"ab]]]>", 0, b"]]>"), Some(3));
        assert_eq!(find_seq(b"ab]]", 0, b"]]>"), None);
        assert_eq!(find_seq(b"]]>", 1, b"]]>"), None);
    }

    #[test]
    fn lookup_attr() {
        let t = b"<a b='1' c=\"x&amp;y\" d:e='z'/>";
        assert_eq!(attr_in_tag(t, 0, "c").unwrap(), "x&y");
        assert_eq!(attr_in_tag(t, 0, "b").unwrap(), "1");
        assert!(attr_in_tag(t, 0, "e").is_none());
        assert!(attr_in_tag(t, 0, "zz").is_none());
    }
}
