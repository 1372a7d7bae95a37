//! Bulk issuance to a list (union vouchers, love vouchers for households in difficulty):
//! an administrator uploads a CSV with a `person_id` column, one person per row.
//!
//! Each person's claim id is a UUID v5 of `bulk:{campaign}:{person}`, so uploading the same
//! file again (after a timeout, a 503, or by mistake) finds the claims already made and
//! issues nothing twice: those rows come back as `skipped (already issued)`. The claim
//! script enforces stock and the per-person limit exactly as for the rush.

use crate::auth::Admin;
use crate::claims::{run_claim, to_millis, window};
use crate::error::{self, ApiError, Code, Common};
use crate::state::AppState;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;
use uuid::Uuid;
use voucher_core::{
    Campaign, CampaignId, CampaignStatus, ClaimId, Distribution, PersonId, VoucherId,
};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest};

/// The namespace of bulk claim ids (fixed forever: changing it would re-issue old uploads).
pub const BULK_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c2e_9b8d_4e7a_a5c1_0d2f_7e3b_9c41);

/// The claim id of `person`'s voucher in a bulk issuance of `campaign`.
pub fn bulk_claim_id(campaign: CampaignId, person: &PersonId) -> ClaimId {
    ClaimId(Uuid::new_v5(
        &BULK_NAMESPACE,
        format!("bulk:{}:{}", campaign.0, person.as_str()).as_bytes(),
    ))
}

/// What happened to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RowResult {
    /// A new voucher.
    Issued,
    /// Nothing issued (already issued, duplicate row, sold out, limit, paused).
    Skipped,
    /// The row is not a valid person id.
    Invalid,
    /// The store failed for this row: upload the file again (safe).
    Failed,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkRow {
    /// Line number in the file (the header is line 1).
    pub line: u64,
    /// The person id as written.
    pub person_id: String,
    /// What happened.
    pub result: RowResult,
    /// The voucher (issued, or already issued earlier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voucher_id: Option<Uuid>,
    /// Why it was skipped, invalid or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The upload's report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BulkReport {
    /// Rows issued.
    pub issued: usize,
    /// Rows skipped.
    pub skipped: usize,
    /// Rows invalid.
    pub invalid: usize,
    /// Rows that failed (store errors): upload again.
    pub failed: usize,
    /// Every row, in file order.
    pub rows: Vec<BulkRow>,
}

/// A parsed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRow {
    /// A person to issue to.
    Person {
        /// Line number.
        line: u64,
        /// The person.
        person: PersonId,
    },
    /// Settled at parse time: an invalid id or a duplicate row.
    Done(BulkRow),
}

fn done(line: u64, person_id: String, result: RowResult, reason: &str) -> ParsedRow {
    ParsedRow::Done(BulkRow {
        line,
        person_id,
        result,
        voucher_id: None,
        reason: Some(reason.to_owned()),
    })
}

/// Parses the CSV: a header row with a `person_id` column (other columns are ignored), then
/// one person per row. Blank lines are skipped.
///
/// # Errors
/// `INVALID_FIELD` for a missing header or column; `PAYLOAD_TOO_LARGE` over `max_rows`.
pub fn parse_csv(bytes: &[u8], max_rows: usize) -> Result<Vec<ParsedRow>, ApiError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| ApiError::invalid_field("header", e))?
        .clone();
    let column = headers
        .iter()
        .position(|h| {
            h.trim_start_matches('\u{feff}')
                .eq_ignore_ascii_case("person_id")
        })
        .ok_or_else(|| {
            ApiError::invalid_field("header", "the first row must name a person_id column")
        })?;
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    let mut lines = LineCounter::new(bytes);
    for (index, record) in reader.records().enumerate() {
        if index >= max_rows {
            return Err(ApiError::new(Common::PayloadTooLarge)
                .with_message(format!("an upload may have at most {max_rows} rows")));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| lines.line_at(p.byte()));
                rows.push(done(
                    line,
                    String::new(),
                    RowResult::Invalid,
                    &format!("unreadable row: {e}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| lines.line_at(p.byte()));
        let raw = record.get(column).unwrap_or("").to_owned();
        if raw.is_empty() {
            rows.push(done(line, raw, RowResult::Invalid, "person_id is empty"));
            continue;
        }
        match PersonId::parse(&raw) {
            Err(e) => rows.push(done(line, raw, RowResult::Invalid, &e.to_string())),
            Ok(person) if !seen.insert(person.clone()) => {
                rows.push(done(line, raw, RowResult::Skipped, "duplicate row"));
            }
            Ok(person) => rows.push(ParsedRow::Person { line, person }),
        }
    }
    Ok(rows)
}

/// Physical line numbers from byte offsets (the csv crate's own line count skips blank
/// lines, which would point the administrator at the wrong row). Offsets only grow, so
/// counting is linear over the file.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, byte: u64) -> u64 {
        let mut target = usize::try_from(byte)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        // A record's position is where the reader started, before the blank lines it skipped.
        while self
            .bytes
            .get(target)
            .is_some_and(|b| *b == b'\n' || *b == b'\r')
        {
            target += 1;
        }
        if target > self.offset {
            let newlines = self.bytes[self.offset..target]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.line += u64::try_from(newlines).unwrap_or(0);
            self.offset = target;
        }
        self.line
    }
}

