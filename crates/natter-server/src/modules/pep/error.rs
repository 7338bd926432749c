//! Why a PEP request failed, and the stanza error that says so (XEP-0060
//! §6–8 with the `pubsub#errors` conditions).

use super::{MAX_NODES, NS_ERRORS};
use crate::modules::iq::Reply;
use natter_xml::Element;

/// A PEP request that cannot be done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PepError {
    /// The node does not exist: `item-not-found`.
    NodeNotFound,
    /// The item does not exist (retract): `item-not-found`.
    ItemNotFound,
    /// Someone else's PEP service: `forbidden`.
    Forbidden,
    /// Access model presence, requester not subscribed to the owner's
    /// presence: `not-authorized` + `<presence-subscription-required/>`.
    PresenceSubscriptionRequired,
    /// Access model roster, requester in none of the allowed groups:
    /// `not-authorized` + `<not-in-roster-group/>`.
    NotInRosterGroup,
    /// Access model whitelist: `not-allowed` + `<closed-node/>`.
    ClosedNode,
    /// A publish-options field the node's configuration does not have:
    /// `conflict` + `<precondition-not-met/>`.
    PreconditionNotMet(String),
    /// Creating a node that exists: `conflict`.
    NodeExists,
    /// No `node` attribute: `bad-request` + `<nodeid-required/>`.
    NodeIdRequired,
    /// A create with no node (instant nodes are not offered):
    /// `not-acceptable` + `<nodeid-required/>`.
    InstantNodesUnsupported,
    /// A publish or retract with no item (or item id):
    /// `bad-request` + `<item-required/>`.
    ItemRequired,
    /// An item with no payload: `bad-request` + `<payload-required/>`.
    PayloadRequired,
    /// An item with more than one payload element:
    /// `bad-request` + `<invalid-payload/>`.
    InvalidPayload,
    /// An XEP-0060 feature natterd does not offer:
    /// `feature-not-implemented` + `<unsupported feature='…'/>`.
    Unsupported(&'static str),
    BadRequest(String),
    NotAcceptable(String),
    /// The account has [`MAX_NODES`] nodes: `policy-violation`.
    TooManyNodes,
    /// The store failed: `internal-server-error`.
    Internal,
}

impl PepError {
    /// The defined condition (for tests and logs).
    pub fn condition(&self) -> &'static str {
        self.parts().1
    }

    /// (type, defined condition, text, pubsub#errors condition).
    fn parts(
        &self,
    ) -> (
        &'static str,
        &'static str,
        Option<String>,
        Option<&'static str>,
    ) {
        use PepError::*;
        match self {
            NodeNotFound => ("cancel", "item-not-found", None, None),
            ItemNotFound => (
                "cancel",
                "item-not-found",
                Some("no such item".into()),
                None,
            ),
            Forbidden => ("auth", "forbidden", None, None),
            PresenceSubscriptionRequired => (
                "auth",
                "not-authorized",
                None,
                Some("presence-subscription-required"),
            ),
            NotInRosterGroup => ("auth", "not-authorized", None, Some("not-in-roster-group")),
            ClosedNode => ("cancel", "not-allowed", None, Some("closed-node")),
            PreconditionNotMet(field) => (
                "cancel",
                "conflict",
                Some(format!("the node's {field} differs")),
                Some("precondition-not-met"),
            ),
            NodeExists => ("cancel", "conflict", None, None),
            NodeIdRequired => ("modify", "bad-request", None, Some("nodeid-required")),
            InstantNodesUnsupported => ("modify", "not-acceptable", None, Some("nodeid-required")),
            ItemRequired => ("modify", "bad-request", None, Some("item-required")),
            PayloadRequired => ("modify", "bad-request", None, Some("payload-required")),
            InvalidPayload => ("modify", "bad-request", None, Some("invalid-payload")),
            Unsupported(_) => (
                "cancel",
                "feature-not-implemented",
                None,
                Some("unsupported"),
            ),
            BadRequest(t) => ("modify", "bad-request", Some(t.clone()), None),
            NotAcceptable(t) => ("modify", "not-acceptable", Some(t.clone()), None),
            TooManyNodes => (
                "modify",
                "policy-violation",
                Some(format!("at most {MAX_NODES} nodes per account")),
                None,
            ),
            Internal => ("wait", "internal-server-error", None, None),
        }
    }

    /// The IQ error reply.
    pub fn reply(&self) -> Reply {
        let (kind, condition, text, app) = self.parts();
        match app {
            None => Reply::Error(kind, condition, text),
            Some(name) => {
                let mut e = Element::new(name, NS_ERRORS);
                if let PepError::Unsupported(feature) = self {
                    e.set_attr("feature", *feature);
                }
                Reply::Detailed(kind, condition, text, Box::new(e))
            }
        }
    }
}

impl From<natter_store::StoreError> for PepError {
    fn from(e: natter_store::StoreError) -> PepError {
        tracing::error!(error = %e, "PEP store operation failed");
        PepError::Internal
    }
}
