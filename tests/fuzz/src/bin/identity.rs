//! AFL++ entry point of the `identity` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::identity(data);
    });
}
