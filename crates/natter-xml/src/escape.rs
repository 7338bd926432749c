//! Escaping for output and unescaping of already validated input.

use std::borrow::Cow;

use crate::tokenizer::parse_ref;

/// Is `c` allowed in an XML 1.0 document?
#[inline]
pub(crate) fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

const REPLACEMENT: &[u8] = "\u{FFFD}".as_bytes();

/// Shared escaper: `special` decides which ASCII bytes need a replacement.
fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    let b = s.as_bytes();
    let mut last = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep: &[u8] = match c {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            b'\r' => b"&#xD;",
            b'"' if attr => b"&quot;",
            b'\'' if attr => b"&apos;",
            b'\t' if attr => b"&#x9;",
            b'\n' if attr => b"&#xA;",
            b'\t' | b'\n' => continue,
            0..=0x1F => REPLACEMENT,
            // U+FFFE / U+FFFF are not XML characters.
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                out.extend_from_slice(&b[last..i]);
                out.extend_from_slice(REPLACEMENT);
                last = i + 3;
                continue;
            }
            _ => continue,
        };
        if i < last {
            continue; // inside a replaced U+FFFE/U+FFFF sequence
        }
        out.extend_from_slice(&b[last..i]);
        out.extend_from_slice(rep);
        last = i + 1;
    }
    if last < b.len() {
        out.extend_from_slice(&b[last..]);
    }
}

/// Append `s` escaped for use as character data (`&`, `<`, `>` and CR are
/// escaped; characters that XML cannot represent become U+FFFD).
pub fn escape_text(s: &str, out: &mut Vec<u8>) {
    escape(s, out, false)
}

/// Append `s` escaped for use inside an attribute value delimited by either
/// `'` or `"` (also escapes both quotes, TAB, LF and CR so that attribute
/// value normalisation preserves them).
pub fn escape_attr(s: &str, out: &mut Vec<u8>) {
    escape(s, out, true)
}

/// Unescape character data that has already been validated.
pub(crate) fn unescape_text(raw: &[u8]) -> Cow<'_, str> {
    unescape(raw, false)
}

/// Unescape an attribute value that has already been validated
/// (resolves references and applies attribute value normalisation).
pub(crate) fn unescape_attr(raw: &[u8]) -> Cow<'_, str> {
    unescape(raw, true)
}

fn unescape(raw: &[u8], attr: bool) -> Cow<'_, str> {
    let needs = raw
        .iter()
        .any(|&c| c == b'&' || c == b'\r' || (attr && (c == b'\t' || c == b'\n')));
    if !needs {
        return match std::str::from_utf8(raw) {
            Ok(s) => Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(raw),
        };
    }
    let mut out: Vec<u8> = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'&' => match parse_ref(raw, i) {
                Ok((c, next)) => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i = next;
                }
                Err(_) => {
                    out.push(b'&');
                    i += 1;
                }
            },
            b'\r' => {
                out.push(if attr { b' ' } else { b'\n' });
                i += 1;
                if raw.get(i) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\t' | b'\n' if attr => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn et(s: &str) -> String {
        let mut v = Vec::new();
        escape_text(s, &mut v);
        String::from_utf8(v).unwrap()
    }
    fn ea(s: &str) -> String {
        let mut v = Vec::new();
        escape_attr(s, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escaping() {
        assert_eq!(et("a<b>&c'\"\t\n\r"), "a&lt;b&gt;&amp;c'\"\t\n&#xD;");
        assert_eq!(
            ea("a<b>&c'\"\t\n\r"),
            "a&lt;b&gt;&amp;c&apos;&quot;&#x9;&#xA;&#xD;"
        );
        assert_eq!(
            et("x\u{0}y\u{FFFE}z\u{FFFF}é"),
            "x\u{FFFD}y\u{FFFD}z\u{FFFD}é"
        );
        assert_eq!(et("plain ünïcödé"), "plain ünïcödé");
    }

    #[test]
    fn unescaping() {
        assert!(matches!(unescape_text(b"plain"), Cow::Borrowed("plain")));
        assert_eq!(
            unescape_text(b"a&amp;b&lt;&gt;&quot;&apos;&#65;&#x42;"),
            "a&b<>\"'AB"
        );
        assert_eq!(unescape_text(b"a\r\nb\rc"), "a\nb\nc");
        assert_eq!(unescape_attr(b"a\tb\nc\r\nd&#xA;"), "a b c d\n");
        for s in ["x<y&z'\"\t\n\r", "\u{1F600}&amp;"] {
            let mut v = Vec::new();
            escape_attr(s, &mut v);
            assert_eq!(unescape_attr(&v), s);
            let mut v = Vec::new();
            escape_text(s, &mut v);
            assert_eq!(unescape_text(&v), s);
        }
    }
}
