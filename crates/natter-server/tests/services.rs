//! Service basics: disco, caps, ping, version, time, vCard.

mod common;
use common::*;

#[tokio::test]
async fn disco_ping_version_time_vcard() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a.iq("d", "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>").await;
    let el = r.element().unwrap();
    let q = el
        .get_child("query", "http://jabber.org/protocol/disco#info")
        .unwrap();
    let features: Vec<&str> = q
        .elements()
        .filter(|e| e.name == "feature")
        .filter_map(|e| e.attr("var"))
        .collect();
    for f in [
        "urn:xmpp:ping",
        "jabber:iq:version",
        "urn:xmpp:time",
        "vcard-temp",
        "jabber:iq:last",
        "msgoffline",
        "urn:xmpp:sid:0",
    ] {
        assert!(features.contains(&f), "{f} missing from {features:?}");
    }
    let id = q.elements().find(|e| e.name == "identity").unwrap();
    assert_eq!(
        (id.attr("category"), id.attr("type")),
        (Some("server"), Some("im"))
    );
    // Every feature announced is one the server answers: no stray ones.
    assert_eq!(
        features.len(),
        natter_server::modules::disco::SERVER_FEATURES.len()
    );
    let r = a.iq("i", "<iq type='get' id='i' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let r = a
        .iq(
            "p",
            "<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    let r = a
        .iq(
            "v",
            "<iq type='get' id='v' to='localhost'><query xmlns='jabber:iq:version'/></iq>",
        )
        .await;
    assert!(text(&r).contains("<name>natter</name>"), "{}", text(&r));
    let r = a
        .iq(
            "t",
            "<iq type='get' id='t' to='localhost'><time xmlns='urn:xmpp:time'/></iq>",
        )
        .await;
    assert!(text(&r).contains("<utc>20"), "{}", text(&r));
    let r = a
        .iq(
            "u",
            "<iq type='get' id='u' to='localhost'><unknown xmlns='urn:example'/></iq>",
        )
        .await;
    assert!(text(&r).contains("service-unavailable"), "{}", text(&r));
    // vCard: set own, read by another user, refuse to set someone else's.
    let r = a.iq("vs", "<iq type='set' id='vs'><vCard xmlns='vcard-temp'><FN>Alice &amp; Co</FN><NICKNAME>al</NICKNAME></vCard></iq>").await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let r = b
        .iq(
            "vg",
            "<iq type='get' id='vg' to='alice@localhost'><vCard xmlns='vcard-temp'/></iq>",
        )
        .await;
    assert!(text(&r).contains("<FN>Alice &amp; Co</FN>"), "{}", text(&r));
    let r = b.iq("vx", "<iq type='set' id='vx' to='alice@localhost'><vCard xmlns='vcard-temp'><FN>pwned</FN></vCard></iq>").await;
    assert!(text(&r).contains("forbidden"), "{}", text(&r));
    let r = b
        .iq(
            "ve",
            "<iq type='get' id='ve'><vCard xmlns='vcard-temp'/></iq>",
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    // IQ to a resource that does not exist.
    let r = b
        .iq(
            "rx",
            "<iq type='get' id='rx' to='alice@localhost/nope'><ping xmlns='urn:xmpp:ping'/></iq>",
        )
        .await;
    assert!(text(&r).contains("service-unavailable"), "{}", text(&r));
    // IQ routed to a resource and answered by it.
    b.send("<iq type='get' id='rr' to='alice@localhost/a'><ping xmlns='urn:xmpp:ping'/></iq>")
        .await;
    let q = a
        .expect("routed ping", |s| s.id().as_deref() == Some("rr"))
        .await;
    assert_eq!(q.from().as_deref(), Some("bob@localhost/b"));
    a.send("<iq type='result' id='rr' to='bob@localhost/b'/>")
        .await;
    let r = b.expect("pong", |s| s.id().as_deref() == Some("rr")).await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"));
    srv.stop().await;
}

#[tokio::test]
async fn caps_in_stream_features() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "pw").await;
    let mut c = Client::connect(srv.addr).await;
    assert!(c.auth("alice", "pw", "SCRAM-SHA-256").await);
    c.open().await;
    let f = c.stanza().await;
    let caps = f
        .child("c", "http://jabber.org/protocol/caps")
        .expect("caps in features");
    let ver = caps.attr(&f, "ver").unwrap().into_owned();
    let node = caps.attr(&f, "node").unwrap().into_owned();
    c.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
        .await;
    c.expect("bind", |s| s.id().as_deref() == Some("b")).await;
    let r = c.iq("d", &format!("<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='{node}#{ver}'/></iq>")).await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    srv.stop().await;
}
