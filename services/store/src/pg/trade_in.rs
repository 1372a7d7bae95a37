//! Car trade-in subsidy (汽车以旧换新): the tables of `0008_trade_in.sql` — a program's
//! scheme (`trade_in_schemes`), uploaded papers (`trade_in_documents`), applications
//! (`trade_in_applications`) and their history of submissions and decisions
//! (`trade_in_reviews`) — and the ONE `subsidy_lines` row an approval writes.
//!
//! What makes the rules hold is here, in the database:
//! - **one subsidy per old car, new car and invoice**: partial unique indexes over the
//!   applications that are not rejected; an insert or an amendment that collides is
//!   reported by the index's name as a [`Duplicate`], whoever raced it;
//! - **one decision at a time**: a decision locks the application's row
//!   ([`lock_in_tx`]) in the transaction that writes the new status, the subsidy line and
//!   the history row, so two reviewers approving at once approve once;
//! - **papers that exist and are the applicant's**: foreign keys from the application to
//!   the applicant's own document rows.
//!
//! This module decides no business rule (the amount, the window, who may review): the
//! issuance service's `trade_in` flow does, and calls the `…_in_tx` writes inside one
//! transaction.

use crate::pg::text_enum::text_enum;
use crate::StoreError;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;
use voucher_core::trade_in::TradeInKind;

/// Where an application stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationStatus {
    /// Waiting for the review (new, or amended after a request for more).
    Submitted,
    /// Approved: the subsidy line is written. Final.
    Approved,
    /// Rejected with a reason. Final; the cars and the invoice are free for a new
    /// application.
    Rejected,
    /// The reviewer asked for more; the applicant amends and submits again.
    NeedsMore,
}

text_enum!(ApplicationStatus, "trade-in application status" {
    Submitted => "submitted",
    Approved => "approved",
    Rejected => "rejected",
    NeedsMore => "needs_more",
});

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// The first submission.
    Submit,
    /// An amendment after a request for more.
    Resubmit,
    /// Approved.
    Approve,
    /// Rejected.
    Reject,
    /// More was asked for.
    RequestMore,
}

text_enum!(ReviewAction, "trade-in review action" {
    Submit => "submit",
    Resubmit => "resubmit",
    Approve => "approve",
    Reject => "reject",
    RequestMore => "request_more",
});

/// A program's trade-in scheme as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SchemeRecord {
    /// The program it belongs to (one scheme per program).
    pub program_id: i64,
    /// The program's name (read with the scheme; not written by `create_scheme`).
    pub program_name: String,
    /// First day (Beijing).
    pub opens_on: NaiveDate,
    /// Last day (Beijing).
    pub closes_on: NaiveDate,
    /// Cap of a transfer.
    pub transfer_cap_fen: i64,
    /// Cap of a scrap.
    pub scrap_cap_fen: i64,
    /// Optional rate of the new car's price, basis points.
    pub price_rate_bp: Option<i32>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// How a scheme insert ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeWrite {
    /// Written.
    Created,
    /// The program has a scheme already.
    Exists,
    /// No such program.
    NoProgram,
}

/// Inserts a scheme.
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "store.trade_in.create_scheme", skip_all, err(level = "debug"))]
pub async fn create_scheme(pool: &PgPool, s: &SchemeRecord) -> Result<SchemeWrite, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO trade_in_schemes (program_id, opens_on, closes_on, transfer_cap_fen, scrap_cap_fen,
                                       price_rate_bp, created_by, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(s.program_id)
    .bind(s.opens_on)
    .bind(s.closes_on)
    .bind(s.transfer_cap_fen)
    .bind(s.scrap_cap_fen)
    .bind(s.price_rate_bp)
    .bind(&s.created_by)
    .bind(s.created_at)
    .execute(pool)
    .await;
    match inserted {
        Ok(_) => Ok(SchemeWrite::Created),
        Err(e) => match violated(&e) {
            Some((UNIQUE_VIOLATION, "trade_in_schemes_pkey")) => Ok(SchemeWrite::Exists),
            Some((FOREIGN_KEY_VIOLATION, "trade_in_schemes_program_id_fkey")) => {
                Ok(SchemeWrite::NoProgram)
            }
            _ => Err(e.into()),
        },
    }
}

