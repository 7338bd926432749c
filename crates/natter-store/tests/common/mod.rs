//! Helpers shared by the store's integration tests.

use natter_store::OfflineMessage;

/// Queue entry `i` from bob@x/r: ids and stamp derived from `i`.
pub fn msg(i: usize) -> OfflineMessage {
    OfflineMessage {
        from: "bob@x/r".into(),
        stanza_id: format!("m{i}"),
        msg_id: format!("c{i}"),
        stamp_unix_ms: i as u64,
        stanza: format!("<message><body>{i}</body></message>").into_bytes(),
    }
}
