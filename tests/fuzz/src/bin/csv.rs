//! AFL++ entry point of the `csv` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::csv(data);
    });
}
