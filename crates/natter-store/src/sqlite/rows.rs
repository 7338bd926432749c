//! Conversions between Rust values and SQLite rows.

use rusqlite::Row;

use crate::{OfflineMessage, RosterItem, StoreError, Subscription};

/// Converts a caller's number into SQLite's signed 64-bit integer.
pub(super) fn to_i64(v: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::InvalidInput(format!("{what} {v} too large")))
}

/// Converts a stored integer back; a negative value means a corrupt row.
pub(super) fn to_u64(v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(0, v))
}

pub(super) const ROSTER_COLUMNS: &str =
    "contact, name, subscription, ask_out, pending_in, approved, \
                              in_roster, pending_in_stanza";

/// Reads a roster row selected with [`ROSTER_COLUMNS`] (groups left empty).
pub(super) fn roster_row(r: &Row<'_>) -> rusqlite::Result<RosterItem> {
    let sub: String = r.get(2)?;
    Ok(RosterItem {
        jid: r.get(0)?,
        name: r.get(1)?,
        subscription: Subscription::parse(&sub).unwrap_or_default(),
        ask_out: r.get(3)?,
        pending_in: r.get(4)?,
        approved: r.get(5)?,
        in_roster: r.get(6)?,
        groups: Vec::new(),
        pending_in_stanza: r.get(7)?,
    })
}

/// Reads an offline row selected as
/// `seq, sender, stanza_id, msg_id, stamp_ms, stanza`.
pub(super) fn offline_row(r: &Row<'_>) -> rusqlite::Result<(u64, OfflineMessage)> {
    Ok((
        to_u64(r.get(0)?)?,
        OfflineMessage {
            from: r.get(1)?,
            stanza_id: r.get(2)?,
            msg_id: r.get(3)?,
            stamp_unix_ms: to_u64(r.get(4)?)?,
            stanza: r.get(5)?,
        },
    ))
}

/// The seqs as stored; seqs beyond `i64::MAX` cannot exist and are left out.
pub(crate) fn stored_seqs(seqs: &[u64]) -> Vec<i64> {
    seqs.iter().filter_map(|&s| i64::try_from(s).ok()).collect()
}