/// Issues a list campaign's vouchers to the persons of an uploaded CSV.
///
/// # Errors
/// `CAMPAIGN_NOT_FOUND`, `FORBIDDEN_PLACE`, `CAMPAIGN_NOT_LIST`, `CAMPAIGN_PAUSED`,
/// `INVALID_FIELD` (header), `PAYLOAD_TOO_LARGE` (rows). Per-row store failures are reported
/// in the rows, not as an error.
#[tracing::instrument(name = "issuance.bulk.issue", skip_all, fields(admin = %admin.name, campaign_id = campaign_id.0))]
pub async fn issue(
    state: &AppState,
    admin: &Admin,
    campaign_id: CampaignId,
    csv: &[u8],
) -> Result<BulkReport, ApiError> {
    let campaign = crate::admin::managed_campaign(state, admin, campaign_id).await?;
    if campaign.spec.distribution != Distribution::List {
        return Err(error::campaign_not_list(campaign_id));
    }
    if campaign.status == CampaignStatus::Paused {
        return Err(ApiError::new(Code::CampaignPaused));
    }
    let parsed = parse_csv(csv, state.settings.bulk.max_rows)?;
    let now = to_millis(state.clock.now());
    let (valid_from, valid_until) = window(&campaign, now);
    let campaign = &campaign;
    // Rows are issued one after another in file order, so that the report is the same
    // every time: the first row of a repeated person issues, and stock runs out at the
    // same row. (A claim is one Redis round trip: ~10,000 rows a second.)
    let rows: Vec<BulkRow> = futures::stream::iter(parsed)
        .then(|row| async move {
            match row {
                ParsedRow::Done(row) => row,
                ParsedRow::Person { line, person } => {
                    let request = ClaimRequest {
                        campaign_id,
                        claim_id: bulk_claim_id(campaign_id, &person),
                        person_id: person,
                        voucher_id: VoucherId(Uuid::now_v7()),
                        round_no: 0,
                        now,
                        valid_from,
                        valid_until,
                        mode: ClaimMode::List,
                    };
                    issue_one(state, campaign, line, &request).await
                }
            }
        })
        .collect()
        .await;
    let count = |r: RowResult| rows.iter().filter(|row| row.result == r).count();
    Ok(BulkReport {
        issued: count(RowResult::Issued),
        skipped: count(RowResult::Skipped),
        invalid: count(RowResult::Invalid),
        failed: count(RowResult::Failed),
        rows,
    })
}

