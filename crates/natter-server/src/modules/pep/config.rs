//! Node configuration (XEP-0060 §8.2, FORM_TYPE `pubsub#node_config`):
//! what a node's settings are, the PEP defaults (XEP-0163 §3), and the
//! configuration as a form (what a submitted form asks for is in
//! `settings.rs`).
//!
//! The store keeps a node's configuration as a submitted form (see
//! [`NodeConfig::to_bytes`]), so a field added later reads as its default
//! from older nodes.

use super::form::{self, Field};
use super::settings::parse_field;
use super::MAX_ITEMS;
use natter_xml::{Element, Stanza};

pub const NODE_CONFIG: &str = "http://jabber.org/protocol/pubsub#node_config";
pub const PUBLISH_OPTIONS: &str = "http://jabber.org/protocol/pubsub#publish-options";

/// Who may read a node's items and get its notifications (XEP-0060 §4.5;
/// `authorize` is not offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessModel {
    /// Anyone.
    Open,
    /// The owner and contacts subscribed to its presence (from/both).
    Presence,
    /// The owner and presence subscribers in the allowed roster groups.
    Roster,
    /// The owner alone (there is no way to add others).
    Whitelist,
}

/// When a node's last item goes to an entity by itself (XEP-0060 §12.12).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendLast {
    Never,
    /// On subscription: for PEP, when a presence subscription to the owner
    /// is approved (explicit subscriptions are not offered).
    OnSub,
    /// Also when an entity that may read the node comes online asking for
    /// its notifications (XEP-0163 §4.3.4).
    OnSubAndPresence,
}

/// How many items a node keeps: a number, or `max`, the server's most
/// ([`MAX_ITEMS`]). Equal when they keep as many.
#[derive(Clone, Copy, Debug, Eq)]
pub enum MaxItems {
    Count(u32),
    Max,
}

impl MaxItems {
    pub fn count(self) -> u32 {
        match self {
            MaxItems::Count(n) => n,
            MaxItems::Max => MAX_ITEMS,
        }
    }
}

impl PartialEq for MaxItems {
    fn eq(&self, other: &MaxItems) -> bool {
        self.count() == other.count()
    }
}

/// A node's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    pub access_model: AccessModel,
    /// For [`AccessModel::Roster`]: the owner's roster groups that may read.
    pub roster_groups_allowed: Vec<String>,
    pub max_items: MaxItems,
    /// False: items are notified, never kept.
    pub persist_items: bool,
    pub send_last_published_item: SendLast,
    /// Notify retractions when the request does not say.
    pub notify_retract: bool,
    /// Notify the node's deletion.
    pub notify_delete: bool,
    /// Notify configuration changes.
    pub notify_config: bool,
    /// Notifications carry the item's payload.
    pub deliver_payloads: bool,
    /// Notifications are sent at all.
    pub deliver_notifications: bool,
    /// The notifications' message type: `headline` (true) or `normal`.
    pub headline: bool,
    pub title: String,
    pub description: String,
    /// The payload's namespace (informational).
    pub payload_type: String,
}

impl Default for NodeConfig {
    /// PEP's defaults (XEP-0163 §3 with XEP-0060 §16.4).
    fn default() -> NodeConfig {
        NodeConfig {
            access_model: AccessModel::Presence,
            roster_groups_allowed: Vec::new(),
            max_items: MaxItems::Count(1),
            persist_items: true,
            send_last_published_item: SendLast::OnSubAndPresence,
            notify_retract: true,
            notify_delete: true,
            notify_config: false,
            deliver_payloads: true,
            deliver_notifications: true,
            headline: true,
            title: String::new(),
            description: String::new(),
            payload_type: String::new(),
        }
    }
}

pub(super) const ACCESS: &[(&str, AccessModel)] = &[
    ("open", AccessModel::Open),
    ("presence", AccessModel::Presence),
    ("roster", AccessModel::Roster),
    ("whitelist", AccessModel::Whitelist),
];
pub(super) const SEND_LAST: &[(&str, SendLast)] = &[
    ("never", SendLast::Never),
    ("on_sub", SendLast::OnSub),
    ("on_sub_and_presence", SendLast::OnSubAndPresence),
];
pub(super) const NOTIFICATION_TYPES: &[(&str, bool)] = &[("headline", true), ("normal", false)];

fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("", |(n, _)| n)
}

impl NodeConfig {
    /// The configuration a new node `node` gets before the settings asked
    /// for: the PEP defaults, or for a bookmark node the private one of
    /// [`crate::modules::bookmarks::defaults`].
    pub fn default_for(node: &str) -> NodeConfig {
        crate::modules::bookmarks::defaults(node).unwrap_or_default()
    }

