//! Helpers shared by the store's integration tests.

use natter_store::{OfflineMessage, Store, StoreConfig};

/// Queue entry `i` from bob@x/r: ids and stamp derived from `i`.
#[allow(dead_code)] // not every test file uses it
pub fn msg(i: usize) -> OfflineMessage {
    OfflineMessage {
        from: "bob@x/r".into(),
        stanza_id: format!("m{i}"),
        msg_id: format!("c{i}"),
        stamp_unix_ms: i as u64,
        stanza: format!("<message><body>{i}</body></message>").into_bytes(),
    }
}

/// Keeps whatever backs a test store alive (for SQLite, its temp dir).
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
}

/// A fresh, empty store of the backend named by the `NATTER_TEST_STORE`
/// environment variable (default `sqlite`), for the tests of behaviour
/// every backend must show.
#[allow(dead_code)] // not every test file uses it
pub async fn test_store() -> (Store, Guard) {
    let backend = std::env::var("NATTER_TEST_STORE").unwrap_or_else(|_| "sqlite".into());
    match backend.as_str() {
        "sqlite" => {
            let dir = tempfile::tempdir().expect("temp dir");
            let cfg = StoreConfig::sqlite(dir.path().join("sub/dir/natter.db"));
            let store = Store::open(cfg).await.expect("open sqlite store");
            (store, Guard { _dir: Some(dir) })
        }
        other => panic!("NATTER_TEST_STORE: unknown backend {other:?} (known: \"sqlite\")"),
    }
}
