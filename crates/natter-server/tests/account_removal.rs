//! Account removal (XEP-0077 §3.2) and the refusal of in-band registration.

mod common;
use common::*;
use natter_store::{OfflineMessage, RosterItem, Subscription};

const REGISTER: &str = "jabber:iq:register";

fn item(jid: &str, sub: Subscription) -> RosterItem {
    RosterItem {
        jid: jid.into(),
        subscription: sub,
        in_roster: true,
        ..RosterItem::default()
    }
}

/// Rows that mention `jid` (the bare JID, or a full JID of it) in any
/// column of any table, as (table, owner column if the table has one).
fn rows_mentioning(db: &std::path::Path, jid: &str) -> Vec<(String, Option<String>)> {
    let c = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap();
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(tables.len() >= 8, "{tables:?}");
    let mut found = Vec::new();
    for t in tables {
        let cols: Vec<String> = c
            .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let has_owner = cols.iter().any(|c| c == "owner");
        for col in &cols {
            let owner_expr = if has_owner { "owner" } else { "NULL" };
            let sql = format!(
                "SELECT {owner_expr} FROM \"{t}\" WHERE CAST(\"{col}\" AS TEXT) = ?1 \
                 OR CAST(\"{col}\" AS TEXT) LIKE ?2 ESCAPE '\\'"
            );
            let like = format!("{}/%", jid.replace('%', "\\%").replace('_', "\\_"));
            let owners: Vec<Option<String>> = c
                .prepare(&sql)
                .unwrap()
                .query_map([jid, like.as_str()], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            for o in owners {
                found.push((format!("{t}.{col}"), o));
            }
        }
    }
    found
}

#[tokio::test]
async fn removal_deletes_every_row_and_updates_the_contacts() {
    let srv = TestServer::start().await;
    for u in ["alice", "bob", "carol", "dave"] {
        srv.add_user(u, "pw").await;
    }
    let store = &srv.store;
    // alice <-> bob both ways; alice asked carol (pending); dave sees alice.
    store
        .roster_put(
            "alice@localhost",
            &item("bob@localhost", Subscription::Both),
        )
        .await
        .unwrap();
    store
        .roster_put(
            "bob@localhost",
            &item("alice@localhost", Subscription::Both),
        )
        .await
        .unwrap();
    let mut asked = item("carol@localhost", Subscription::None);
    asked.ask_out = true;
    store.roster_put("alice@localhost", &asked).await.unwrap();
    let pending = RosterItem {
        jid: "alice@localhost".into(),
        pending_in: true,
        ..RosterItem::default()
    };
    store.roster_put("carol@localhost", &pending).await.unwrap();
    store
        .roster_put(
            "alice@localhost",
            &item("dave@localhost", Subscription::From),
        )
        .await
        .unwrap();
    store
        .roster_put("dave@localhost", &item("alice@localhost", Subscription::To))
        .await
        .unwrap();
    // Everything else an account has.
    store
        .set_last_activity("alice@localhost", 1, "gone")
        .await
        .unwrap();
    let queued = OfflineMessage {
        from: "bob@localhost/b".into(),
        stanza_id: "s1".into(),
        stamp_unix_ms: 1,
        stanza: b"<message from='bob@localhost/b' to='alice@localhost'><body>q</body></message>"
            .to_vec(),
        msg_id: "q1".into(),
    };
    store
        .offline_push("alice@localhost", &queued)
        .await
        .unwrap();

    let mut b = Client::online(srv.addr, "bob", "pw", "b").await;
    let mut d = Client::online(srv.addr, "dave", "pw", "d").await;
    let mut a2 = Client::login(srv.addr, "alice", "pw", "a2").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    for (id, iq) in [
        ("v", "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>A</FN></vCard></iq>".to_string()),
        ("p", "<iq type='set' id='p'><query xmlns='jabber:iq:private'><prefs xmlns='x:prefs'>1</prefs></query></iq>".to_string()),
        ("l", "<iq type='set' id='l'><visibility xmlns='urn:natter:last-seen:0' who='nobody'/></iq>".to_string()),
        ("k", "<iq type='set' id='k'><block xmlns='urn:xmpp:blocking'><item jid='spam@localhost'/></block></iq>".to_string()),
    ] {
        let r = a.iq(id, &iq).await;
        assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    }
    // The queued message went to alice's session with its initial
    // presence: queue another, left in the store.
    store
        .offline_push("alice@localhost", &queued)
        .await
        .unwrap();
    let db = srv.dir.path().join("natter.sqlite3");
    let before = rows_mentioning(&db, "alice@localhost");
    for col in [
        "accounts.jid",
        "roster.owner",
        "roster_versions.owner",
        "offline.owner",
        "vcards.owner",
        "last_activity.owner",
        "kv.owner",
    ] {
        assert!(
            before.iter().any(|(c, _)| c == col),
            "{col} has no row of alice's to delete: {before:?}"
        );
    }

    // A register get says who we are.
    let r = a
        .iq(
            "g",
            &format!("<iq type='get' id='g'><query xmlns='{REGISTER}'/></iq>"),
        )
        .await;
    assert!(text(&r).contains("<registered/>"), "{}", text(&r));
    assert!(
        text(&r).contains("<username>alice</username>"),
        "{}",
        text(&r)
    );
    // Anything but <remove/> is refused.
    let r = a
        .iq(
            "c",
            &format!("<iq type='set' id='c'><query xmlns='{REGISTER}'><username>alice</username><password>x</password></query></iq>"),
        )
        .await;
    assert!(text(&r).contains("<not-allowed "), "{}", text(&r));

    let r = a
        .iq(
            "rm",
            &format!("<iq type='set' id='rm'><query xmlns='{REGISTER}'><remove/></query></iq>"),
        )
        .await;
    assert_eq!(r.stanza_type().as_deref(), Some("result"), "{}", text(&r));
    assert_eq!(a.stream_error().await.as_deref(), Some("not-authorized"));
    assert_eq!(a2.stream_error().await.as_deref(), Some("not-authorized"));

    // Bob: alice goes unavailable and his item loses its subscription.
    b.expect("alice unavailable", |s| {
        s.name() == "presence"
            && s.stanza_type().as_deref() == Some("unavailable")
            && s.from().as_deref() == Some("alice@localhost/a")
    })
    .await;
    b.expect("roster push", |s| {
        s.has_child("query", "jabber:iq:roster")
            && text(s).contains("jid='alice@localhost'")
            && text(s).contains("subscription='none'")
    })
    .await;
    d.expect("roster push", |s| {
        s.has_child("query", "jabber:iq:roster") && text(s).contains("subscription='none'")
    })
    .await;
    let bi = store
        .roster_item("bob@localhost", "alice@localhost")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bi.subscription, Subscription::None);
    assert!(!bi.ask_out && !bi.pending_in);
    // Carol's hidden pending request is gone entirely.
    assert!(store
        .roster_item("carol@localhost", "alice@localhost")
        .await
        .unwrap()
        .is_none());

    // Messages to alice now: service-unavailable, nothing queued.
    b.send("<message to='alice@localhost' id='m1' type='chat'><body>?</body></message>")
        .await;
    let e = b.expect("error", |s| s.id().as_deref() == Some("m1")).await;
    assert!(text(&e).contains("<service-unavailable "), "{}", text(&e));
    // Alice cannot log in any more.
    let mut again = Client::connect(srv.addr).await;
    assert!(!again.auth("alice", "pw", "SCRAM-SHA-256").await);

    // No row of alice's is left in any table (every table of the schema,
    // so tables added later are covered). What remains is other accounts'
    // own records about her: their roster items, now without subscription.
    let kept = srv.stop_keep_dir().await;
    let left = rows_mentioning(&kept.dir.path().join("natter.sqlite3"), "alice@localhost");
    for (col, owner) in &left {
        assert!(
            owner.as_deref().is_some_and(|o| o != "alice@localhost"),
            "{col} still has a row of alice's: {left:?}"
        );
    }
    assert!(
        left.iter().all(|(c, _)| c.starts_with("roster")),
        "{left:?}"
    );
    drop(kept);
}

