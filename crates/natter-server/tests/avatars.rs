//! XEP-0398: PEP avatars (XEP-0084) and vCard avatars (XEP-0153) kept the
//! same by the server — both conversions, disabled avatars, bad input, and
//! no conversion starting the other. The hash in presence is in
//! `avatars_presence.rs`, avatars and nicknames as PEP nodes in
//! `avatars_pep.rs`.

mod avatar_helpers;
mod common;
mod pep_helpers;
use avatar_helpers::*;
use common::*;
use natter_store::Subscription;
use pep_helpers::*;

#[tokio::test]
async fn the_account_advertises_the_conversion() {
    let srv = server(&["alice", "bob"]).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let r = b
        .iq(
            "d1",
            &format!("<iq type='get' id='d1' to='{A}'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"),
        )
        .await;
    assert_ok(&r);
    assert!(
        text(&r).contains(&format!("<feature var='{CONVERSION}'/>")),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn a_pep_avatar_becomes_the_vcard_photo() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    assert_ok(&set_vcard(&mut a, "v1", "<FN>Alice</FN><NICKNAME>al</NICKNAME>").await);
    let img = png("one");
    assert_ok(&publish_avatar(&mut a, &img, "image/png", None).await);
    // Anyone reads it in the vCard (XEP-0153 has no access control), the
    // rest of the vCard kept.
    let card = get_vcard(&mut b, "g1", A).await;
    assert_eq!(vcard_photo(&card), Some((img.clone(), "image/png".into())));
    let names: Vec<&str> = card.elements().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["FN", "NICKNAME", "PHOTO"]);
    // A new avatar replaces it; the type comes from the metadata.
    let img2 = png("two");
    assert_ok(&publish_avatar(&mut a, &img2, "image/webp", None).await);
    let card = get_vcard(&mut b, "g2", A).await;
    assert_eq!(vcard_photo(&card), Some((img2, "image/webp".into())));
    assert_eq!(card.elements().count(), 3);
}

#[tokio::test]
async fn an_empty_metadata_removes_the_photo() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_ok(&set_vcard(&mut a, "v1", "<FN>Alice</FN>").await);
    assert_ok(&publish_avatar(&mut a, &png("x"), "image/png", None).await);
    assert!(vcard_photo(&get_vcard(&mut a, "g1", A).await).is_some());
    let empty = format!("<metadata xmlns='{METADATA}'/>");
    assert_ok(&publish(&mut a, "off", METADATA, Some("off"), &empty, None).await);
    let card = get_vcard(&mut a, "g2", A).await;
    assert_eq!(vcard_photo(&card), None);
    assert_eq!(card.get_child("FN", "vcard-temp").unwrap().text(), "Alice");
    // Disabling with no vCard stores none.
    let srv2 = server(&["carol"]).await;
    let mut c = Client::online(srv2.addr, "carol", "pw", "c").await;
    assert_ok(&publish(&mut c, "off", METADATA, Some("off"), &empty, None).await);
    assert_eq!(srv2.store.vcard("carol@localhost").await.unwrap(), None);
}

#[tokio::test]
async fn metadata_naming_no_stored_image_leaves_the_vcard() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let img = png("kept");
    assert_ok(&publish_avatar(&mut a, &img, "image/png", None).await);
    // An image hosted elsewhere (url) and one never published: published
    // to PEP, the vCard keeps its photo.
    let url = format!(
        "<metadata xmlns='{METADATA}'><info id='{}' bytes='3' type='image/png' url='https://example.org/a.png'/></metadata>",
        sha1_hex(b"abc")
    );
    assert_ok(&publish(&mut a, "m1", METADATA, Some("u"), &url, None).await);
    let missing = metadata(&png("never published"), "image/png");
    assert_ok(&publish(&mut a, "m2", METADATA, Some("n"), &missing, None).await);
    let card = get_vcard(&mut a, "g", A).await;
    assert_eq!(vcard_photo(&card), Some((img, "image/png".into())));
}

#[tokio::test]
async fn bad_avatar_data_is_refused_before_anything_is_published() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let good = png("good");
    assert_ok(&publish_avatar(&mut a, &good, "image/png", None).await);
    // Data that is not base64.
    let bad = format!("<data xmlns='{DATA}'>not*base64</data>");
    assert_ok(&publish(&mut a, "d1", DATA, Some("bad"), &bad, None).await);
    let meta = format!(
        "<metadata xmlns='{METADATA}'><info id='bad' bytes='9' type='image/png'/></metadata>"
    );
    let r = publish(&mut a, "m1", METADATA, Some("bad"), &meta, None).await;
    assert_error(&r, "modify", "bad-request", None);
    assert!(text(&r).contains("base64"), "{}", text(&r));
    // An id that is not the image's SHA-1.
    let other = png("other");
    let wrong = "0000000000000000000000000000000000000000";
    let data = format!("<data xmlns='{DATA}'>{}</data>", b64(&other));
    assert_ok(&publish(&mut a, "d2", DATA, Some(wrong), &data, None).await);
    let meta = format!(
        "<metadata xmlns='{METADATA}'><info id='{wrong}' bytes='{}' type='image/png'/></metadata>",
        other.len()
    );
    let r = publish(&mut a, "m2", METADATA, Some(wrong), &meta, None).await;
    assert_error(&r, "modify", "bad-request", None);
    assert!(text(&r).contains(&sha1_hex(&other)), "{}", text(&r));
    // Neither metadata was published, the vCard kept the good photo.
    let r = items(&mut a, "i", A, METADATA, "", "").await;
    assert_eq!(item_ids(&r), [sha1_hex(&good)]);
    let card = get_vcard(&mut a, "g", A).await;
    assert_eq!(vcard_photo(&card), Some((good, "image/png".into())));
}

