//! The message archive's behaviour every storage backend must show
//! (XEP-0313 queries and paging, XEP-0424 tombstones, expiry, preferences,
//! account deletion). The backend is chosen by `NATTER_TEST_STORE` as in
//! `conformance.rs`.

mod common;
use common::{test_store, Guard};
use natter_store::{
    ArchiveDefault, ArchiveEntry, ArchivePrefs, ArchiveQuery, RosterItem, Store, StoreError,
};
use std::sync::Arc;

const A: &str = "alice@x";
const B: &str = "bob@x";
const C: &str = "carol@x";

fn entry(owner: &str, id: &str, with: &str, sender: &str, stamp: u64) -> ArchiveEntry {
    ArchiveEntry {
        owner: owner.into(),
        id: id.into(),
        with: with.into(),
        sender: sender.into(),
        origin_id: format!("o-{id}"),
        stamp_unix_ms: stamp,
        stanza: Arc::from(format!("<message id='o-{id}'><body>{id}</body></message>").as_bytes()),
        with_must_exist: false,
    }
}

/// alice's archive: m0..m9 alternating with bob and carol (stamps 1000+i).
async fn setup() -> (Store, Guard) {
    let (s, g) = test_store().await;
    for a in [A, B, C] {
        s.create_account(a, b"c").await.unwrap();
    }
    let entries = (0..10)
        .map(|i| {
            let (with, sender) = if i % 2 == 0 {
                (format!("{B}/phone"), format!("{B}/phone"))
            } else {
                (C.to_owned(), format!("{A}/laptop"))
            };
            entry(A, &format!("m{i}"), &with, &sender, 1000 + i)
        })
        .collect();
    assert_eq!(s.archive_append(entries).await.unwrap(), 10);
    (s, g)
}

fn ids(page: &natter_store::ArchivePage) -> Vec<&str> {
    page.items.iter().map(|m| m.id.as_str()).collect()
}

fn q(limit: usize) -> ArchiveQuery {
    ArchiveQuery {
        limit,
        ..ArchiveQuery::default()
    }
}

#[tokio::test]
async fn query_filters() {
    let (s, _g) = setup().await;
    let all = s.archive_query(A, q(100)).await.unwrap();
    assert_eq!(all.items.len(), 10);
    assert!(all.complete);
    assert_eq!(all.items[0].with, "bob@x/phone");
    assert_eq!(all.items[0].sender, "bob@x/phone");
    assert_eq!(all.items[0].origin_id, "o-m0");
    assert_eq!(all.items[0].stamp_unix_ms, 1000);
    assert_eq!(all.items[0].retracted_unix_ms, None);
    assert_eq!(
        all.items[0].stanza,
        b"<message id='o-m0'><body>m0</body></message>"
    );

    // A bare `with` matches every resource; a full one only itself.
    let bob = s
        .archive_query(
            A,
            ArchiveQuery {
                with: Some(B.into()),
                ..q(100)
            },
        )
        .await
        .unwrap();
    assert_eq!(ids(&bob), ["m0", "m2", "m4", "m6", "m8"]);
    let phone = ArchiveQuery {
        with: Some(format!("{B}/phone")),
        ..q(100)
    };
    assert_eq!(s.archive_query(A, phone).await.unwrap().items.len(), 5);
    let tablet = ArchiveQuery {
        with: Some(format!("{B}/tablet")),
        ..q(100)
    };
    assert!(s.archive_query(A, tablet).await.unwrap().items.is_empty());

    let window = ArchiveQuery {
        start_unix_ms: Some(1003),
        end_unix_ms: Some(1005),
        ..q(100)
    };
    assert_eq!(
        ids(&s.archive_query(A, window).await.unwrap()),
        ["m3", "m4", "m5"]
    );

    let between = ArchiveQuery {
        after_id: Some("m2".into()),
        before_id: Some("m6".into()),
        ..q(100)
    };
    assert_eq!(
        ids(&s.archive_query(A, between).await.unwrap()),
        ["m3", "m4", "m5"]
    );

    let some = ArchiveQuery {
        ids: vec!["m7".into(), "m1".into(), "nope".into()],
        ..q(100)
    };
    assert_eq!(ids(&s.archive_query(A, some).await.unwrap()), ["m1", "m7"]);

    // Archives are per owner.
    assert!(s.archive_query(B, q(100)).await.unwrap().items.is_empty());
    let foreign = ArchiveQuery {
        after_id: Some("m1".into()),
        ..q(10)
    };
    assert_eq!(s.archive_query(B, foreign).await, Err(StoreError::NotFound));
    let unknown = ArchiveQuery {
        before_id: Some("zz".into()),
        ..q(10)
    };
    assert_eq!(s.archive_query(A, unknown).await, Err(StoreError::NotFound));
}