const SCHEME_COLUMNS: &str = "program_id, (SELECT p.name FROM programs p WHERE p.id = program_id) AS program_name, opens_on, closes_on, transfer_cap_fen, scrap_cap_fen, price_rate_bp, created_by, created_at";

/// One program's scheme (on a pool, or inside a decision's transaction).
///
/// # Errors
/// Database failure.
pub async fn get_scheme<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    program_id: i64,
) -> Result<Option<SchemeRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SCHEME_COLUMNS} FROM trade_in_schemes WHERE program_id = $1"
    ))
    .bind(program_id)
    .fetch_optional(executor)
    .await?)
}

/// Every scheme, by program.
///
/// # Errors
/// Database failure.
pub async fn list_schemes(pool: &PgPool) -> Result<Vec<SchemeRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {SCHEME_COLUMNS} FROM trade_in_schemes ORDER BY program_id"
    ))
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------- documents

/// An uploader's document row (the bytes are in the documents directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DocumentRecord {
    /// Lowercase hex SHA-256 of the bytes (the file's name).
    pub sha256: String,
    /// Who uploaded it (a person id).
    pub uploaded_by: String,
    /// Bytes.
    pub size_bytes: i64,
    /// `application/pdf`, `image/jpeg` or `image/png`.
    pub content_type: String,
    /// When it was first uploaded by this person.
    pub uploaded_at: DateTime<Utc>,
}

/// Records a document for its uploader; uploading the same bytes again is a no-op. Answers
/// the row as stored (the first upload's) and whether it is new.
///
/// # Errors
/// Database failure.
#[tracing::instrument(
    name = "store.trade_in.record_document",
    skip_all,
    err(level = "debug")
)]
pub async fn record_document(
    pool: &PgPool,
    d: &DocumentRecord,
) -> Result<(DocumentRecord, bool), StoreError> {
    let inserted: Option<DocumentRecord> = sqlx::query_as(
        "INSERT INTO trade_in_documents (sha256, uploaded_by, size_bytes, content_type, uploaded_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (sha256, uploaded_by) DO NOTHING
         RETURNING sha256, uploaded_by, size_bytes, content_type, uploaded_at",
    )
    .bind(&d.sha256)
    .bind(&d.uploaded_by)
    .bind(d.size_bytes)
    .bind(&d.content_type)
    .bind(d.uploaded_at)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = inserted {
        return Ok((row, true));
    }
    let existing: DocumentRecord = sqlx::query_as(
        "SELECT sha256, uploaded_by, size_bytes, content_type, uploaded_at
         FROM trade_in_documents WHERE sha256 = $1 AND uploaded_by = $2",
    )
    .bind(&d.sha256)
    .bind(&d.uploaded_by)
    .fetch_one(pool)
    .await?;
    Ok((existing, false))
}

/// A document as `person` uploaded it.
///
/// # Errors
/// Database failure.
pub async fn document_of(
    pool: &PgPool,
    sha256: &str,
    person: &str,
) -> Result<Option<DocumentRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT sha256, uploaded_by, size_bytes, content_type, uploaded_at
         FROM trade_in_documents WHERE sha256 = $1 AND uploaded_by = $2",
    )
    .bind(sha256)
    .bind(person)
    .fetch_optional(pool)
    .await?)
}

