//! The avatar hash in presence (XEP-0398 §4, XEP-0153): every available
//! presence of an account carries `<x xmlns='vcard-temp:x:update'>` with
//! the hash of its current avatar — broadcast, reflected, answering probes,
//! directed — whatever hash the client put there, except a client's empty
//! `<photo/>`; a changed avatar is carried by the next presence.

mod avatar_helpers;
mod common;
mod pep_helpers;
use avatar_helpers::*;
use common::*;
use natter_store::Subscription;
use natter_xml::Stanza;
use pep_helpers::*;

const AF: &str = "alice@localhost/a";

/// Alice sends `presence`; returns the copies Bob and Alice herself get.
async fn send_presence(a: &mut Client, b: &mut Client, presence: &str) -> (Stanza, Stanza) {
    a.send(presence).await;
    let own = presence_from(a, AF).await;
    (presence_from(b, AF).await, own)
}

#[tokio::test]
async fn contacts_and_the_owner_see_the_current_hash() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    // No avatar yet: an empty photo.
    let (seen, own) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen).as_deref(), Some(""));
    assert_eq!(photo_of_presence(&own).as_deref(), Some(""));
    // A vCard photo: the next presence carries its hash.
    let img = png("vcard");
    assert_ok(&set_vcard(&mut a, "v", &photo(&img, "image/png")).await);
    let p = "<presence><show>away</show></presence>";
    let (seen, own) = send_presence(&mut a, &mut b, p).await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img)));
    assert_eq!(photo_of_presence(&own), Some(sha1_hex(&img)));
    assert!(text(&seen).contains("<show>away</show>"), "{}", text(&seen));
    // A PEP avatar: the same.
    let img2 = png("pep");
    assert_ok(&publish_avatar(&mut a, &img2, "image/png", None).await);
    let (seen, _) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img2)));
    // Disabled: empty again.
    let empty = format!("<metadata xmlns='{METADATA}'/>");
    assert_ok(&publish(&mut a, "off", METADATA, None, &empty, None).await);
    let (seen, _) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen).as_deref(), Some(""));
}

#[tokio::test]
async fn the_clients_update_element_is_replaced_but_an_empty_photo_kept() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let img = png("a");
    assert_ok(&set_vcard(&mut a, "v", &photo(&img, "image/png")).await);
    let hash = sha1_hex(&img);
    // A wrong (stale) hash.
    let wrong = format!(
        "<presence><x xmlns='{UPDATE}'><photo>{}</photo></x></presence>",
        sha1_hex(b"old")
    );
    let (seen, own) = send_presence(&mut a, &mut b, &wrong).await;
    assert_eq!(photo_of_presence(&seen), Some(hash.clone()));
    assert_eq!(photo_of_presence(&own), Some(hash.clone()));
    // An empty update ("not ready to advertise").
    let empty_x = format!("<presence><x xmlns='{UPDATE}'/></presence>");
    let (seen, _) = send_presence(&mut a, &mut b, &empty_x).await;
    assert_eq!(photo_of_presence(&seen), Some(hash.clone()));
    // The right hash stays, once.
    let right = format!("<presence><x xmlns='{UPDATE}'><photo>{hash}</photo></x></presence>");
    let (seen, _) = send_presence(&mut a, &mut b, &right).await;
    assert_eq!(photo_of_presence(&seen), Some(hash.clone()));
    // An empty photo (advertise no avatar) is the client's to send.
    let none = format!("<presence><x xmlns='{UPDATE}'><photo/></x></presence>");
    let (seen, _) = send_presence(&mut a, &mut b, &none).await;
    assert_eq!(photo_of_presence(&seen).as_deref(), Some(""));
}

#[tokio::test]
async fn probes_and_directed_presence_carry_the_hash() {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let img = png("probe");
    // A vCard stored before natterd knew of avatars: read from the store.
    let card = format!(
        "<vCard xmlns='vcard-temp'>{}</vCard>",
        photo(&img, "image/png")
    );
    srv.store.set_vcard(A, card.as_bytes()).await.unwrap();
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    // Bob comes online after Alice: her presence answers his probe.
    let mut b = Client::login(srv.addr, "bob", "pw", "b").await;
    b.send("<presence/>").await;
    let seen = presence_from(&mut b, AF).await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img)));
    // Directed presence to a stranger, and Bob's probe of Alice.
    let mut c = Client::online(srv.addr, "carol", "pw", "c").await;
    a.send("<presence to='carol@localhost/c'><status>hi</status></presence>")
        .await;
    let seen = presence_from(&mut c, AF).await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img)));
    b.send(format!("<presence type='probe' to='{A}'/>")).await;
    let seen = presence_from(&mut b, AF).await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img)));
    // Unavailable presence carries none.
    a.send("<presence type='unavailable'/>").await;
    let seen = presence_from(&mut b, AF).await;
    assert_eq!(photo_of_presence(&seen), None);
}

#[tokio::test]
async fn a_new_avatar_is_not_broadcast_until_the_next_presence() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    send_presence(&mut a, &mut b, "<presence/>").await;
    let img = png("later");
    assert_ok(&publish_avatar(&mut a, &img, "image/png", None).await);
    assert_ok(&set_vcard(&mut a, "v", &photo(&png("later2"), "image/png")).await);
    send_marker(&mut a, &b.jid.clone(), "m").await;
    let before = until_marker(&mut b, "m").await;
    assert!(!before.iter().any(|s| s.name() == "presence"), "{before:?}");
    let (seen, _) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&png("later2"))));
}

#[tokio::test]
async fn the_hash_survives_a_restart() {
    let srv = server(&["alice", "bob"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let img = png("kept");
    {
        let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
        assert_ok(&publish_avatar(&mut a, &img, "image/png", None).await);
    }
    let kept = srv.stop_keep_dir().await;
    let dir = kept.dir.path().to_owned();
    let srv = TestServer::start_with(|c| c.data_dir = dir).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut a = Client::login(srv.addr, "alice", "pw", "a").await;
    let (seen, _) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen), Some(sha1_hex(&img)));
    srv.stop().await;
    drop(kept);
}

#[tokio::test]
async fn a_removed_account_forgets_its_hash() {
    let srv = server(&["alice", "bob"]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    assert_ok(&set_vcard(&mut a, "v", &photo(&png("gone"), "image/png")).await);
    let r = a
        .iq(
            "rm",
            "<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>",
        )
        .await;
    assert_ok(&r);
    drop(a);
    // The name is taken again: the new account has no avatar.
    srv.add_user("alice", "pw2").await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut a = Client::login(srv.addr, "alice", "pw2", "a").await;
    let (seen, _) = send_presence(&mut a, &mut b, "<presence/>").await;
    assert_eq!(photo_of_presence(&seen).as_deref(), Some(""));
}
