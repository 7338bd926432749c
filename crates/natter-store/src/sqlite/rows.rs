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

/// A JSON array of the strings, for `json_each(?)`: one bound parameter
/// however many values a query takes.
pub(super) fn json_strings(values: &[String]) -> String {
    let mut out = String::with_capacity(2 + values.iter().map(|v| v.len() + 3).sum::<usize>());
    out.push('[');
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for ch in v.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the strings hold, SQLite's `json_each` gives them back.
    #[test]
    fn json_strings_round_trip() {
        let values: Vec<String> = [
            "alice@x",
            "",
            "quote\" back\\slash",
            "tab\t nl\n nul\u{0} bell\u{7}",
            "é ✓ 𝄞",
            "[\"not\", \"an array\"]",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let mut st = c
            .prepare("SELECT value FROM json_each(?1) ORDER BY key")
            .unwrap();
        let back: Vec<String> = st
            .query_map([json_strings(&values)], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, values);
        assert_eq!(json_strings(&[]), "[]");
    }
}
