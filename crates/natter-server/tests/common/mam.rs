//! Helpers for the message archive (XEP-0313) tests: two accounts, a
//! query and its parsed answer, a message exchange.

use super::{text, Client, TestServer};
use natter_xml::{Element, Stanza};

pub const MAM: &str = "urn:xmpp:mam:2";
pub const RSM: &str = "http://jabber.org/protocol/rsm";
pub const FWD: &str = "urn:xmpp:forward:0";

pub async fn two_users_with(f: impl FnOnce(&mut natter_server::Config)) -> TestServer {
    let srv = TestServer::start_with(f).await;
    srv.add_user("alice", "pw").await;
    srv.add_user("bob", "pw").await;
    srv
}

pub async fn two_users() -> TestServer {
    two_users_with(|_| {}).await
}

/// One archived message as a query returned it.
#[derive(Debug)]
pub struct Item {
    pub id: String,
    pub stamp: String,
    pub message: Element,
}

impl Item {
    pub fn body(&self) -> Option<String> {
        self.message
            .get_child("body", "jabber:client")
            .map(|b| b.text())
    }
}

/// The outcome of a query: results, then the IQ answer.
pub struct Answer {
    pub items: Vec<Item>,
    pub iq: Stanza,
}

impl Answer {
    pub fn ids(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.id.as_str()).collect()
    }
    pub fn bodies(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|i| i.body().unwrap_or_default())
            .collect()
    }
    pub fn fin(&self) -> Element {
        let el = self.iq.element().unwrap();
        assert_eq!(
            self.iq.stanza_type().as_deref(),
            Some("result"),
            "{}",
            text(&self.iq)
        );
        el.get_child("fin", MAM).expect("fin").clone()
    }
    pub fn complete(&self) -> bool {
        self.fin().attr("complete") == Some("true")
    }
    pub fn rsm(&self, name: &str) -> Option<String> {
        self.fin()
            .get_child("set", RSM)
            .and_then(|s| s.get_child(name, RSM))
            .map(|e| e.text())
    }
    /// The error condition of a failed query.
    pub fn error(&self) -> String {
        assert_eq!(
            self.iq.stanza_type().as_deref(),
            Some("error"),
            "{}",
            text(&self.iq)
        );
        let el = self.iq.element().unwrap();
        let err = el.get_child("error", "jabber:client").expect("error");
        let cond = err
            .elements()
            .find(|e| e.ns == "urn:ietf:params:xml:ns:xmpp-stanzas" && e.name != "text")
            .map(|e| e.name.clone())
            .unwrap_or_default();
        cond
    }
}

/// A data-form field.
pub fn field(var: &str, value: &str) -> String {
    format!("<field var='{var}'><value>{value}</value></field>")
}

/// Sends a query (form fields, RSM children, extra children) with `to`
/// (None: own account) and collects results until the IQ answer.
pub async fn query_to(
    c: &mut Client,
    to: Option<&str>,
    fields: &str,
    rsm: &str,
    extra: &str,
) -> Answer {
    let qid = format!("q{}", rand_id());
    let to = to.map(|t| format!(" to='{t}'")).unwrap_or_default();
    let form = if fields.is_empty() {
        String::new()
    } else {
        format!(
            "<x xmlns='jabber:x:data' type='submit'>{}{fields}</x>",
            field("FORM_TYPE", MAM)
        )
    };
    let set = if rsm.is_empty() {
        String::new()
    } else {
        format!("<set xmlns='{RSM}'>{rsm}</set>")
    };
    c.send(format!(
        "<iq type='set' id='{qid}'{to}><query xmlns='{MAM}' queryid='{qid}'>{form}{set}{extra}</query></iq>"
    ))
    .await;
    let mut items = Vec::new();
    loop {
        let st = c.stanza().await;
        if st.name() == "iq" && st.id().as_deref() == Some(qid.as_str()) {
            return Answer { items, iq: st };
        }
        if st.name() != "message" {
            continue;
        }
        let el = st.element().unwrap();
        let Some(result) = el.get_child("result", MAM) else {
            continue; // a live message
        };
        assert_eq!(result.attr("queryid"), Some(qid.as_str()));
        let fwd = result.get_child("forwarded", FWD).expect("forwarded");
        let stamp = fwd
            .get_child("delay", "urn:xmpp:delay")
            .and_then(|d| d.attr("stamp"))
            .expect("delay")
            .to_owned();
        let message = fwd
            .get_child("message", "jabber:client")
            .expect("a jabber:client message inside forwarded")
            .clone();
        items.push(Item {
            id: result.attr("id").unwrap().to_owned(),
            stamp,
            message,
        });
    }
}

pub async fn query(c: &mut Client, fields: &str, rsm: &str) -> Answer {
    query_to(c, None, fields, rsm, "").await
}

pub fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Sends `n` chat messages from `from` to `to_jid` and waits until `to`
/// received them all; returns the stanza-ids they arrived with.
pub async fn exchange(
    from: &mut Client,
    to: &mut Client,
    to_jid: &str,
    tag: &str,
    n: usize,
) -> Vec<String> {
    for i in 0..n {
        from.send(format!(
            "<message to='{to_jid}' type='chat' id='{tag}{i}'><body>{tag} {i}</body></message>"
        ))
        .await;
    }
    let mut ids = Vec::new();
    for i in 0..n {
        let want = format!("{tag}{i}");
        let m = to
            .expect("message", |s| {
                s.name() == "message" && s.id().as_deref() == Some(&want)
            })
            .await;
        let el = m.element().unwrap();
        let sid = el
            .get_child("stanza-id", "urn:xmpp:sid:0")
            .expect("stanza-id");
        ids.push(sid.attr("id").unwrap().to_owned());
    }
    ids
}
