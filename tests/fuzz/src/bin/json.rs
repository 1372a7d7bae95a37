//! AFL++ entry point of the `json` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::json(data);
    });
}
