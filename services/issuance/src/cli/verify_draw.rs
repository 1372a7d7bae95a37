//! `issuance verify-draw --file <draw.json>`: checks a published lottery draw (报名摇号)
//! offline, with no access to the service: that SHA-256 of the revealed seed is the
//! commitment published when the round was created, that the list of registration hashes is
//! ascending without repeats, and that recomputing the winners from the seed and that list
//! ([`voucher_core::lottery::draw`]) gives exactly the published winners, rank by rank.
//!
//! The file is what `GET /v1/campaigns/{id}/rounds/{round_no}/draw` answers, or the
//! administrators' draw report (`{"draw": {…}, …}`), whose `draw` is the same thing; `-`
//! reads standard input. With `--person`, it also says where that person stands (their
//! registration hash is computed here, from the campaign, round and person id).
//!
//! Exit status 0 when the draw checks out; otherwise a message naming every difference and
//! a non-zero status.

use anyhow::{bail, Context};
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use voucher_core::lottery::{self, PublishedDraw};
use voucher_core::PersonId;

/// Reads the draw at `file` (`-`: standard input).
///
/// # Errors
/// The file cannot be read, or is not a published draw.
pub fn read(file: &Path) -> anyhow::Result<PublishedDraw> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the draw from standard input")?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    parse(&text).with_context(|| format!("{} is not a published draw", file.display()))
}

/// Parses a published draw, or a draw report holding one under `draw`.
///
/// # Errors
/// Not JSON, or a field missing or malformed (named).
pub fn parse(text: &str) -> anyhow::Result<PublishedDraw> {
    let value: serde_json::Value = serde_json::from_str(text).context("not JSON")?;
    let inner = match value.get("draw") {
        Some(draw) if draw.is_object() => draw.clone(),
        _ => value,
    };
    Ok(serde_json::from_value(inner)?)
}

/// Checks `draw`; the report to print when it checks out.
///
/// # Errors
/// Every difference found, one per line; an invalid `person`.
pub fn check(draw: &PublishedDraw, person: Option<&str>) -> anyhow::Result<String> {
    let mut out = String::new();
    match lottery::verify(draw) {
        Ok(verified) => {
            let _ = writeln!(
                out,
                "OK: the draw of campaign {} round {} verifies ({}).",
                draw.campaign_id, draw.round_no, draw.algorithm
            );
            let _ = writeln!(
                out,
                "commitment {} = SHA-256(seed {})",
                draw.commitment,
                draw.seed.to_hex()
            );
            let _ = writeln!(
                out,
                "{} registrations, quantity {}, {} winners recomputed and matching, drawn at {}",
                verified.registrations,
                draw.quantity,
                verified.winners,
                draw.drawn_at.to_rfc3339()
            );
        }
        Err(found) => {
            let mut message = format!(
                "the draw of campaign {} round {} does NOT verify ({} problem{}):",
                draw.campaign_id,
                draw.round_no,
                found.len(),
                if found.len() == 1 { "" } else { "s" }
            );
            for d in &found {
                let _ = write!(message, "\n  - {d}");
            }
            bail!(message);
        }
    }
    if let Some(person) = person {
        let person = PersonId::parse(person).context("--person")?;
        let standing = draw.standing_of(&person);
        let result = match (standing.registered, standing.rank) {
            (_, Some(rank)) => format!("won, rank {rank} of {}", draw.winners.len()),
            (true, None) => "registered, not drawn".to_owned(),
            (false, None) => "not in the list of registrations".to_owned(),
        };
        let _ = writeln!(
            out,
            "person {person}: registration hash {}: {result}",
            standing.hash
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use voucher_core::lottery::{registration_hash, Seed, ALGORITHM};
    use voucher_core::CampaignId;

    fn sample() -> PublishedDraw {
        let seed = Seed::from_bytes([7; 32]);
        let mut list: Vec<_> = (1..=6)
            .map(|i| {
                registration_hash(
                    CampaignId(3),
                    1,
                    &PersonId::parse(&format!("P{i}")).unwrap(),
                )
            })
            .collect();
        list.sort_unstable();
        PublishedDraw {
            algorithm: ALGORITHM.into(),
            campaign_id: CampaignId(3),
            round_no: 1,
            quantity: 2,
            commitment: seed.commitment(),
            winners: lottery::draw(&seed, &list, 2),
            seed,
            drawn_at: DateTime::from_timestamp(1_777_600_800, 0).unwrap(),
            registration_hashes: list,
        }
    }

    #[test]
    fn a_published_draw_and_a_report_parse_and_verify() {
        let draw = sample();
        let text = serde_json::to_string(&draw).unwrap();
        assert_eq!(parse(&text).unwrap(), draw);
        let report = serde_json::json!({"draw": draw, "issued": 2});
        assert_eq!(parse(&report.to_string()).unwrap(), draw);
        let out = check(&draw, Some("P1")).unwrap();
        assert!(out.starts_with("OK: "), "{out}");
        assert!(out.contains("person P1: registration hash"), "{out}");
    }

    #[test]
    fn tampering_and_bad_input_are_refused() {
        let mut draw = sample();
        draw.winners.reverse();
        let err = check(&draw, None).unwrap_err().to_string();
        assert!(err.contains("does NOT verify (2 problems)"), "{err}");
        assert!(err.contains("winner #1"), "{err}");
        assert!(parse("{").is_err());
        let mut v = serde_json::to_value(sample()).unwrap();
        v["seed"] = "zz".into();
        assert!(parse(&v.to_string()).is_err());
        assert!(check(&sample(), Some("no spaces allowed")).is_err());
    }
}
