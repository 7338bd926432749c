//! Replays the committed fuzz corpus through the fuzz target's checks, so
//! every CI run covers it without a nightly toolchain.

#[path = "../../../fuzz/harness.rs"]
mod harness;

#[test]
fn corpus_replays_cleanly() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/stream_parser");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus folder") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        harness::one_input(&data);
        n += 1;
    }
    assert!(n >= 10, "corpus has {n} files");
}