/// The applications that cite a document (as certificate or invoice), each as its id,
/// the applicant's home place and the document's row of that applicant: what an
/// administrator's access to the bytes is scoped by.
///
/// # Errors
/// Database failure.
pub async fn citing_applications(
    pool: &PgPool,
    sha256: &str,
) -> Result<Vec<(Uuid, i32, DocumentRecord)>, StoreError> {
    let rows: Vec<(Uuid, i32, String, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT a.id, a.home_place, d.sha256, d.uploaded_by, d.size_bytes, d.content_type, d.uploaded_at
         FROM trade_in_applications a
         JOIN trade_in_documents d ON d.sha256 = $1 AND d.uploaded_by = a.person_id
         WHERE a.certificate_sha256 = $1 OR a.invoice_sha256 = $1
         ORDER BY a.submitted_at",
    )
    .bind(sha256)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, home, sha256, uploaded_by, size_bytes, content_type, uploaded_at)| {
                (
                    id,
                    home,
                    DocumentRecord {
                        sha256,
                        uploaded_by,
                        size_bytes,
                        content_type,
                        uploaded_at,
                    },
                )
            },
        )
        .collect())
}

// ---------------------------------------------------------------- applications

/// An application as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApplicationRecord {
    /// The client's application id.
    pub id: Uuid,
    /// The scheme's program.
    pub program_id: i64,
    /// The applicant.
    pub person_id: String,
    /// The applicant's home (city or county code).
    pub home_place: i32,
    /// The settlement city.
    pub city: i32,
    /// The county, when the home is one.
    pub county: Option<i32>,
    /// `transfer` or `scrap` (see [`ApplicationRecord::kind`]).
    pub kind: String,
    /// The old car's VIN.
    pub old_vin: String,
    /// The old car's plate.
    pub old_plate: String,
    /// Who certified the transfer or the scrapping (dealer or scrapping enterprise).
    pub certifier_name: String,
    /// Its credit code.
    pub certifier_credit_code: String,
    /// The transfer or scrapping certificate (a document hash).
    pub certificate_sha256: String,
    /// The new car's invoice number.
    pub invoice_no: String,
    /// The new car's VIN.
    pub new_vin: String,
    /// The new car's price on the invoice.
    pub price_fen: i64,
    /// The new car's dealer.
    pub dealer_name: String,
    /// Its credit code.
    pub dealer_credit_code: String,
    /// The invoice (a document hash).
    pub invoice_sha256: String,
    /// The invoice's date.
    pub invoice_date: NaiveDate,
    /// The subsidy the scheme gives these papers.
    pub amount_fen: i64,
    /// Where it stands.
    pub status: ApplicationStatus,
    /// The reviewer's last word: the reason of a rejection, or what is missing.
    pub note: Option<String>,
    /// How many times it was submitted (1 + amendments).
    pub submissions: i32,
    /// Digest of the first submission (a retry with the same id must match it).
    pub submission_sha256: String,
    /// First submitted.
    pub submitted_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Approved or rejected.
    pub decided_at: Option<DateTime<Utc>>,
    /// The payable an approval wrote.
    pub subsidy_line_id: Option<Uuid>,
}

impl ApplicationRecord {
    /// The kind, parsed.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a kind the schema would not hold.
    pub fn kind(&self) -> Result<TradeInKind, StoreError> {
        self.kind.parse().map_err(StoreError::Corrupt)
    }
}

const APPLICATION_COLUMNS: &str = "id, program_id, person_id, home_place, city, county, kind, old_vin, old_plate,
    certifier_name, certifier_credit_code, certificate_sha256, invoice_no, new_vin, price_fen, dealer_name,
    dealer_credit_code, invoice_sha256, invoice_date, amount_fen, status, note, submissions, submission_sha256,
    submitted_at, updated_at, decided_at, subsidy_line_id";

/// What an application's papers were already claimed by: the index that refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Duplicate {
    /// `trade_in_applications_old_vin_key`: another live application has this old car.
    OldVin,
    /// `trade_in_applications_new_vin_key`: … this new car.
    NewVin,
    /// `trade_in_applications_invoice_no_key`: … this invoice.
    InvoiceNo,
}

impl Duplicate {
    /// Every duplicate, with the name of its index.
    pub const ALL: [(Duplicate, &'static str); 3] = [
        (Duplicate::OldVin, "trade_in_applications_old_vin_key"),
        (Duplicate::NewVin, "trade_in_applications_new_vin_key"),
        (Duplicate::InvoiceNo, "trade_in_applications_invoice_no_key"),
    ];
}

/// A cited document the applicant has not uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingDocument {
    /// `trade_in_applications_certificate_sha256_person_id_fkey`.
    Certificate,
    /// `trade_in_applications_invoice_sha256_person_id_fkey`.
    Invoice,
}

