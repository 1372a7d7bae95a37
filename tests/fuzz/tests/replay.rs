//! Replays every committed corpus input (and the seeds) through its target: what the fuzzer
//! once found must stay fixed. `deploy/local/fuzz.sh` grows the corpora; this runs in the
//! test command.

use std::path::Path;

#[test]
fn the_seeds_are_accepted_where_valid_and_nothing_panics() {
    for (target, _, bytes) in vp_fuzz::seeds() {
        vp_fuzz::run(target, &bytes);
    }
}

#[test]
fn every_corpus_input_replays_without_a_finding() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut replayed = 0usize;
    for target in vp_fuzz::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("corpus entry").path();
            let bytes = std::fs::read(&path).expect("corpus file");
            let outcome = std::panic::catch_unwind(|| vp_fuzz::run(target, &bytes));
            assert!(outcome.is_ok(), "{target}: {} fails", path.display());
            replayed += 1;
        }
    }
    assert!(
        replayed >= vp_fuzz::TARGETS.len(),
        "the corpora are missing ({replayed} inputs)"
    );
}

#[test]
fn a_flipped_byte_of_a_valid_token_is_refused() {
    // The oracle itself is tested: a mutated valid token must not be accepted as another.
    for (target, _, bytes) in vp_fuzz::seeds() {
        if !["token", "code", "identity"].contains(&target) {
            continue;
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            vp_fuzz::run(target, &b);
        }
    }
}