    /// The configuration as a data form: `form` (with field types, labels
    /// and options) to be filled in, or `submit` to be stored.
    pub fn form(&self, ty: &str) -> Element {
        let b = |v: bool| if v { "1" } else { "0" };
        let max = match self.max_items {
            MaxItems::Max => "max".to_owned(),
            MaxItems::Count(n) => n.to_string(),
        };
        let fields: Vec<Field> = vec![
            Field::hidden("FORM_TYPE", NODE_CONFIG),
            Field::new(
                "pubsub#title",
                "text-single",
                "A friendly name for the node",
            )
            .value(&self.title),
            Field::new(
                "pubsub#description",
                "text-single",
                "A description of the node",
            )
            .value(&self.description),
            Field::new("pubsub#type", "text-single", "The payload's namespace")
                .value(&self.payload_type),
            Field::new(
                "pubsub#access_model",
                "list-single",
                "Who may read the items",
            )
            .options(ACCESS.iter().map(|(n, _)| *n))
            .value(name_of(ACCESS, self.access_model)),
            Field::new(
                "pubsub#roster_groups_allowed",
                "list-multi",
                "Roster groups allowed to read the items",
            )
            .values(&self.roster_groups_allowed),
            Field::new("pubsub#publish_model", "list-single", "Who may publish")
                .options(["publishers"])
                .value("publishers"),
            Field::new(
                "pubsub#max_items",
                "text-single",
                "Most items kept (a number, or 'max')",
            )
            .value(&max),
            Field::new("pubsub#persist_items", "boolean", "Keep items")
                .value(b(self.persist_items)),
            Field::new(
                "pubsub#send_last_published_item",
                "list-single",
                "When to send the last item",
            )
            .options(SEND_LAST.iter().map(|(n, _)| *n))
            .value(name_of(SEND_LAST, self.send_last_published_item)),
            Field::new(
                "pubsub#deliver_notifications",
                "boolean",
                "Send notifications",
            )
            .value(b(self.deliver_notifications)),
            Field::new(
                "pubsub#deliver_payloads",
                "boolean",
                "Notifications carry payloads",
            )
            .value(b(self.deliver_payloads)),
            Field::new(
                "pubsub#notify_retract",
                "boolean",
                "Notify when items are retracted",
            )
            .value(b(self.notify_retract)),
            Field::new(
                "pubsub#notify_delete",
                "boolean",
                "Notify when the node is deleted",
            )
            .value(b(self.notify_delete)),
            Field::new(
                "pubsub#notify_config",
                "boolean",
                "Notify configuration changes",
            )
            .value(b(self.notify_config)),
            Field::new(
                "pubsub#notification_type",
                "list-single",
                "Notification message type",
            )
            .options(NOTIFICATION_TYPES.iter().map(|(n, _)| *n))
            .value(name_of(NOTIFICATION_TYPES, self.headline)),
        ];
        form::build(ty, &fields)
    }

    /// The form to store.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.form("submit").to_bytes("")
    }

    /// A stored configuration. Fields natterd no longer knows, or values
    /// it no longer offers, are left at their defaults.
    pub fn from_bytes(bytes: &[u8]) -> NodeConfig {
        let mut c = NodeConfig::default();
        let Ok(x) = Stanza::parse(bytes, "").and_then(|s| s.element()) else {
            tracing::error!("unreadable stored PEP node configuration; using the defaults");
            return c;
        };
        for f in form::fields(&x) {
            if let Ok(Some(s)) = parse_field(&f) {
                s.apply(&mut c);
            }
        }
        c
    }

    /// How many items the node keeps in the store (0 when it keeps none).
    pub fn keep_items(&self) -> usize {
        if self.persist_items {
            self.max_items.count() as usize
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let mut c = NodeConfig {
            access_model: AccessModel::Roster,
            roster_groups_allowed: vec!["Friends".into(), "A & <b>".into()],
            max_items: MaxItems::Max,
            persist_items: false,
            send_last_published_item: SendLast::Never,
            title: "t".into(),
            ..NodeConfig::default()
        };
        assert_eq!(NodeConfig::from_bytes(&c.to_bytes()), c);
        c.headline = false;
        c.notify_delete = false;
        assert_eq!(NodeConfig::from_bytes(&c.to_bytes()), c);
        assert_eq!(NodeConfig::from_bytes(b"garbage"), NodeConfig::default());
    }
}
