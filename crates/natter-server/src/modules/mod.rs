//! What the server does with stanzas, one module per protocol.

pub mod disco;
pub mod iq;
pub mod last;
pub mod mam;
pub mod message;
pub mod offline;
pub mod presence;
pub mod queue;
pub mod roster;
pub mod subscription;
pub mod vcard;
