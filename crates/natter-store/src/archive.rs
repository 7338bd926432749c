//! The message archive's data types (XEP-0313): what is appended, how it is
//! queried, what a query returns, and the per-account preferences.

use std::sync::Arc;

/// One message to append to one account's archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveEntry {
    /// The archive's owner (bare JID).
    pub owner: String,
    /// The archive id: the XEP-0359 stanza-id the server stamped. Unique
    /// within the owner's archive (an entry repeating one is ignored).
    pub id: String,
    /// The other party as addressed: a bare or full JID.
    pub with: String,
    /// The sender's full JID (the `from` the server stamped).
    pub sender: String,
    /// The sender's XEP-0359 origin-id, else its `id` attribute, else
    /// empty: what a XEP-0424 retraction names.
    pub origin_id: String,
    /// When the server received it, Unix milliseconds.
    pub stamp_unix_ms: u64,
    /// The serialized stanza (shared by the sender's and recipient's copy).
    pub stanza: Arc<[u8]>,
    /// Stored only if `with`'s bare JID has an account too (the sender's
    /// copy of a message to a local account that may not exist).
    pub with_must_exist: bool,
}

/// Which part of an archive to return. Ids are archive ids; the range
/// bounds are exclusive. Results are always in archive order (oldest
/// first); `backward` picks the *last* `limit` matches instead of the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveQuery {
    /// A bare JID matches every resource of it; a full JID only itself.
    pub with: Option<String>,
    /// Only messages at or after this time (Unix ms).
    pub start_unix_ms: Option<u64>,
    /// Only messages at or before this time (Unix ms).
    pub end_unix_ms: Option<u64>,
    /// Only messages after this one.
    pub after_id: Option<String>,
    /// Only messages before this one.
    pub before_id: Option<String>,
    /// Only these messages (empty: no such filter).
    pub ids: Vec<String>,
    /// At most this many.
    pub limit: usize,
    /// The last `limit` matches (paging backwards) rather than the first.
    pub backward: bool,
}

/// One archived message as a query returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedMessage {
    /// The archive id.
    pub id: String,
    /// The other party as addressed.
    pub with: String,
    /// The sender's full JID.
    pub sender: String,
    /// The origin-id (or message id) the sender gave it.
    pub origin_id: String,
    /// When the server received it, Unix milliseconds.
    pub stamp_unix_ms: u64,
    /// When it was retracted (XEP-0424); its stanza is then gone (empty).
    pub retracted_unix_ms: Option<u64>,
    /// The serialized stanza; empty once retracted.
    pub stanza: Vec<u8>,
}

/// The answer to an [`ArchiveQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivePage {
    /// Matches, oldest first.
    pub items: Vec<ArchivedMessage>,
    /// Whether the page holds the last match in the paging direction (the
    /// newest going forward, the oldest going backward): no further page.
    pub complete: bool,
}

/// What is archived by default (XEP-0313 preferences).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ArchiveDefault {
    /// Every message.
    #[default]
    Always,
    /// No message.
    Never,
    /// Messages with contacts in the owner's roster.
    Roster,
}

impl ArchiveDefault {
    /// The XEP-0313 attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveDefault::Always => "always",
            ArchiveDefault::Never => "never",
            ArchiveDefault::Roster => "roster",
        }
    }

    /// Parses an attribute value (exact, lowercase).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "always" => Some(ArchiveDefault::Always),
            "never" => Some(ArchiveDefault::Never),
            "roster" => Some(ArchiveDefault::Roster),
            _ => None,
        }
    }
}

/// An account's archiving preferences. `always` and `never` hold bare
/// JIDs; `never` wins over `always`, both over `default`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchivePrefs {
    /// The rule for JIDs in neither list.
    pub default: ArchiveDefault,
    /// Always archived with these.
    pub always: Vec<String>,
    /// Never archived with these.
    pub never: Vec<String>,
}
