//! Helpers for the avatar tests (`avatars*.rs`): images, their hashes,
//! vCard requests, avatar publishes, the hash in presence. Used with
//! `pep_helpers`.
#![allow(dead_code)]

use crate::common::{text, Client};
use crate::pep_helpers::{assert_ok, item_ids, items, publish, PUBSUB};
use base64::Engine;
use natter_xml::Stanza;
use sha1::{Digest, Sha1};

pub const DATA: &str = "urn:xmpp:avatar:data";
pub const METADATA: &str = "urn:xmpp:avatar:metadata";
pub const UPDATE: &str = "vcard-temp:x:update";
pub const CONVERSION: &str = "urn:xmpp:pep-vcard-conversion:0";

/// A small "PNG" (the signature, then `tag`): each tag a different image.
pub fn png(tag: &str) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(tag.as_bytes());
    b
}

pub fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Sets the session's vCard to `<vCard>inner</vCard>`; returns the reply.
pub async fn set_vcard(c: &mut Client, id: &str, inner: &str) -> Stanza {
    c.iq(
        id,
        &format!("<iq type='set' id='{id}'><vCard xmlns='vcard-temp'>{inner}</vCard></iq>"),
    )
    .await
}

/// A vCard PHOTO element with this image.
pub fn photo(image: &[u8], mime: &str) -> String {
    format!(
        "<PHOTO><TYPE>{mime}</TYPE><BINVAL>{}</BINVAL></PHOTO>",
        b64(image)
    )
}

/// `owner`'s vCard as the session reads it.
pub async fn get_vcard(c: &mut Client, id: &str, owner: &str) -> natter_xml::Element {
    let r = c
        .iq(
            id,
            &format!("<iq type='get' id='{id}' to='{owner}'><vCard xmlns='vcard-temp'/></iq>"),
        )
        .await;
    assert_ok(&r);
    r.element()
        .unwrap()
        .get_child("vCard", "vcard-temp")
        .expect("a vCard")
        .clone()
}

/// The decoded BINVAL and the TYPE of a vCard's PHOTO, if any.
pub fn vcard_photo(card: &natter_xml::Element) -> Option<(Vec<u8>, String)> {
    let p = card.get_child("PHOTO", "vcard-temp")?;
    let bin = p.get_child("BINVAL", "vcard-temp")?.text();
    let ty = p
        .get_child("TYPE", "vcard-temp")
        .map(|t| t.text())
        .unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(bin.split_whitespace().collect::<String>())
        .unwrap();
    Some((bytes, ty))
}

/// The metadata payload naming `image` (id, bytes, type).
pub fn metadata(image: &[u8], mime: &str) -> String {
    format!(
        "<metadata xmlns='{METADATA}'><info id='{}' bytes='{}' type='{mime}'/></metadata>",
        sha1_hex(image),
        image.len()
    )
}

/// Publishes `image` as a client does (data, then metadata; item ids its
/// SHA-1) with publish-options `options` on both; returns the metadata
/// publish's reply (the data publish must succeed).
pub async fn publish_avatar(
    c: &mut Client,
    image: &[u8],
    mime: &str,
    options: Option<&[(&str, &str)]>,
) -> Stanza {
    let id = sha1_hex(image);
    let data = format!("<data xmlns='{DATA}'>{}</data>", b64(image));
    assert_ok(&publish(c, "pa-data", DATA, Some(&id), &data, options).await);
    publish(
        c,
        "pa-meta",
        METADATA,
        Some(&id),
        &metadata(image, mime),
        options,
    )
    .await
}

/// The payload XML of the items of `owner`'s `node` (must succeed).
pub async fn payloads(c: &mut Client, id: &str, owner: &str, node: &str) -> Vec<String> {
    let r = items(c, id, owner, node, "", "").await;
    item_ids(&r);
    let el = r.element().unwrap();
    el.get_child("pubsub", PUBSUB)
        .and_then(|p| p.get_child("items", PUBSUB))
        .unwrap()
        .elements()
        .map(|i| {
            let p = i.elements().next().expect("an item payload");
            String::from_utf8(p.to_bytes("")).unwrap()
        })
        .collect()
}

/// What the `vcard-temp:x:update` of a presence says: None without one,
/// Some("") for an empty `<photo/>`, else the hash. Panics on two.
pub fn photo_of_presence(p: &Stanza) -> Option<String> {
    let el = p.element().unwrap();
    let updates: Vec<_> = el
        .elements()
        .filter(|e| e.name == "x" && e.ns == UPDATE)
        .collect();
    assert!(updates.len() <= 1, "{}", text(p));
    updates.first().map(|x| {
        x.get_child("photo", UPDATE)
            .map(|p| p.text())
            .expect("a photo element")
    })
}

/// Reads until a presence from `from` (a full JID) arrives.
pub async fn presence_from(c: &mut Client, from: &str) -> Stanza {
    c.expect("a presence", |s| {
        s.name() == "presence" && s.from().as_deref() == Some(from)
    })
    .await
}
