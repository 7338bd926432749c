//! Fills a store's message archive fast, for the archive query benchmark:
//! COUNT messages between OWNER and WITH in OWNER's archive, alternating
//! direction, one second apart ending now, appended through the store's
//! writer in batches of 10,000 (one transaction each). OWNER must have an
//! account (create it first with `natterd user add` or `user import`).
//!
//!     cargo run --release -p natter-store --example archive_fill -- \
//!         DATA_DIR/natter.sqlite3 user0@localhost user1@localhost 1000000
//!
//! Run it while natterd is stopped (it could run alongside, but would then
//! compete with the server for the write lock).

use natter_store::{ArchiveEntry, Store, StoreConfig};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

const BATCH: usize = 10_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, owner, with, count] = args.as_slice() else {
        return Err("usage: archive_fill DB OWNER WITH COUNT".into());
    };
    let count: usize = count.parse()?;
    let store = Store::open(StoreConfig::sqlite(db)).await?;
    if !store.account_exists(owner).await? {
        return Err(format!("{owner} has no account in {db}").into());
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let first = now.saturating_sub(count as u64 * 1000);
    let run = format!("{:x}", now);
    let t0 = Instant::now();
    let mut stored = 0;
    let mut i = 0;
    while i < count {
        let n = BATCH.min(count - i);
        let entries = (i..i + n)
            .map(|k| {
                let (from, to) = if k % 2 == 0 {
                    (owner, with)
                } else {
                    (with, owner)
                };
                let id = format!("fill-{run}-{k}");
                let stanza = format!(
                    "<message xmlns='jabber:client' from='{from}/bench' to='{to}' type='chat' \
                     id='c{k}'><body>archived message number {k} of the benchmark fill</body>\
                     <stanza-id xmlns='urn:xmpp:sid:0' id='{id}' by='{to}'/></message>"
                );
                ArchiveEntry {
                    owner: owner.clone(),
                    id,
                    with: format!("{with}/bench"),
                    sender: format!("{from}/bench"),
                    origin_id: format!("c{k}"),
                    stamp_unix_ms: first + k as u64 * 1000,
                    stanza: Arc::from(stanza.into_bytes()),
                    with_must_exist: false,
                }
            })
            .collect();
        stored += store.archive_append(entries).await?;
        i += n;
        if i % 100_000 == 0 {
            eprintln!("archive_fill: {i} of {count}");
        }
    }
    store.close().await?;
    eprintln!(
        "archive_fill: {stored} messages stored in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}