#[tokio::test]
async fn in_band_registration_is_refused_and_not_advertised() {
    let srv = TestServer::start().await;
    let mut c = Client::connect(srv.addr).await;
    c.open().await;
    let f = c.stanza().await;
    assert_eq!(f.name(), "features");
    assert!(!text(&f).contains("iq-register"), "{}", text(&f));
    c.send(format!(
        "<iq type='get' id='r1'><query xmlns='{REGISTER}'/></iq>"
    ))
    .await;
    let r = c.stanza().await;
    assert_eq!(r.id().as_deref(), Some("r1"));
    assert!(text(&r).contains("<service-unavailable "), "{}", text(&r));
    c.send(format!(
        "<iq type='set' id='r2'><query xmlns='{REGISTER}'><username>eve</username><password>pw</password></query></iq>"
    ))
    .await;
    let r = c.stanza().await;
    assert!(text(&r).contains("<service-unavailable "), "{}", text(&r));
    assert!(!srv.store.account_exists("eve@localhost").await.unwrap());
    // The server's disco does not list jabber:iq:register.
    srv.add_user("alice", "pw").await;
    let mut a = Client::online(srv.addr, "alice", "pw", "a").await;
    let r = a
        .iq(
            "d",
            "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
        )
        .await;
    assert!(!text(&r).contains(REGISTER), "{}", text(&r));
    srv.stop().await;
}
