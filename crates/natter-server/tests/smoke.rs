mod common;
use common::*;

#[tokio::test]
async fn two_users_chat_with_receipt() {
    let srv = TestServer::start().await;
    srv.add_user("alice", "secret-a").await;
    srv.add_user("bob", "secret-b").await;
    let mut a = Client::online(srv.addr, "alice", "secret-a", "phone").await;
    let mut b = Client::online(srv.addr, "bob", "secret-b", "laptop").await;
    a.send("<message to='bob@localhost' type='chat' id='m1'><body>hi bob</body><request xmlns='urn:xmpp:receipts'/></message>").await;
    let m = b.expect("message", |s| s.name() == "message").await;
    assert_eq!(m.from().as_deref(), Some("alice@localhost/phone"));
    assert!(m.has_child("stanza-id", "urn:xmpp:sid:0"), "{}", text(&m));
    b.send("<message to='alice@localhost/phone' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>").await;
    let r = a.expect("receipt", |s| s.name() == "message").await;
    assert!(r.has_child("received", "urn:xmpp:receipts"));
    assert_eq!(r.from().as_deref(), Some("bob@localhost/laptop"));
    srv.stop().await;
}
