//! Node configuration (XEP-0060 §8.2, FORM_TYPE `pubsub#node_config`):
//! what a node's settings are, the PEP defaults (XEP-0163 §3), and the
//! settings a submitted form asks for.
//!
//! The store keeps a node's configuration as a submitted form (see
//! [`NodeConfig::to_bytes`]), so a field added later reads as its default
//! from older nodes.

use super::error::PepError;
use super::form::{self, Field};
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
    /// On an explicit subscription (which natterd does not offer: never).
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

const ACCESS: &[(&str, AccessModel)] = &[
    ("open", AccessModel::Open),
    ("presence", AccessModel::Presence),
    ("roster", AccessModel::Roster),
    ("whitelist", AccessModel::Whitelist),
];
const SEND_LAST: &[(&str, SendLast)] = &[
    ("never", SendLast::Never),
    ("on_sub", SendLast::OnSub),
    ("on_sub_and_presence", SendLast::OnSubAndPresence),
];
const NOTIFICATION_TYPES: &[(&str, bool)] = &[("headline", true), ("normal", false)];

fn name_of<T: PartialEq + Copy>(table: &[(&'static str, T)], v: T) -> &'static str {
    table.iter().find(|(_, x)| *x == v).map_or("", |(n, _)| n)
}

/// One setting a form asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Setting {
    AccessModel(AccessModel),
    RosterGroupsAllowed(Vec<String>),
    MaxItems(MaxItems),
    PersistItems(bool),
    SendLast(SendLast),
    NotifyRetract(bool),
    NotifyDelete(bool),
    NotifyConfig(bool),
    DeliverPayloads(bool),
    DeliverNotifications(bool),
    Headline(bool),
    /// `pubsub#publish_model`: only `publishers` (the owner) is offered,
    /// so it changes nothing.
    PublishersOnly,
    Title(String),
    Description(String),
    PayloadType(String),
}

impl Setting {
    fn apply(&self, c: &mut NodeConfig) {
        match self.clone() {
            Setting::AccessModel(v) => c.access_model = v,
            Setting::RosterGroupsAllowed(v) => c.roster_groups_allowed = v,
            Setting::MaxItems(v) => c.max_items = v,
            Setting::PersistItems(v) => c.persist_items = v,
            Setting::SendLast(v) => c.send_last_published_item = v,
            Setting::NotifyRetract(v) => c.notify_retract = v,
            Setting::NotifyDelete(v) => c.notify_delete = v,
            Setting::NotifyConfig(v) => c.notify_config = v,
            Setting::DeliverPayloads(v) => c.deliver_payloads = v,
            Setting::DeliverNotifications(v) => c.deliver_notifications = v,
            Setting::Headline(v) => c.headline = v,
            Setting::PublishersOnly => {}
            Setting::Title(v) => c.title = v,
            Setting::Description(v) => c.description = v,
            Setting::PayloadType(v) => c.payload_type = v,
        }
    }
}

/// The settings of one submitted form, each with its field name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings(Vec<(String, Setting)>);

impl Settings {
    /// Reads a submitted form of FORM_TYPE `form_type` (absent is
    /// accepted). A field natterd does not know is `unknown(var)`'s error;
    /// a value it cannot read is `bad-request`; a value it does not offer
    /// is `not-acceptable`.
    pub fn parse(
        x: &Element,
        form_type: &str,
        unknown: impl Fn(&str) -> PepError,
    ) -> Result<Settings, PepError> {
        if x.attr("type") != Some("submit") {
            return Err(PepError::BadRequest(
                "the form must be of type 'submit'".into(),
            ));
        }
        let mut out = Vec::new();
        for f in form::fields(x) {
            if f.var == "FORM_TYPE" {
                if f.one()? != form_type {
                    return Err(PepError::BadRequest(format!(
                        "FORM_TYPE must be {form_type}"
                    )));
                }
                continue;
            }
            let setting = match parse_field(&f)? {
                Some(s) => s,
                None => return Err(unknown(&f.var)),
            };
            out.push((f.var.clone(), setting));
        }
        Ok(Settings(out))
    }

    /// The configuration with these settings applied to `base`.
    pub fn applied_to(&self, base: &NodeConfig) -> NodeConfig {
        let mut c = base.clone();
        for (_, s) in &self.0 {
            s.apply(&mut c);
        }
        c
    }

    /// The first setting `config` does not already have (the field name):
    /// a publish-options precondition not met (XEP-0060 §7.1.5).
    pub fn unmet_by(&self, config: &NodeConfig) -> Option<&str> {
        self.0.iter().find_map(|(var, s)| {
            let mut c = config.clone();
            s.apply(&mut c);
            (c != *config).then_some(var.as_str())
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn boolean(f: &Field) -> Result<bool, PepError> {
    match f.one()?.as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(PepError::BadRequest(format!("{} takes a boolean", f.var))),
    }
}

fn choice<T: Copy>(f: &Field, table: &[(&str, T)]) -> Result<T, PepError> {
    let v = f.one()?;
    table
        .iter()
        .find(|(n, _)| *n == v)
        .map(|(_, t)| *t)
        .ok_or_else(|| PepError::NotAcceptable(format!("{} '{v}' is not offered", f.var)))
}

/// The setting a field asks for; None for a field natterd does not know.
fn parse_field(f: &Field) -> Result<Option<Setting>, PepError> {
    Ok(Some(match f.var.as_str() {
        "pubsub#access_model" => Setting::AccessModel(choice(f, ACCESS)?),
        "pubsub#roster_groups_allowed" => Setting::RosterGroupsAllowed(f.values.clone()),
        "pubsub#max_items" => Setting::MaxItems(match f.one()?.as_str() {
            "max" => MaxItems::Max,
            v => {
                let n: u32 = v.parse().map_err(|_| {
                    PepError::BadRequest("pubsub#max_items takes a number or 'max'".into())
                })?;
                if n == 0 || n > MAX_ITEMS {
                    return Err(PepError::NotAcceptable(format!(
                        "pubsub#max_items is 1 to {MAX_ITEMS}, or 'max'"
                    )));
                }
                MaxItems::Count(n)
            }
        }),
        "pubsub#persist_items" => Setting::PersistItems(boolean(f)?),
        "pubsub#send_last_published_item" => Setting::SendLast(choice(f, SEND_LAST)?),
        "pubsub#notify_retract" => Setting::NotifyRetract(boolean(f)?),
        "pubsub#notify_delete" => Setting::NotifyDelete(boolean(f)?),
        "pubsub#notify_config" => Setting::NotifyConfig(boolean(f)?),
        "pubsub#deliver_payloads" => Setting::DeliverPayloads(boolean(f)?),
        "pubsub#deliver_notifications" => Setting::DeliverNotifications(boolean(f)?),
        "pubsub#notification_type" => Setting::Headline(choice(f, NOTIFICATION_TYPES)?),
        "pubsub#publish_model" => {
            choice(f, &[("publishers", ())])?;
            Setting::PublishersOnly
        }
        "pubsub#title" => Setting::Title(f.text()),
        "pubsub#description" => Setting::Description(f.text()),
        "pubsub#type" => Setting::PayloadType(f.text()),
        _ => return Ok(None),
    }))
}

impl NodeConfig {
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

    /// (field, values) pairs.
    type Fields<'a> = &'a [(&'a str, &'a [&'a str])];

    fn submitted(form_type: &str, fields: Fields<'_>) -> Element {
        let mut f = vec![Field::hidden("FORM_TYPE", form_type)];
        for (var, values) in fields {
            f.push(Field::bare(var).values(values));
        }
        form::build("submit", &f)
    }

    fn unknown(var: &str) -> PepError {
        PepError::NotAcceptable(format!("unknown {var}"))
    }

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

    #[test]
    fn settings_apply_and_check_preconditions() {
        let x = submitted(
            PUBLISH_OPTIONS,
            &[
                ("pubsub#access_model", &["open"]),
                ("pubsub#max_items", &["max"]),
            ],
        );
        let s = Settings::parse(&x, PUBLISH_OPTIONS, unknown).unwrap();
        let d = NodeConfig::default();
        assert_eq!(s.unmet_by(&d), Some("pubsub#access_model"));
        let c = s.applied_to(&d);
        assert_eq!(c.access_model, AccessModel::Open);
        assert_eq!(c.max_items.count(), MAX_ITEMS);
        assert_eq!(s.unmet_by(&c), None);
        // 'max' and the same number keep as many items.
        let n = NodeConfig {
            max_items: MaxItems::Count(MAX_ITEMS),
            ..c.clone()
        };
        assert_eq!(s.unmet_by(&n), None);
    }

    #[test]
    fn bad_forms_are_refused_with_the_right_error() {
        let cases: &[(Fields<'_>, &str)] = &[
            (&[("pubsub#max_items", &["ten"])], "bad-request"),
            (&[("pubsub#max_items", &["0"])], "not-acceptable"),
            (&[("pubsub#max_items", &["100000"])], "not-acceptable"),
            (&[("pubsub#max_items", &["1", "2"])], "bad-request"),
            (&[("pubsub#persist_items", &["yes"])], "bad-request"),
            (&[("pubsub#access_model", &["authorize"])], "not-acceptable"),
            (&[("pubsub#publish_model", &["open"])], "not-acceptable"),
            (&[("pubsub#frobnicate", &["1"])], "not-acceptable"),
        ];
        for (fields, cond) in cases {
            let x = submitted(NODE_CONFIG, fields);
            let e = Settings::parse(&x, NODE_CONFIG, unknown).unwrap_err();
            assert_eq!(e.condition(), *cond, "{fields:?}");
        }
        let wrong_type = submitted(PUBLISH_OPTIONS, &[]);
        let e = Settings::parse(&wrong_type, NODE_CONFIG, unknown).unwrap_err();
        assert_eq!(e.condition(), "bad-request");
        let mut not_submit = submitted(NODE_CONFIG, &[]);
        not_submit.set_attr("type", "form");
        let e = Settings::parse(&not_submit, NODE_CONFIG, unknown).unwrap_err();
        assert_eq!(e.condition(), "bad-request");
    }
}
