//! AFL++ entry point of the `code` target (see the crate documentation).
fn main() {
    afl::fuzz!(|data: &[u8]| {
        vp_fuzz::code(data);
    });
}
