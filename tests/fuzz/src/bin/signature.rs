//! AFL++ entry point of the `signature` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::signature(data);
    });
}
