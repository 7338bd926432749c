//! Who may see an account's "last seen" (its XEP-0012 last activity):
//! everyone, its contacts, or nobody — natter's own namespace
//! `urn:natter:last-seen:0`, set and read by the account itself:
//!
//! ```xml
//! <iq type='get' id='1'><visibility xmlns='urn:natter:last-seen:0'/></iq>
//! <iq type='set' id='2'><visibility xmlns='urn:natter:last-seen:0' who='nobody'/></iq>
//! ```
//!
//! The default is `contacts` (XEP-0012 §6 suggests answering only entities
//! subscribed to the account's presence). A blocked entity never sees it.

use super::iq::Reply;
use crate::c2s::session::Session;
use natter_store::Subscription;
use natter_xml::{Element, Stanza};

pub const NS: &str = "urn:natter:last-seen:0";
const KEY: &str = "who";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Who {
    Everyone,
    /// Accounts subscribed to the owner's presence.
    #[default]
    Contacts,
    Nobody,
}

impl Who {
    pub fn parse(s: &str) -> Option<Who> {
        Some(match s {
            "everyone" => Who::Everyone,
            "contacts" => Who::Contacts,
            "nobody" => Who::Nobody,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Who::Everyone => "everyone",
            Who::Contacts => "contacts",
            Who::Nobody => "nobody",
        }
    }
}

/// The owner's setting (the default when none was set).
async fn setting(s: &Session, owner: &str) -> Result<Who, natter_store::StoreError> {
    let v = s.shared.store.kv_get(NS, owner, KEY).await?;
    Ok(v.and_then(|b| Who::parse(std::str::from_utf8(&b).ok()?))
        .unwrap_or_default())
}

/// Whether `asker` may see `owner`'s last activity (blocking is checked
/// before: a blocked asker never gets here).
pub async fn allows(
    s: &Session,
    owner: &str,
    asker: &str,
) -> Result<bool, natter_store::StoreError> {
    Ok(match setting(s, owner).await? {
        Who::Everyone => true,
        Who::Nobody => false,
        Who::Contacts => {
            let item = s.shared.store.roster_item(owner, asker).await?;
            item.is_some_and(|i| matches!(i.subscription, Subscription::From | Subscription::Both))
        }
    })
}

/// The setting's get and set, on the sender's own account only.
pub async fn handle(s: &mut Session, st: &Stanza, own: bool, set: bool) -> Reply {
    if !own {
        return Reply::Error(
            "auth",
            "forbidden",
            Some("only the account itself sets who sees its last activity".into()),
        );
    }
    if !set {
        return match setting(s, &s.bare.clone()).await {
            Ok(who) => Reply::Result(Some(
                Element::new("visibility", NS).with_attr("who", who.as_str()),
            )),
            Err(_) => Reply::error("wait", "internal-server-error"),
        };
    }
    let Ok(el) = st.element() else {
        return Reply::bad_request("unreadable visibility");
    };
    let Some(who) = el
        .get_child("visibility", NS)
        .and_then(|v| v.attr("who"))
        .and_then(Who::parse)
    else {
        return Reply::bad_request("'who' must be everyone, contacts or nobody");
    };
    let store = &s.shared.store;
    match store
        .kv_put(NS, &s.bare, KEY, who.as_str().as_bytes())
        .await
    {
        Ok(()) => Reply::Result(None),
        Err(_) => Reply::error("wait", "internal-server-error"),
    }
}
