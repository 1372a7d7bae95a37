//! Writes the seed inputs of every target into `<dir>/<target>/seed-<name>` (the start of
//! each corpus; `deploy/local/fuzz.sh` runs it before fuzzing).

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::path::PathBuf::from("tests/fuzz/corpus"),
        std::path::PathBuf::from,
    );
    for (target, name, bytes) in vp_fuzz::seeds() {
        let d = dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{name}")), bytes)?;
    }
    Ok(())
}