async fn issue_one(
    state: &AppState,
    campaign: &Campaign,
    line: u64,
    request: &ClaimRequest,
) -> BulkRow {
    let row = |result, voucher_id: Option<VoucherId>, reason: Option<&str>| BulkRow {
        line,
        person_id: request.person_id.as_str().to_owned(),
        result,
        voucher_id: voucher_id.map(|v| v.0),
        reason: reason.map(str::to_owned),
    };
    match run_claim(state, campaign, request).await {
        Ok(ClaimOutcome::Claimed(v)) => row(RowResult::Issued, Some(v.voucher_id), None),
        Ok(ClaimOutcome::Replayed(v)) => row(
            RowResult::Skipped,
            Some(v.voucher_id),
            Some("already issued"),
        ),
        Ok(ClaimOutcome::LimitReached) => {
            row(RowResult::Skipped, None, Some("per-person limit reached"))
        }
        Ok(ClaimOutcome::SoldOut) => row(RowResult::Skipped, None, Some("sold out")),
        Ok(ClaimOutcome::Paused) => row(RowResult::Skipped, None, Some("campaign paused")),
        Ok(ClaimOutcome::NotOpen) => row(RowResult::Skipped, None, Some("campaign not open")),
        Ok(ClaimOutcome::ClaimIdConflict) => row(
            RowResult::Skipped,
            None,
            Some("claim id used by another person"),
        ),
        Ok(ClaimOutcome::UnknownCampaign) => row(
            RowResult::Failed,
            None,
            Some("the hot store does not know the campaign; upload again"),
        ),
        Err(e) => {
            tracing::warn!(line, "bulk row failed: {e}");
            row(
                RowResult::Failed,
                None,
                Some("storage unavailable; upload the file again (issued rows are skipped)"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn persons(rows: &[ParsedRow]) -> Vec<(u64, &str)> {
        rows.iter()
            .filter_map(|r| match r {
                ParsedRow::Person { line, person } => Some((*line, person.as_str())),
                ParsedRow::Done(_) => None,
            })
            .collect()
    }

    fn settled(rows: &[ParsedRow]) -> Vec<&BulkRow> {
        rows.iter()
            .filter_map(|r| match r {
                ParsedRow::Done(row) => Some(row),
                ParsedRow::Person { .. } => None,
            })
            .collect()
    }

    #[test]
    fn rows_are_parsed_with_line_numbers_and_extra_columns_ignored() {
        let csv = "name,person_id,unit\nZhang,R000001,Depot\nLi, R000002 ,Depot\n\nWang,R000003\n";
        let rows = parse_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(
            persons(&rows),
            vec![(2, "R000001"), (3, "R000002"), (5, "R000003")]
        );
    }

    #[test]
    fn invalid_and_duplicate_rows_are_reported() {
        let csv = "person_id\nR1\nbad id!\nR1\n\"\"\n";
        let rows = parse_csv(csv.as_bytes(), 10).unwrap();
        assert_eq!(persons(&rows), vec![(2, "R1")]);
        let done = settled(&rows);
        assert_eq!(done.len(), 3);
        assert_eq!((done[0].line, done[0].result), (3, RowResult::Invalid));
        assert_eq!((done[1].line, done[1].result), (4, RowResult::Skipped));
        assert_eq!(done[1].reason.as_deref(), Some("duplicate row"));
        assert_eq!(done[2].result, RowResult::Invalid);
    }

    #[test]
    fn a_header_without_person_id_is_refused() {
        let e = parse_csv(b"id\nR1\n", 10).unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
        assert!(parse_csv(b"", 10).is_err());
    }

    #[test]
    fn a_bom_before_the_header_is_accepted() {
        let rows = parse_csv("\u{feff}person_id\nR1\n".as_bytes(), 10).unwrap();
        assert_eq!(persons(&rows), vec![(2, "R1")]);
    }

    #[test]
    fn too_many_rows_is_payload_too_large() {
        let e = parse_csv(b"person_id\nA\nB\nC\n", 2).unwrap_err();
        assert_eq!(e.code(), "PAYLOAD_TOO_LARGE");
        assert!(parse_csv(b"person_id\nA\nB\n", 2).is_ok());
    }

    #[test]
    fn bulk_claim_ids_are_stable_per_campaign_and_person() {
        let p = PersonId::parse("R000001").unwrap();
        let q = PersonId::parse("R000002").unwrap();
        assert_eq!(
            bulk_claim_id(CampaignId(7), &p),
            bulk_claim_id(CampaignId(7), &p)
        );
        assert_ne!(
            bulk_claim_id(CampaignId(7), &p),
            bulk_claim_id(CampaignId(8), &p)
        );
        assert_ne!(
            bulk_claim_id(CampaignId(7), &p),
            bulk_claim_id(CampaignId(7), &q)
        );
        assert_eq!(bulk_claim_id(CampaignId(7), &p).0.get_version_num(), 5);
    }
}
