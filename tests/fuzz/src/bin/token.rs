//! AFL++ entry point of the `token` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::token(data);
    });
}
