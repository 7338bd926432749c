//! The plain data types stored and returned by [`crate::Store`].

use std::path::PathBuf;

/// How to open a [`crate::Store`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Which backend and where.
    pub backend: Backend,
    /// `true`: every commit is flushed to disk (survives power loss;
    /// SQLite `synchronous=FULL`). `false`: a commit is in the OS when the
    /// call returns (survives `kill -9`, not power loss; `synchronous=NORMAL`).
    pub fsync: bool,
}

impl StoreConfig {
    /// SQLite at `path`, `fsync: false`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        StoreConfig {
            backend: Backend::Sqlite { path: path.into() },
            fsync: false,
        }
    }
}

/// The storage backends.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Backend {
    /// Embedded SQLite. `path` is the database file; missing parent
    /// directories are created. The `-wal` and `-shm` files live beside it.
    Sqlite {
        /// The database file.
        path: PathBuf,
    },
}

/// Counters of the write path, for tests and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed by the writer (group commits).
    pub commits: u64,
    /// Write operations committed (each `Store` write call is one).
    pub writes: u64,
    /// Queue inserts withdrawn before they were written (their message was
    /// acknowledged by the recipient within `ack_wait`).
    pub withdrawn: u64,
}

/// A roster subscription state (RFC 6121 §2.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Subscription {
    /// Neither side is subscribed.
    #[default]
    None,
    /// The user receives the contact's presence.
    To,
    /// The contact receives the user's presence.
    From,
    /// Both directions.
    Both,
}

impl Subscription {
    /// The RFC 6121 attribute value: `"none"`, `"to"`, `"from"`, `"both"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Parses an attribute value written by [`Subscription::as_str`]
    /// (exact, lowercase). `"remove"` is not a state and gives `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }
}

/// One roster row: the owner's relation to one contact.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RosterItem {
    /// The contact's bare JID (the row key together with the owner).
    pub jid: String,
    /// The user-assigned display name.
    pub name: Option<String>,
    /// The subscription state.
    pub subscription: Subscription,
    /// Pending out: the user sent `subscribe`, no answer yet.
    pub ask_out: bool,
    /// Pending in: the contact asked to subscribe; the user has not answered.
    pub pending_in: bool,
    /// Subscription pre-approval.
    pub approved: bool,
    /// A user-visible roster item (`false` = only a hidden pending-in record).
    pub in_roster: bool,
    /// Groups, in the order given (stored as child rows, so any text is safe).
    pub groups: Vec<String>,
    /// The inbound `subscribe` stanza to redeliver at the user's next login.
    pub pending_in_stanza: Option<Vec<u8>>,
}

/// A stanza stored for a recipient who was offline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    /// The sender's full JID.
    pub from: String,
    /// The XEP-0359 `<stanza-id/>` the server assigned (may be empty).
    /// Not the sender's `id` attribute: that is [`OfflineMessage::msg_id`].
    pub stanza_id: String,
    /// The sender's own `id` attribute of the message stanza (empty if it
    /// had none); what [`crate::Store::offline_find`] looks up.
    pub msg_id: String,
    /// When the server received it, Unix milliseconds (for XEP-0203 delay).
    pub stamp_unix_ms: u64,
    /// The serialized stanza.
    pub stanza: Vec<u8>,
}
