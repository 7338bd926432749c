//! Personal eventing (XEP-0163): each account's PEP service, a subset of
//! publish-subscribe (XEP-0060) on the account's bare JID.

use crate::c2s::session::Session;

/// Called when the session's entity capabilities (XEP-0115) become known or
/// change (`Entry::caps` is set): PEP sends it the last item of every node
/// it now asks to be notified of and may read.
// SCAFFOLD(pep-core): filled by the PEP core before this lands.
pub async fn caps_known(_s: &mut Session) {}