impl MissingDocument {
    /// Every missing document, with the name of its foreign key.
    pub const ALL: [(MissingDocument, &'static str); 2] = [
        (
            MissingDocument::Certificate,
            "trade_in_applications_certificate_sha256_person_id_fkey",
        ),
        (
            MissingDocument::Invoice,
            "trade_in_applications_invoice_sha256_person_id_fkey",
        ),
    ];
}

/// Why an application write was refused by the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// A live application holds this old car, new car or invoice.
    Duplicate(Duplicate),
    /// A cited document was not uploaded by the applicant.
    MissingDocument(MissingDocument),
    /// The program has no scheme.
    NoScheme,
}

/// The name of every constraint this module maps (the system tests check that each exists).
pub fn mapped_constraints() -> impl Iterator<Item = &'static str> {
    Duplicate::ALL
        .iter()
        .map(|(_, n)| *n)
        .chain(MissingDocument::ALL.iter().map(|(_, n)| *n))
        .chain([
            "trade_in_applications_program_id_fkey",
            "trade_in_schemes_pkey",
            "trade_in_schemes_program_id_fkey",
        ])
}

const UNIQUE_VIOLATION: &str = "23505";
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// The SQLSTATE and constraint name of a violation.
fn violated(e: &sqlx::Error) -> Option<(&str, &str)> {
    let db = e.as_database_error()?;
    let code = match db.code()?.as_ref() {
        UNIQUE_VIOLATION => UNIQUE_VIOLATION,
        FOREIGN_KEY_VIOLATION => FOREIGN_KEY_VIOLATION,
        _ => return None,
    };
    Some((code, db.constraint()?))
}

/// The refusal an application write expects (by constraint name and SQLSTATE), or the
/// database error as it is (a violation of any other constraint is a bug: 500).
fn refusal(e: sqlx::Error) -> Result<Refused, StoreError> {
    let mapped = violated(&e).and_then(|(code, name)| match code {
        UNIQUE_VIOLATION => Duplicate::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(d, _)| Refused::Duplicate(*d)),
        _ if name == "trade_in_applications_program_id_fkey" => Some(Refused::NoScheme),
        _ => MissingDocument::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(m, _)| Refused::MissingDocument(*m)),
    });
    mapped.ok_or_else(|| StoreError::Pg(e))
}

/// A new application (its status is `submitted`, its submissions 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApplication {
    /// The client's id.
    pub id: Uuid,
    /// The scheme's program.
    pub program_id: i64,
    /// The applicant.
    pub person_id: String,
    /// Home place, city, county.
    pub home_place: i32,
    /// Settlement city.
    pub city: i32,
    /// County, if any.
    pub county: Option<i32>,
    /// Submitted at.
    pub at: DateTime<Utc>,
    /// Digest of the submission.
    pub submission_sha256: String,
    /// The papers.
    pub papers: Papers,
}

/// The papers of an application (what an amendment replaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Papers {
    /// `transfer` or `scrap`.
    pub kind: TradeInKind,
    /// Old car.
    pub old_vin: String,
    /// Old plate.
    pub old_plate: String,
    /// Certifier.
    pub certifier_name: String,
    /// Certifier's credit code.
    pub certifier_credit_code: String,
    /// Certificate hash.
    pub certificate_sha256: String,
    /// Invoice number.
    pub invoice_no: String,
    /// New car.
    pub new_vin: String,
    /// Price.
    pub price_fen: i64,
    /// Dealer.
    pub dealer_name: String,
    /// Dealer's credit code.
    pub dealer_credit_code: String,
    /// Invoice hash.
    pub invoice_sha256: String,
    /// Invoice date.
    pub invoice_date: NaiveDate,
    /// The subsidy.
    pub amount_fen: i64,
}