#[tokio::test]
async fn paging_both_ways() {
    let (s, _g) = setup().await;
    // Forward, 4 at a time.
    let p1 = s.archive_query(A, q(4)).await.unwrap();
    assert_eq!(ids(&p1), ["m0", "m1", "m2", "m3"]);
    assert!(!p1.complete);
    let next = |after: &str| ArchiveQuery {
        after_id: Some(after.into()),
        ..q(4)
    };
    let p2 = s.archive_query(A, next("m3")).await.unwrap();
    assert_eq!(ids(&p2), ["m4", "m5", "m6", "m7"]);
    assert!(!p2.complete);
    let p3 = s.archive_query(A, next("m7")).await.unwrap();
    assert_eq!(ids(&p3), ["m8", "m9"]);
    assert!(p3.complete);
    // Exactly a page's worth left is complete too.
    let exact = s.archive_query(
        A,
        ArchiveQuery {
            after_id: Some("m5".into()),
            ..q(4)
        },
    );
    assert!(exact.await.unwrap().complete);

    // Backward from the newest: the last page first, in archive order.
    let back = |before: Option<&str>| ArchiveQuery {
        before_id: before.map(str::to_owned),
        backward: true,
        ..q(4)
    };
    let b1 = s.archive_query(A, back(None)).await.unwrap();
    assert_eq!(ids(&b1), ["m6", "m7", "m8", "m9"]);
    assert!(!b1.complete);
    let b2 = s.archive_query(A, back(Some("m6"))).await.unwrap();
    assert_eq!(ids(&b2), ["m2", "m3", "m4", "m5"]);
    let b3 = s.archive_query(A, back(Some("m2"))).await.unwrap();
    assert_eq!(ids(&b3), ["m0", "m1"]);
    assert!(b3.complete);

    // The newest 2 of one conversation.
    let newest = ArchiveQuery {
        with: Some(C.into()),
        backward: true,
        ..q(2)
    };
    assert_eq!(
        ids(&s.archive_query(A, newest).await.unwrap()),
        ["m7", "m9"]
    );
}

#[tokio::test]
async fn append_skips_missing_accounts_and_repeated_ids() {
    let (s, _g) = setup().await;
    let n = s
        .archive_append(vec![
            entry("nobody@x", "z1", A, A, 1),
            entry(A, "m3", B, B, 1),
            entry(B, "m3", A, A, 1),
            ArchiveEntry {
                with_must_exist: true,
                ..entry(A, "y1", "nobody@x/r", A, 1)
            },
            ArchiveEntry {
                with_must_exist: true,
                ..entry(A, "y2", "carol@x/r", A, 1)
            },
        ])
        .await
        .unwrap();
    assert_eq!(n, 2, "only bob's copy and alice's to carol are new");
    assert_eq!(s.archive_count("nobody@x").await.unwrap(), 0);
    assert_eq!(s.archive_count(A).await.unwrap(), 11);
    assert_eq!(s.archive_count(B).await.unwrap(), 1);
}