#[tokio::test]
async fn a_vcard_photo_becomes_the_pep_avatar() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce_caps(&mut b, &[METADATA]).await;
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    let img = png("vcard");
    let id = sha1_hex(&img);
    let vcard = format!("<FN>Alice</FN>{}", photo(&img, "image/png"));
    assert_ok(&set_vcard(&mut a, "v1", &vcard).await);
    // Bob is notified of the metadata.
    let n = next_notification(&mut b, METADATA).await;
    assert!(n.contains(&metadata(&img, "image/png")), "{n}");
    assert!(n.contains(&format!("<item id='{id}'>")), "{n}");
    // The nodes were created open: a stranger reads the data by id.
    let data = payloads(&mut c, "i1", A, DATA).await;
    assert_eq!(data, [format!("<data xmlns='{DATA}'>{}</data>", b64(&img))]);
    let r = items(&mut c, "i2", A, DATA, "", &format!("<item id='{id}'/>")).await;
    assert_eq!(item_ids(&r), [id.as_str()]);
    let meta = payloads(&mut c, "i3", A, METADATA).await;
    assert_eq!(meta, [metadata(&img, "image/png")]);
    // The same photo again (the nickname changed): nothing republished.
    let vcard = format!("<FN>Alice A.</FN>{}", photo(&img, "image/png"));
    assert_ok(&set_vcard(&mut a, "v2", &vcard).await);
    // No photo: an empty metadata (avatar disabled).
    assert_ok(&set_vcard(&mut a, "v3", "<FN>Alice</FN>").await);
    let n = next_notification(&mut b, METADATA).await;
    assert!(
        n.contains(&format!("<metadata xmlns='{METADATA}'/>")),
        "{n}"
    );
    let meta = payloads(&mut c, "i4", A, METADATA).await;
    assert_eq!(meta, [format!("<metadata xmlns='{METADATA}'/>")]);
    // Again without a photo: nothing more.
    assert_ok(&set_vcard(&mut a, "v4", "<FN>Al</FN>").await);
    send_marker(&mut a, &b.jid.clone(), "end").await;
    let before = until_marker(&mut b, "end").await;
    assert!(notifications(&before).is_empty(), "{before:?}");
}

#[tokio::test]
async fn a_vcard_photo_keeps_the_access_model_of_existing_nodes() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    let presence = [("pubsub#access_model", "presence")];
    assert_ok(&publish_avatar(&mut a, &png("p"), "image/png", Some(&presence)).await);
    let img = png("from vcard");
    assert_ok(&set_vcard(&mut a, "v", &photo(&img, "image/jpeg")).await);
    // Bob (a contact) reads the new image; Carol still may not.
    let meta = payloads(&mut b, "i1", A, METADATA).await;
    assert_eq!(meta, [metadata(&img, "image/jpeg")]);
    let r = items(&mut c, "i2", A, DATA, "", "").await;
    assert_error(
        &r,
        "auth",
        "not-authorized",
        Some("presence-subscription-required"),
    );
    let r = owner_iq(&mut a, "cfg", "get", &format!("<configure node='{DATA}'/>")).await;
    assert!(text(&r).contains("<value>presence</value>"), "{}", text(&r));
}

#[tokio::test]
async fn a_vcard_photo_that_is_not_base64_stores_nothing() {
    let srv = server(&["alice"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_ok(&set_vcard(&mut a, "v1", "<FN>Before</FN>").await);
    let r = set_vcard(
        &mut a,
        "v2",
        "<FN>After</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>@@not base64@@</BINVAL></PHOTO>",
    )
    .await;
    assert_error(&r, "modify", "bad-request", None);
    assert!(text(&r).contains("BINVAL"), "{}", text(&r));
    let card = get_vcard(&mut a, "g", A).await;
    assert_eq!(card.get_child("FN", "vcard-temp").unwrap().text(), "Before");
    let r = items(&mut a, "i", A, METADATA, "", "").await;
    assert_error(&r, "cancel", "item-not-found", None);
}

#[tokio::test]
async fn conversions_do_not_start_each_other() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    announce_caps(&mut b, &[METADATA, DATA]).await;
    // PEP → vCard: the vCard changes, PEP gets only the client's two
    // publishes.
    let img = png("loop");
    assert_ok(&publish_avatar(&mut a, &img, "image/png", None).await);
    send_marker(&mut a, &b.jid.clone(), "m1").await;
    let got = notifications(&until_marker(&mut b, "m1").await);
    let nodes: Vec<&str> = got.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(nodes, [DATA, METADATA]);
    // vCard → PEP: one data and one metadata publish, the vCard as sent.
    let img2 = png("loop2");
    let sent = format!("<FN>A</FN>{}", photo(&img2, "image/png"));
    assert_ok(&set_vcard(&mut a, "v", &sent).await);
    send_marker(&mut a, &b.jid.clone(), "m2").await;
    let got = notifications(&until_marker(&mut b, "m2").await);
    let nodes: Vec<&str> = got.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(nodes, [DATA, METADATA]);
    let stored = srv.store.vcard(A).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(stored).unwrap(),
        format!("<vCard xmlns='vcard-temp'>{sent}</vCard>")
    );
}