/// How an application insert ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    /// Written, with its first history row.
    New(Box<ApplicationRecord>),
    /// An application with this id exists (a retry, or another person's id): as stored.
    Existing(Box<ApplicationRecord>),
    /// The schema refused it; nothing was written.
    Refused(Refused),
}

/// A history row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ReviewRecord {
    /// The application.
    pub application_id: Uuid,
    /// What happened.
    pub action: ReviewAction,
    /// A person id or an administrator's name.
    pub actor: String,
    /// `resident`, `province` or `city`.
    pub role: String,
    /// The actor's place (a resident's home, an administrator's place).
    pub place: i32,
    /// Status before (`None` for the first submission).
    pub from_status: Option<ApplicationStatus>,
    /// Status after.
    pub to_status: ApplicationStatus,
    /// Reason, what is missing.
    pub note: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Inserts an application and its `submit` history row, in one transaction; an existing id
/// is answered with the stored application and nothing is written.
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "store.trade_in.insert", skip_all, err(level = "debug"))]
pub async fn insert_application(
    pool: &PgPool,
    a: &NewApplication,
    actor_role: &str,
) -> Result<Inserted, StoreError> {
    let mut tx = pool.begin().await?;
    let p = &a.papers;
    let inserted = sqlx::query_as::<_, ApplicationRecord>(&format!(
        "INSERT INTO trade_in_applications (id, program_id, person_id, home_place, city, county, kind,
            old_vin, old_plate, certifier_name, certifier_credit_code, certificate_sha256, invoice_no,
            new_vin, price_fen, dealer_name, dealer_credit_code, invoice_sha256, invoice_date, amount_fen,
            status, submission_sha256, submitted_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, 'submitted', $21, $22, $22)
         ON CONFLICT (id) DO NOTHING
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(a.id)
    .bind(a.program_id)
    .bind(&a.person_id)
    .bind(a.home_place)
    .bind(a.city)
    .bind(a.county)
    .bind(p.kind.as_str())
    .bind(&p.old_vin)
    .bind(&p.old_plate)
    .bind(&p.certifier_name)
    .bind(&p.certifier_credit_code)
    .bind(&p.certificate_sha256)
    .bind(&p.invoice_no)
    .bind(&p.new_vin)
    .bind(p.price_fen)
    .bind(&p.dealer_name)
    .bind(&p.dealer_credit_code)
    .bind(&p.invoice_sha256)
    .bind(p.invoice_date)
    .bind(p.amount_fen)
    .bind(&a.submission_sha256)
    .bind(a.at)
    .fetch_optional(&mut *tx)
    .await;
    let record = match inserted {
        Ok(Some(record)) => record,
        Ok(None) => {
            drop(tx);
            return match get(pool, a.id).await? {
                Some(existing) => Ok(Inserted::Existing(Box::new(existing))),
                // Only possible if the row vanished in between, which nothing does.
                None => Err(StoreError::Corrupt(format!(
                    "application {} conflicted but does not exist",
                    a.id
                ))),
            };
        }
        Err(e) => return refusal(e).map(Inserted::Refused),
    };
    insert_review_in_tx(
        &mut tx,
        &ReviewRecord {
            application_id: a.id,
            action: ReviewAction::Submit,
            actor: a.person_id.clone(),
            role: actor_role.to_owned(),
            place: a.home_place,
            from_status: None,
            to_status: ApplicationStatus::Submitted,
            note: None,
            at: a.at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Inserted::New(Box::new(record)))
}

/// How an amendment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amended {
    /// The new papers are stored and the application is `submitted` again.
    Done(Box<ApplicationRecord>),
    /// The applicant has no application with this id.
    NotFound,
    /// The application is not waiting for more (its status).
    NotWaiting(ApplicationStatus),
    /// The schema refused the new papers; nothing was written.
    Refused(Refused),
}

/// Replaces the papers of `person`'s application `id` that waits for more, sets it
/// `submitted` again and records a `resubmit` history row, in one transaction.
///
/// # Errors
/// Database failure.
#[tracing::instrument(name = "store.trade_in.amend", skip_all, err(level = "debug"))]
pub async fn amend(
    pool: &PgPool,
    id: Uuid,
    person: &str,
    p: &Papers,
    at: DateTime<Utc>,
) -> Result<Amended, StoreError> {
    let mut tx = pool.begin().await?;
    let updated = sqlx::query_as::<_, ApplicationRecord>(&format!(
        "UPDATE trade_in_applications SET kind = $3, old_vin = $4, old_plate = $5, certifier_name = $6,
            certifier_credit_code = $7, certificate_sha256 = $8, invoice_no = $9, new_vin = $10,
            price_fen = $11, dealer_name = $12, dealer_credit_code = $13, invoice_sha256 = $14,
            invoice_date = $15, amount_fen = $16, status = 'submitted', note = NULL,
            submissions = submissions + 1, updated_at = $17
         WHERE id = $1 AND person_id = $2 AND status = 'needs_more'
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(id)
    .bind(person)
    .bind(p.kind.as_str())
    .bind(&p.old_vin)
    .bind(&p.old_plate)
    .bind(&p.certifier_name)
    .bind(&p.certifier_credit_code)
    .bind(&p.certificate_sha256)
    .bind(&p.invoice_no)
    .bind(&p.new_vin)
    .bind(p.price_fen)
    .bind(&p.dealer_name)
    .bind(&p.dealer_credit_code)
    .bind(&p.invoice_sha256)
    .bind(p.invoice_date)
    .bind(p.amount_fen)
    .bind(at)
    .fetch_optional(&mut *tx)
    .await;
    let record = match updated {
        Ok(Some(record)) => record,
        Ok(None) => {
            drop(tx);
            return Ok(match get(pool, id).await? {
                Some(a) if a.person_id == person => Amended::NotWaiting(a.status),
                _ => Amended::NotFound,
            });
        }
        Err(e) => return refusal(e).map(Amended::Refused),
    };
    insert_review_in_tx(
        &mut tx,
        &ReviewRecord {
            application_id: id,
            action: ReviewAction::Resubmit,
            actor: person.to_owned(),
            role: "resident".to_owned(),
            place: record.home_place,
            from_status: Some(ApplicationStatus::NeedsMore),
            to_status: ApplicationStatus::Submitted,
            note: None,
            at,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Amended::Done(Box::new(record)))
}

/// One application.
///
/// # Errors
/// Database failure.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<ApplicationRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM trade_in_applications WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?)
}

/// A person's applications, newest first.
///
/// # Errors
/// Database failure.
pub async fn list_for_person(
    pool: &PgPool,
    person: &str,
) -> Result<Vec<ApplicationRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM trade_in_applications
         WHERE person_id = $1 ORDER BY submitted_at DESC, id"
    ))
    .bind(person)
    .fetch_all(pool)
    .await?)
}

