//! The settings a submitted node_config or publish-options form asks for
//! (XEP-0060 §7.1.5, §8.2.4): read from the form's fields, applied to a
//! configuration, or checked against one as preconditions.

use super::config::{
    AccessModel, MaxItems, NodeConfig, SendLast, ACCESS, NOTIFICATION_TYPES, SEND_LAST,
};
use super::error::PepError;
use super::form::{self, Field};
use super::MAX_ITEMS;
use natter_xml::Element;

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
    /// A field whose only offered value is how PEP always behaves, so it
    /// changes nothing: `pubsub#publish_model` = publishers (the owner),
    /// `pubsub#itemreply` (the owner is the publisher),
    /// `pubsub#presence_based_delivery` = true (notifications go to
    /// available sessions), `pubsub#purge_offline` = false,
    /// `pubsub#notify_sub` = false (no explicit subscriptions).
    Fixed(&'static str),
    Title(String),
    Description(String),
    PayloadType(String),
}

impl Setting {
    /// The node_config field that carries it.
    pub fn var(&self) -> &'static str {
        match self {
            Setting::AccessModel(_) => "pubsub#access_model",
            Setting::RosterGroupsAllowed(_) => "pubsub#roster_groups_allowed",
            Setting::MaxItems(_) => "pubsub#max_items",
            Setting::PersistItems(_) => "pubsub#persist_items",
            Setting::SendLast(_) => "pubsub#send_last_published_item",
            Setting::NotifyRetract(_) => "pubsub#notify_retract",
            Setting::NotifyDelete(_) => "pubsub#notify_delete",
            Setting::NotifyConfig(_) => "pubsub#notify_config",
            Setting::DeliverPayloads(_) => "pubsub#deliver_payloads",
            Setting::DeliverNotifications(_) => "pubsub#deliver_notifications",
            Setting::Headline(_) => "pubsub#notification_type",
            Setting::Fixed(var) => var,
            Setting::Title(_) => "pubsub#title",
            Setting::Description(_) => "pubsub#description",
            Setting::PayloadType(_) => "pubsub#type",
        }
    }

    pub(super) fn apply(&self, c: &mut NodeConfig) {
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
            Setting::Fixed(_) => {}
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
    /// Settings given by another module (say, publish-options of its own:
    /// `Settings::of([Setting::AccessModel(AccessModel::Whitelist)])`).
    pub fn of(settings: impl IntoIterator<Item = Setting>) -> Settings {
        Settings(
            settings
                .into_iter()
                .map(|s| (s.var().to_owned(), s))
                .collect(),
        )
    }

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

/// A boolean field PEP fixes at `value`.
fn fixed(f: &Field, var: &'static str, value: bool) -> Result<Setting, PepError> {
    if boolean(f)? != value {
        return Err(PepError::NotAcceptable(format!(
            "{var} is always {value} here"
        )));
    }
    Ok(Setting::Fixed(var))
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
pub(super) fn parse_field(f: &Field) -> Result<Option<Setting>, PepError> {
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
            Setting::Fixed("pubsub#publish_model")
        }
        "pubsub#itemreply" => {
            choice(f, &[("owner", ()), ("publisher", ())])?;
            Setting::Fixed("pubsub#itemreply")
        }
        "pubsub#presence_based_delivery" => fixed(f, "pubsub#presence_based_delivery", true)?,
        "pubsub#purge_offline" => fixed(f, "pubsub#purge_offline", false)?,
        "pubsub#notify_sub" => fixed(f, "pubsub#notify_sub", false)?,
        "pubsub#title" => Setting::Title(f.text()),
        "pubsub#description" => Setting::Description(f.text()),
        "pubsub#type" => Setting::PayloadType(f.text()),
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::pep::config::{NODE_CONFIG, PUBLISH_OPTIONS};

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
        // Fields fixed at PEP's behaviour are met by any node.
        let x = submitted(
            PUBLISH_OPTIONS,
            &[
                ("pubsub#publish_model", &["publishers"]),
                ("pubsub#purge_offline", &["false"]),
                ("pubsub#presence_based_delivery", &["true"]),
                ("pubsub#itemreply", &["owner"]),
                ("pubsub#notify_sub", &["0"]),
            ],
        );
        let s = Settings::parse(&x, PUBLISH_OPTIONS, unknown).unwrap();
        assert_eq!(s.unmet_by(&d), None);
        assert_eq!(s.applied_to(&d), d);
    }

    #[test]
    fn settings_of_name_their_fields_as_forms_do() {
        let x = submitted(
            NODE_CONFIG,
            &[
                ("pubsub#access_model", &["whitelist"]),
                ("pubsub#max_items", &["max"]),
                ("pubsub#notification_type", &["normal"]),
            ],
        );
        let parsed = Settings::parse(&x, NODE_CONFIG, unknown).unwrap();
        let built = Settings::of([
            Setting::AccessModel(AccessModel::Whitelist),
            Setting::MaxItems(MaxItems::Max),
            Setting::Headline(false),
        ]);
        assert_eq!(parsed, built);
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
            (&[("pubsub#purge_offline", &["1"])], "not-acceptable"),
            (
                &[("pubsub#presence_based_delivery", &["0"])],
                "not-acceptable",
            ),
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
