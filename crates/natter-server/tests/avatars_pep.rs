//! User avatars (XEP-0084) and nicknames (XEP-0172) as the ordinary PEP
//! nodes they are: contacts asking with `NODE+notify` get the metadata and
//! the nickname, fetch the image by id, and the access model clients set
//! with publish-options (open or presence) decides who else may read.
//! That someone got nothing is checked with a later message that arrives.

mod avatar_helpers;
mod common;
mod pep_helpers;
use avatar_helpers::*;
use common::*;
use natter_store::Subscription;
use natter_xml::Stanza;
use pep_helpers::*;

/// A session that announced capabilities asking for `nodes`.
async fn with_caps(srv: &TestServer, user: &str, resource: &str, nodes: &[&str]) -> Client {
    let mut c = Client::login(srv.addr, user, "pw", resource).await;
    announce_caps(&mut c, nodes).await;
    c
}

/// Asserts `c` got no PEP notification before `from`'s marker message.
async fn nothing_for(from: &mut Client, c: &mut Client, marker: &str) {
    let to = c.jid.clone();
    send_marker(from, &to, marker).await;
    let got = notifications(&until_marker(c, marker).await);
    assert!(got.is_empty(), "{}: unexpected {got:?}", c.jid);
}

/// Alice publishes an avatar with `access_model`; Bob (a contact asking
/// for the metadata) is notified and fetches the image by id; returns what
/// Carol (a stranger) gets asking for it.
async fn publish_and_fetch(access_model: &str) -> Stanza {
    let srv = server(&["alice", "bob", "carol"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = with_caps(&srv, "bob", "b", &[METADATA]).await;
    let mut c = with_caps(&srv, "carol", "c", &[METADATA]).await;
    let img = png(access_model);
    let id = sha1_hex(&img);
    let opts = [("pubsub#access_model", access_model)];
    assert_ok(&publish_avatar(&mut a, &img, "image/png", Some(&opts)).await);
    let n = next_notification(&mut b, METADATA).await;
    assert!(
        n.contains(&format!(
            "<item id='{id}'>{}</item>",
            metadata(&img, "image/png")
        )),
        "{n}"
    );
    let r = items(&mut b, "b1", A, DATA, "", &format!("<item id='{id}'/>")).await;
    assert_eq!(item_ids(&r), [id.as_str()]);
    assert!(
        text(&r).contains(&format!("<data xmlns='{DATA}'>{}</data>", b64(&img))),
        "{}",
        text(&r)
    );
    // A stranger is never notified, whatever the model.
    nothing_for(&mut a, &mut c, "m").await;
    items(&mut c, "c1", A, DATA, "", &format!("<item id='{id}'/>")).await
}

#[tokio::test]
async fn a_presence_avatar_is_for_contacts_only() {
    let r = publish_and_fetch("presence").await;
    assert_error(
        &r,
        "auth",
        "not-authorized",
        Some("presence-subscription-required"),
    );
}

#[tokio::test]
async fn an_open_avatar_is_readable_by_anyone() {
    let r = publish_and_fetch("open").await;
    let ids = item_ids(&r);
    assert_eq!(ids.len(), 1);
    assert!(
        text(&r).contains(&format!("<data xmlns='{DATA}'>")),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn nicknames_are_notified_to_contacts_that_ask() {
    let srv = server(&["alice", "bob", "carol", "dave"]).await;
    relate(&srv, "alice", "bob", Subscription::Both, &[]).await;
    relate(&srv, "alice", "dave", Subscription::From, &[]).await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let mut b = with_caps(&srv, "bob", "b", &[NICK]).await;
    let mut c = with_caps(&srv, "carol", "c", &[NICK]).await;
    let mut d = with_caps(&srv, "dave", "d", &[METADATA]).await;
    assert_ok(&publish(&mut a, "n1", NICK, Some("current"), &nick("Ally"), None).await);
    let n = next_notification(&mut b, NICK).await;
    assert!(
        n.contains(&format!(
            "<items node='{NICK}'><item id='current'><nick xmlns='{NICK}'>Ally</nick></item></items>"
        )),
        "{n}"
    );
    // A stranger, and a contact that did not ask: nothing.
    nothing_for(&mut a, &mut c, "m1").await;
    nothing_for(&mut a, &mut d, "m2").await;
    // A change is notified again; a session of Bob's that comes later
    // gets the newest when its capabilities are known.
    assert_ok(&publish(&mut a, "n2", NICK, Some("current"), &nick("Al"), None).await);
    let n = next_notification(&mut b, NICK).await;
    assert!(n.contains(&nick("Al")), "{n}");
    let mut b2 = Client::login(srv.addr, "bob", "pw", "b2").await;
    let seen = announce_caps(&mut b2, &[NICK]).await;
    let got = notifications(&seen);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].2.contains(&nick("Al")), "{got:?}");
    assert!(
        got[0].2.contains("<delay xmlns='urn:xmpp:delay'"),
        "{got:?}"
    );
}