/// Applications whose applicant's home lies in `homes` (an inclusive range of place codes:
/// a province, a city with its counties, or one county), optionally of one status, oldest
/// first (the review queue), at most `limit`, after `after` (a submission instant, for
/// paging).
///
/// # Errors
/// Database failure.
pub async fn list_for_review(
    pool: &PgPool,
    homes: (i32, i32),
    status: Option<ApplicationStatus>,
    after: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<ApplicationRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM trade_in_applications
         WHERE home_place BETWEEN $1 AND $2
           AND ($3::text IS NULL OR status = $3)
           AND ($4::timestamptz IS NULL OR submitted_at > $4)
         ORDER BY submitted_at, id LIMIT $5"
    ))
    .bind(homes.0)
    .bind(homes.1)
    .bind(status)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// An application's history, in order.
///
/// # Errors
/// Database failure.
pub async fn history(pool: &PgPool, id: Uuid) -> Result<Vec<ReviewRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT application_id, action, actor, role, place, from_status, to_status, note, at
         FROM trade_in_reviews WHERE application_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(pool)
    .await?)
}

// ---------------------------------------------------------------- decisions (one transaction)

/// Locks an application's row for a decision (`SELECT … FOR UPDATE`): a concurrent decision
/// waits, then sees this one's outcome.
///
/// # Errors
/// Database failure.
pub async fn lock_in_tx(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<ApplicationRecord>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {APPLICATION_COLUMNS} FROM trade_in_applications WHERE id = $1 FOR UPDATE"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?)
}

