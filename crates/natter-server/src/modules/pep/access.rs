//! Who may read a node (XEP-0060 §4.5, §6.5.1): the requester's relation
//! to the owner, from the owner's roster, against the node's access model.
//! Every read (items, disco) and every notification goes through
//! [`check`].

use super::config::{AccessModel, NodeConfig};
use super::error::PepError;
use crate::c2s::session::Session;
use natter_store::{RosterItem, Subscription};

/// How an entity stands to a node's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// The owner itself.
    Owner,
    /// Anyone else; what the owner's roster says of it (if anything).
    Other {
        /// Receives the owner's presence (subscription from/both).
        subscribed: bool,
        /// The owner's roster groups it is in.
        groups: Vec<String>,
    },
}

impl Relation {
    /// From the row about the entity in the owner's roster.
    pub fn from_roster(item: Option<&RosterItem>) -> Relation {
        match item.filter(|i| i.in_roster) {
            Some(i) => Relation::Other {
                subscribed: matches!(i.subscription, Subscription::From | Subscription::Both),
                groups: i.groups.clone(),
            },
            None => Relation::Other {
                subscribed: false,
                groups: Vec::new(),
            },
        }
    }

    /// The relation of `who` (a bare JID) to `owner`: one roster read
    /// unless they are the same.
    pub async fn of(s: &Session, owner: &str, who: &str) -> Result<Relation, PepError> {
        if owner == who {
            return Ok(Relation::Owner);
        }
        let item = s.shared.store.roster_item(owner, who).await?;
        Ok(Relation::from_roster(item.as_ref()))
    }

    /// Whether the entity receives the owner's presence (or is the owner):
    /// PEP notifications go only to those (XEP-0163 §4.3).
    pub fn gets_presence(&self) -> bool {
        match self {
            Relation::Owner => true,
            Relation::Other { subscribed, .. } => *subscribed,
        }
    }
}

/// Whether an entity so related to the owner may read the node, or the
/// error that says why not (XEP-0060 §6.5.9).
pub fn check(config: &NodeConfig, rel: &Relation) -> Result<(), PepError> {
    let Relation::Other { subscribed, groups } = rel else {
        return Ok(());
    };
    match config.access_model {
        AccessModel::Open => Ok(()),
        AccessModel::Presence if *subscribed => Ok(()),
        AccessModel::Presence => Err(PepError::PresenceSubscriptionRequired),
        AccessModel::Roster
            if *subscribed
                && groups
                    .iter()
                    .any(|g| config.roster_groups_allowed.contains(g)) =>
        {
            Ok(())
        }
        AccessModel::Roster => Err(PepError::NotInRosterGroup),
        AccessModel::Whitelist => Err(PepError::ClosedNode),
    }
}

/// Whether an entity so related gets the node's notifications: it may read
/// the node and receives the owner's presence.
pub fn notified(config: &NodeConfig, rel: &Relation) -> bool {
    rel.gets_presence() && check(config, rel).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(subscribed: bool, groups: &[&str]) -> Relation {
        Relation::Other {
            subscribed,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn access_models() {
        let cfg = |m| NodeConfig {
            access_model: m,
            roster_groups_allowed: vec!["Friends".into()],
            ..NodeConfig::default()
        };
        let stranger = other(false, &[]);
        let contact = other(true, &["Work"]);
        let friend = other(true, &["Friends"]);
        let unsubscribed_friend = other(false, &["Friends"]);
        for m in [
            AccessModel::Open,
            AccessModel::Presence,
            AccessModel::Roster,
            AccessModel::Whitelist,
        ] {
            assert_eq!(check(&cfg(m), &Relation::Owner), Ok(()));
            assert!(notified(&cfg(m), &Relation::Owner));
        }
        assert_eq!(check(&cfg(AccessModel::Open), &stranger), Ok(()));
        assert!(!notified(&cfg(AccessModel::Open), &stranger));
        assert_eq!(
            check(&cfg(AccessModel::Presence), &stranger),
            Err(PepError::PresenceSubscriptionRequired)
        );
        assert_eq!(check(&cfg(AccessModel::Presence), &contact), Ok(()));
        assert_eq!(
            check(&cfg(AccessModel::Roster), &contact),
            Err(PepError::NotInRosterGroup)
        );
        assert_eq!(
            check(&cfg(AccessModel::Roster), &unsubscribed_friend),
            Err(PepError::NotInRosterGroup)
        );
        assert_eq!(check(&cfg(AccessModel::Roster), &friend), Ok(()));
        assert!(notified(&cfg(AccessModel::Roster), &friend));
        assert_eq!(
            check(&cfg(AccessModel::Whitelist), &friend),
            Err(PepError::ClosedNode)
        );
    }

    #[test]
    fn relation_from_roster() {
        let mut item = RosterItem {
            jid: "b@x".into(),
            subscription: Subscription::To,
            in_roster: true,
            groups: vec!["G".into()],
            ..RosterItem::default()
        };
        assert_eq!(Relation::from_roster(Some(&item)), other(false, &["G"]));
        item.subscription = Subscription::Both;
        assert_eq!(Relation::from_roster(Some(&item)), other(true, &["G"]));
        // A hidden pending-in record is no roster relation.
        item.in_roster = false;
        assert_eq!(Relation::from_roster(Some(&item)), other(false, &[]));
        assert_eq!(Relation::from_roster(None), other(false, &[]));
    }
}
