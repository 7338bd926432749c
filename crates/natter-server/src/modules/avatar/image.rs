//! An avatar image as the three places hold it: the vCard's `<PHOTO/>`
//! (XEP-0153: `TYPE` and base64 `BINVAL`), the `urn:xmpp:avatar:data`
//! item (XEP-0084: base64 in `<data/>`) and its `urn:xmpp:avatar:metadata`
//! `<info/>` (id = SHA-1 of the bytes, hex). Pure functions, no I/O.

use super::{NS_DATA, NS_METADATA};
use crate::ns::VCARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use natter_xml::{Element, Node};
use sha1::{Digest, Sha1};

/// Base64 as vCards and avatar data carry it: whitespace (line breaks)
/// between characters is allowed, padding may be left out.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The SHA-1 of an avatar image: what XEP-0153 presence carries and
/// XEP-0084 uses as the item id.
pub type Hash = [u8; 20];

/// The bytes of an image and its media type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub mime: String,
}

impl Image {
    /// An image with its media type, or the type its first bytes show when
    /// none is given.
    pub fn new(bytes: Vec<u8>, mime: Option<&str>) -> Image {
        let mime = match mime.map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => m.to_owned(),
            None => sniff(&bytes).to_owned(),
        };
        Image { bytes, mime }
    }

    pub fn hash(&self) -> Hash {
        Sha1::digest(&self.bytes).into()
    }

    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    /// `<PHOTO><TYPE/><BINVAL/></PHOTO>` for a vCard.
    pub fn photo(&self) -> Element {
        Element::new("PHOTO", VCARD)
            .with_child(Element::new("TYPE", VCARD).with_text(self.mime.clone()))
            .with_child(Element::new("BINVAL", VCARD).with_text(self.base64()))
    }

    /// The `urn:xmpp:avatar:data` payload.
    pub fn data(&self) -> Element {
        Element::new("data", NS_DATA).with_text(self.base64())
    }

    /// The `urn:xmpp:avatar:metadata` payload with this image's one
    /// `<info/>`.
    pub fn metadata(&self) -> Element {
        Element::new("metadata", NS_METADATA).with_child(
            Element::new("info", NS_METADATA)
                .with_attr("id", hex(&self.hash()))
                .with_attr("bytes", self.bytes.len().to_string())
                .with_attr("type", self.mime.clone()),
        )
    }
}

/// Lower-case hex, as XEP-0084 ids and XEP-0153 hashes are written.
pub fn hex(hash: &Hash) -> String {
    let mut s = String::with_capacity(40);
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Decodes base64 text; None when it is not base64.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    LENIENT.decode(compact).ok()
}

/// The media type an image's first bytes show (PNG, JPEG, GIF, WebP), or
/// `application/octet-stream`.
fn sniff(b: &[u8]) -> &'static str {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
        "image/jpeg"
    } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        "image/gif"
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

/// What a vCard says of the avatar.
#[derive(Debug, PartialEq, Eq)]
pub enum Photo {
    /// No `<PHOTO/>` with image data (none at all, an empty one, or one
    /// with only an `EXTVAL` URL).
    None,
    Image(Image),
    /// A `BINVAL` that is not base64.
    Bad,
}

/// The image of the vCard's first `<PHOTO/>`.
pub fn photo_of(card: &Element) -> Photo {
    let Some(photo) = card.get_child("PHOTO", VCARD) else {
        return Photo::None;
    };
    let Some(binval) = photo.get_child("BINVAL", VCARD) else {
        return Photo::None;
    };
    match decode(&binval.text()) {
        None => Photo::Bad,
        Some(bytes) if bytes.is_empty() => Photo::None,
        Some(bytes) => {
            let mime = photo.get_child("TYPE", VCARD).map(|t| t.text());
            Photo::Image(Image::new(bytes, mime.as_deref()))
        }
    }
}