/// Sets a locked application's decision: its status, note, amount, decision time (for a
/// final status) and subsidy line.
///
/// # Errors
/// Database failure.
#[allow(clippy::too_many_arguments)]
pub async fn set_status_in_tx(
    conn: &mut PgConnection,
    id: Uuid,
    status: ApplicationStatus,
    note: Option<&str>,
    amount_fen: i64,
    subsidy_line_id: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<ApplicationRecord, StoreError> {
    let is_final = matches!(
        status,
        ApplicationStatus::Approved | ApplicationStatus::Rejected
    );
    Ok(sqlx::query_as(&format!(
        "UPDATE trade_in_applications
         SET status = $2, note = $3, amount_fen = $4, subsidy_line_id = $5, updated_at = $6,
             decided_at = CASE WHEN $7 THEN $6 ELSE decided_at END
         WHERE id = $1
         RETURNING {APPLICATION_COLUMNS}"
    ))
    .bind(id)
    .bind(status)
    .bind(note)
    .bind(amount_fen)
    .bind(subsidy_line_id)
    .bind(at)
    .bind(is_final)
    .fetch_one(conn)
    .await?)
}

/// Appends a history row.
///
/// # Errors
/// Database failure.
pub async fn insert_review_in_tx(
    conn: &mut PgConnection,
    r: &ReviewRecord,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO trade_in_reviews (application_id, action, actor, role, place, from_status, to_status, note, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(r.application_id)
    .bind(r.action)
    .bind(&r.actor)
    .bind(&r.role)
    .bind(r.place)
    .bind(r.from_status)
    .bind(r.to_status)
    .bind(&r.note)
    .bind(r.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// The payable an approval creates: one `subsidy_lines` row paid to the resident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResidentSubsidyLine {
    /// New id.
    pub id: Uuid,
    /// `trade_in:<application id>` (unique: writing it twice is refused).
    pub source: String,
    /// `trade_in`.
    pub kind: String,
    /// The scheme's program.
    pub program_id: i64,
    /// Settlement city.
    pub city: i32,
    /// County, if the resident's home is one.
    pub county: Option<i32>,
    /// The resident.
    pub person_id: String,
    /// The subsidy (> 0).
    pub amount_fen: i64,
    /// The approval instant.
    pub counted_at: DateTime<Utc>,
    /// Facts for the reports.
    pub detail: serde_json::Value,
}

/// Inserts a resident's subsidy line.
///
/// # Errors
/// Database failure (a second line of the same source is a unique violation: a bug, since
/// the decision holds the application's lock).
pub async fn insert_subsidy_line_in_tx(
    conn: &mut PgConnection,
    l: &ResidentSubsidyLine,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO subsidy_lines (id, source, kind, program_id, campaign_id, city, county, payee_kind,
                                    merchant_id, person_id, amount_fen, counted_at, detail)
         VALUES ($1, $2, $3, $4, NULL, $5, $6, 'resident', NULL, $7, $8, $9, $10)",
    )
    .bind(l.id)
    .bind(&l.source)
    .bind(&l.kind)
    .bind(l.program_id)
    .bind(l.city)
    .bind(l.county)
    .bind(&l.person_id)
    .bind(l.amount_fen)
    .bind(l.counted_at)
    .bind(&l.detail)
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::text_enum::assert_names_agree;

    #[test]
    fn stored_names_are_the_api_names() {
        assert_names_agree(ApplicationStatus::ALL, |s| s.as_str());
        assert_names_agree(ReviewAction::ALL, |s| s.as_str());
    }

    #[test]
    fn each_mapped_constraint_is_named_once() {
        let names: std::collections::HashSet<_> = mapped_constraints().collect();
        assert_eq!(names.len(), mapped_constraints().count());
    }
}
