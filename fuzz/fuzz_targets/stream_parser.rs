//! Feed a fixed stream header and then the input, split at a point derived
//! from the data, through the stream parser. Every stanza must build a tree
//! and its rewrite must re-parse; the events must not depend on the split.
#![no_main]

#[path = "../harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::one_input(data));