/// The vCard with its `<PHOTO/>` elements replaced by `image`'s (or
/// removed), everything else kept in place.
pub fn with_photo(card: &Element, image: Option<&Image>) -> Element {
    let mut out = card.clone();
    let at = out.children.iter().position(is_photo);
    out.children.retain(|n| !is_photo(n));
    if let Some(image) = image {
        let at = at.unwrap_or(out.children.len());
        out.children.insert(at, Node::Element(image.photo()));
    }
    out
}

fn is_photo(n: &Node) -> bool {
    matches!(n, Node::Element(e) if e.name == "PHOTO" && e.ns == VCARD)
}

/// The image of an `urn:xmpp:avatar:data` payload; None when it is not one
/// or not base64.
pub fn from_data(payload: &Element, mime: Option<&str>) -> Option<Image> {
    if payload.name != "data" || payload.ns != NS_DATA {
        return None;
    }
    decode(&payload.text()).map(|bytes| Image::new(bytes, mime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn card(inner: &str) -> Element {
        natter_xml::Stanza::parse(
            format!("<vCard xmlns='vcard-temp'>{inner}</vCard>").as_bytes(),
            "",
        )
        .unwrap()
        .element()
        .unwrap()
    }

    #[test]
    fn hashes_are_sha1_hex() {
        // SHA-1("abc"), FIPS 180-1.
        let i = Image::new(b"abc".to_vec(), Some("image/png"));
        assert_eq!(hex(&i.hash()), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn base64_allows_line_breaks_and_missing_padding() {
        assert_eq!(decode("YW\nJj\r\n").unwrap(), b"abc");
        assert_eq!(decode("YWI=").unwrap(), b"ab");
        assert_eq!(decode("YWI").unwrap(), b"ab");
        assert_eq!(decode("not base64!"), None);
        assert_eq!(decode("YWJj*"), None);
    }

    #[test]
    fn photo_of_a_vcard() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(PNG);
        let c = card(&format!(
            "<FN>Al</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>{b64}</BINVAL></PHOTO>"
        ));
        assert_eq!(
            photo_of(&c),
            Photo::Image(Image::new(PNG.to_vec(), Some("image/png")))
        );
        // No TYPE: the bytes tell.
        let c = card(&format!("<PHOTO><BINVAL>{b64}</BINVAL></PHOTO>"));
        let Photo::Image(i) = photo_of(&c) else {
            panic!()
        };
        assert_eq!(i.mime, "image/png");
        assert_eq!(photo_of(&card("<FN>Al</FN>")), Photo::None);
        assert_eq!(photo_of(&card("<PHOTO/>")), Photo::None);
        assert_eq!(
            photo_of(&card("<PHOTO><EXTVAL>https://x/a.png</EXTVAL></PHOTO>")),
            Photo::None
        );
        assert_eq!(
            photo_of(&card("<PHOTO><BINVAL>%%%</BINVAL></PHOTO>")),
            Photo::Bad
        );
    }

    #[test]
    fn with_photo_keeps_the_rest_of_the_vcard() {
        let c = card("<FN>Al</FN><PHOTO><BINVAL>YWJj</BINVAL></PHOTO><NICKNAME>al</NICKNAME>");
        let img = Image::new(PNG.to_vec(), None);
        let out = with_photo(&c, Some(&img));
        let names: Vec<&str> = out.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["FN", "PHOTO", "NICKNAME"]);
        assert_eq!(photo_of(&out), Photo::Image(img.clone()));
        let out = with_photo(&c, None);
        let names: Vec<&str> = out.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["FN", "NICKNAME"]);
        // A vCard without a photo gets one at the end.
        let out = with_photo(&card("<FN>Al</FN>"), Some(&img));
        let names: Vec<&str> = out.elements().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["FN", "PHOTO"]);
    }

    #[test]
    fn metadata_and_data_payloads() {
        let img = Image::new(b"abc".to_vec(), Some("image/jpeg"));
        let m = img.metadata().to_bytes("");
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='a9993e364706816aba3e25717850c26c9cd0d89d' bytes='3' type='image/jpeg'/></metadata>"
        );
        assert_eq!(from_data(&img.data(), Some("image/jpeg")), Some(img));
        assert_eq!(from_data(&Element::new("data", "other"), None), None);
    }
}