#[tokio::test]
async fn retraction_leaves_a_tombstone() {
    let (s, _g) = setup().await;
    // bob's copy of m1 (alice -> carol is m1 in alice's archive; give bob one too).
    s.archive_append(vec![entry(
        C,
        "m1",
        &format!("{A}/laptop"),
        &format!("{A}/laptop"),
        1001,
    )])
    .await
    .unwrap();
    // Only the sender may retract: carol cannot retract alice's message.
    assert_eq!(s.archive_retract(A, C, C, "o-m1", 5000).await.unwrap(), 0);
    // The wrong conversation matches nothing.
    assert_eq!(s.archive_retract(A, B, A, "o-m1", 5000).await.unwrap(), 0);
    assert_eq!(s.archive_retract(A, C, A, "o-m1", 5000).await.unwrap(), 1);
    assert_eq!(s.archive_retract(C, A, A, "o-m1", 5000).await.unwrap(), 1);
    assert_eq!(
        s.archive_retract(A, C, A, "o-m1", 6000).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(s.archive_retract(A, C, A, "", 6000).await.unwrap(), 0);
    for owner in [A, C] {
        let page = s
            .archive_query(
                owner,
                ArchiveQuery {
                    ids: vec!["m1".into()],
                    ..q(10)
                },
            )
            .await
            .unwrap();
        let m = &page.items[0];
        assert_eq!(m.retracted_unix_ms, Some(5000));
        assert!(m.stanza.is_empty(), "the content is gone");
        assert_eq!(m.origin_id, "o-m1");
        assert_eq!(m.sender, "alice@x/laptop");
    }
    // Others are untouched.
    let m3 = s.archive_query(
        A,
        ArchiveQuery {
            ids: vec!["m3".into()],
            ..q(1)
        },
    );
    assert_eq!(m3.await.unwrap().items[0].retracted_unix_ms, None);
}

#[tokio::test]
async fn expiry_deletes_old_rows_in_batches() {
    let (s, _g) = setup().await;
    assert_eq!(s.archive_expire(1004, 3).await.unwrap(), 3);
    assert_eq!(s.archive_expire(1004, 3).await.unwrap(), 1);
    assert_eq!(s.archive_expire(1004, 3).await.unwrap(), 0);
    let left = s.archive_query(A, q(100)).await.unwrap();
    assert_eq!(ids(&left), ["m4", "m5", "m6", "m7", "m8", "m9"]);
    assert_eq!(
        s.archive_bounds(A).await.unwrap(),
        Some((("m4".into(), 1004), ("m9".into(), 1009)))
    );
    assert_eq!(s.archive_bounds(B).await.unwrap(), None);
    // An entry stamped older than one that arrived before it goes with it.
    s.archive_append(vec![entry(A, "late-old", B, B, 10)])
        .await
        .unwrap();
    assert_eq!(s.archive_expire(1007, 100).await.unwrap(), 3, "m4, m5, m6");
    assert_eq!(s.archive_expire(2000, 100).await.unwrap(), 4);
    assert_eq!(s.archive_count(A).await.unwrap(), 0);
}

#[tokio::test]
async fn preferences_decide_what_is_archived() {
    let (s, _g) = setup().await;
    assert_eq!(s.archive_prefs(B).await.unwrap(), ArchivePrefs::default());
    let prefs = ArchivePrefs {
        default: ArchiveDefault::Roster,
        always: vec![C.into()],
        never: vec!["dave@x".into()],
    };
    s.set_archive_prefs(B, &prefs).await.unwrap();
    assert_eq!(s.archive_prefs(B).await.unwrap(), prefs);
    let roster_item = RosterItem {
        jid: "erin@x".into(),
        in_roster: true,
        ..RosterItem::default()
    };
    s.roster_put(B, &roster_item).await.unwrap();
    let n = s
        .archive_append(vec![
            entry(B, "1", "carol@x/r", "carol@x/r", 1), // always
            entry(B, "2", "dave@x", "dave@x/r", 1),     // never
            entry(B, "3", "erin@x/r", "erin@x/r", 1),   // in the roster
            entry(B, "4", "frank@x", "frank@x/r", 1),   // not in the roster
        ])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(ids(&s.archive_query(B, q(10)).await.unwrap()), ["1", "3"]);

    let never = ArchivePrefs {
        default: ArchiveDefault::Never,
        ..ArchivePrefs::default()
    };
    s.set_archive_prefs(B, &never).await.unwrap();
    assert_eq!(
        s.archive_append(vec![entry(B, "5", C, C, 1)])
            .await
            .unwrap(),
        0
    );

    let bad = ArchivePrefs {
        always: vec!["a\nb".into()],
        ..ArchivePrefs::default()
    };
    assert!(matches!(
        s.set_archive_prefs(B, &bad).await,
        Err(StoreError::InvalidInput(_))
    ));
}

#[tokio::test]
async fn account_deletion_removes_archive_and_prefs() {
    let (s, _g) = setup().await;
    s.set_archive_prefs(A, &ArchivePrefs::default())
        .await
        .unwrap();
    s.archive_append(vec![entry(B, "b1", A, A, 1)])
        .await
        .unwrap();
    s.delete_account(A).await.unwrap();
    assert_eq!(s.archive_count(A).await.unwrap(), 0);
    assert_eq!(s.archive_bounds(A).await.unwrap(), None);
    // Re-created, the account starts with the default preferences.
    s.create_account(A, b"c").await.unwrap();
    assert_eq!(s.archive_prefs(A).await.unwrap(), ArchivePrefs::default());
    // bob's copy is bob's.
    assert_eq!(s.archive_count(B).await.unwrap(), 1);
}

#[tokio::test]
async fn barrier_waits_for_earlier_writes() {
    let (s, _g) = setup().await;
    // The append's future is dropped: the write still happens, and a
    // barrier asked for after it resolves only once it is committed.
    drop(s.archive_append(vec![entry(A, "late", B, B, 2000)]));
    s.write_barrier().await.unwrap();
    assert_eq!(s.archive_count(A).await.unwrap(), 11);
    let writes_before = s.stats().commits;
    s.write_barrier().await.unwrap();
    assert_eq!(
        s.stats().commits,
        writes_before,
        "a barrier commits nothing"
    );
}

#[tokio::test]
async fn appends_asked_for_together_share_a_job() {
    let (s, _g) = setup().await;
    let before = s.stats();
    let calls: Vec<_> = (0..500)
        .map(|i| s.archive_append(vec![entry(B, &format!("g{i}"), A, A, 1)]))
        .collect();
    assert!(s.archive_backlog() > 0);
    for c in calls {
        assert_eq!(
            c.await.unwrap(),
            1,
            "each caller hears about its own entries"
        );
    }
    assert_eq!(s.archive_backlog(), 0);
    assert_eq!(s.archive_count(B).await.unwrap(), 500);
    let after = s.stats();
    assert!(
        after.writes - before.writes < 10,
        "500 appends took {} writer jobs",
        after.writes - before.writes
    );
    s.close().await.unwrap();
    let late = s.archive_append(vec![entry(B, "late", A, A, 1)]);
    assert_eq!(late.await, Err(StoreError::Closed));
    assert_eq!(s.archive_backlog(), 0);
}
