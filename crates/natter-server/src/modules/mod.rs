//! What the server does with stanzas, one module per protocol.

pub mod account;
pub mod avatar;
pub mod blocking;
pub mod bookmarks;
pub mod caps;
pub mod carbons;
pub mod csi;
pub mod disco;
pub mod iq;
pub mod last;
pub mod last_seen;
pub mod mam;
pub mod message;
pub mod offline;
pub mod pep;
pub mod presence;
pub mod private;
pub mod queue;
pub mod roster;
pub mod subscription;
pub mod vcard;
