//! Personal eventing (XEP-0163): each account's PEP service, a subset of
//! publish-subscribe (XEP-0060) on the account's bare JID.

use crate::c2s::session::Session;
use crate::modules::caps::Features;

/// Called when the session's entity capabilities (XEP-0115) become known or
/// change (its router entry's `caps` is already set), with the capabilities
/// it had before: PEP sends it the last item of every node it now asks to
/// be notified of (and did not before) and may read.
// SCAFFOLD(pep-core): filled by the PEP core before this lands.
pub async fn caps_known(_s: &mut Session, _previous: Option<&Features>) {}
