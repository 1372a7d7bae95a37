//! The README's benchmark tables are the latest committed report's (issue 14): the report
//! `loadtest/reports/LATEST` names, rendered by `bench readme`, is exactly the text between
//! the README's markers. Fails when someone edits the figures by hand, or commits a report
//! without regenerating the README (`target/release/bench readme --report … --readme
//! README.md`, which `deploy/local/bench.sh` runs after every standard run).
#![allow(clippy::unwrap_used)]

use loadtest::readme::{self, Outcome};
use std::path::Path;

#[test]
fn the_readme_benchmark_section_is_rendered_from_the_latest_report() {
    // Arrange: the repository's README and the report LATEST names.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let report = readme::latest_report(&repo.join(readme::REPORTS_DIR)).unwrap();

    // Act: render it and compare, changing nothing.
    let outcome = readme::update(&report, &repo.join("README.md"), true).unwrap();

    // Assert
    assert_eq!(
        outcome,
        Outcome::UpToDate,
        "README.md does not show {}; run `target/release/bench readme --report {} --readme README.md`",
        report.display(),
        report.display()
    );
}
