//! Car trade-in subsidy (汽车以旧换新, seed 004 §二(一)): an application with a review, paid
//! on documents (持相关手续). The rules live here and in `voucher_core::trade_in` (the
//! arithmetic); the handlers in [`crate::routes::trade_in`] are thin.
//!
//! **Scheme.** A province administrator gives a program a scheme: its window (Beijing days)
//! and its money terms (a cap per kind, an optional rate of the new car's price). Created
//! once; approved amounts were computed from it, so it does not change.
//!
//! **Documents.** A resident uploads each paper as a raw body (PDF, JPEG or PNG, up to
//! `documents.max_bytes`). The bytes are checked against their `Content-Type` (the file's
//! magic number), hashed (SHA-256), and written ONCE to `documents.dir/<sha256>`: a
//! temporary file, flushed to disk, renamed into place (atomic: a reader never sees half a
//! file; the same bytes twice are one file). Then the uploader's row is recorded; a crash in
//! between leaves a file without a row, which the next upload of the same bytes adopts.
//!
//! **Application.** Order of checks: the papers parse (VINs with their check digit, the
//! plate, credit codes, the invoice number, price, dates, hashes) → the program has a
//! scheme → the applicant's home lies in the scheme's province → today (Beijing) lies in the
//! window → the invoice date lies in the window and is not in the future → the new car's
//! dealer and the certifier (used-car dealer or scrapping enterprise) are registered in the
//! province (their credit codes say where) → the amount is positive → the insert, where
//! PostgreSQL refuses a duplicate old car, new car or invoice (partial unique indexes over
//! the applications that are not rejected: no race can pass two) and papers the applicant
//! did not upload (foreign keys). Idempotent on the client's `application_id`.
//!
//! **Review.** An administrator of the applicant's place (a city officer for their city and
//! its counties; the province for all) approves, rejects with a reason, or asks for more.
//! Each decision locks the application's row, checks its status, writes the new status and
//! a history row (who, role, place, when) in one transaction; an approval also writes the
//! ONE payable, a `subsidy_lines` row paid to the resident, with the amount recomputed
//! from the scheme. Repeating the decision the application already has answers it again
//! and writes nothing (two reviewers approving at once approve once). The applicant amends
//! an application that waits for more; the window is not checked again (the application
//! was made within it), the invoice date still is.

use crate::auth::Admin;
use crate::error::{self, ApiError, Code};
use crate::state::AppState;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::path::{Path, PathBuf};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use voucher_core::identity::Identity;
use voucher_core::place::PlaceLevel;
use voucher_core::trade_in::{
    beijing_day, registration_place, InvoiceNo, Plate, SchemeTerms, SchemeWindow, TradeInKind, Vin,
    MAX_PRICE_FEN,
};
use voucher_core::{AdminRole, BasisPoints, CreditCode, Fen, PlaceCode, ProgramId};
use voucher_store::pg::programs;
use voucher_store::pg::trade_in::{
    self as store, Amended, ApplicationRecord, ApplicationStatus, DocumentRecord, Duplicate,
    Inserted, MissingDocument, Papers, Refused, ResidentSubsidyLine, ReviewAction, ReviewRecord,
    SchemeRecord, SchemeWrite,
};

/// The `kind` of the subsidy lines this scheme writes.
pub const LINE_KIND: &str = "trade_in";

// ---------------------------------------------------------------- schemes

/// `POST /v1/admin/trade-in/schemes` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "program_id": 1, "opens_on": "2023-07-01", "closes_on": "2023-12-31",
    "transfer_cap_fen": 200000, "scrap_cap_fen": 300000
}))]
pub struct NewSchemeBody {
    /// The program (its funder is the scheme's province; its ratio, pool and allocations
    /// settle the subsidies).
    pub program_id: i64,
    /// First day applications are accepted (Beijing), e.g. 2023-07-01.
    pub opens_on: NaiveDate,
    /// Last day (Beijing, included), e.g. 2023-12-31.
    pub closes_on: NaiveDate,
    /// The most a transfer (转出) gets, fen (200000 = 2,000 yuan).
    pub transfer_cap_fen: i64,
    /// The most a scrap (报废) gets, fen (300000 = 3,000 yuan).
    pub scrap_cap_fen: i64,
    /// Optional: the subsidy is also at most this share of the new car's price, basis
    /// points (1–10000). Default none: the cap is the amount.
    #[serde(default)]
    pub price_rate_bp: Option<u32>,
}

/// A scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SchemeView {
    /// Its program.
    pub program_id: i64,
    /// The program's name.
    pub program_name: String,
    /// First day (Beijing).
    pub opens_on: NaiveDate,
    /// Last day (Beijing, included).
    pub closes_on: NaiveDate,
    /// Cap of a transfer, fen.
    pub transfer_cap_fen: i64,
    /// Cap of a scrap, fen.
    pub scrap_cap_fen: i64,
    /// Rate of the new car's price, basis points, if any.
    pub price_rate_bp: Option<i32>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<SchemeRecord> for SchemeView {
    fn from(s: SchemeRecord) -> SchemeView {
        SchemeView {
            program_id: s.program_id,
            program_name: s.program_name,
            opens_on: s.opens_on,
            closes_on: s.closes_on,
            transfer_cap_fen: s.transfer_cap_fen,
            scrap_cap_fen: s.scrap_cap_fen,
            price_rate_bp: s.price_rate_bp,
            created_by: s.created_by,
            created_at: s.created_at,
        }
    }
}

/// A stored scheme as the domain's terms and window.
struct Scheme {
    terms: SchemeTerms,
    window: SchemeWindow,
}

fn scheme_of(s: &SchemeRecord) -> Result<Scheme, ApiError> {
    let corrupt = |what: &str| {
        ApiError::internal(anyhow::anyhow!(
            "trade-in scheme of program {}: {what}",
            s.program_id
        ))
    };
    let fen = |v: i64| Fen::try_from(v).map_err(|e| corrupt(&e.to_string()));
    let price_rate = s
        .price_rate_bp
        .map(|bp| {
            u32::try_from(bp)
                .ok()
                .and_then(|bp| BasisPoints::try_from(bp).ok())
                .ok_or_else(|| corrupt("price rate"))
        })
        .transpose()?;
    Ok(Scheme {
        terms: SchemeTerms {
            transfer_cap: fen(s.transfer_cap_fen)?,
            scrap_cap: fen(s.scrap_cap_fen)?,
            price_rate,
        },
        window: SchemeWindow::new(s.opens_on, s.closes_on).map_err(|e| corrupt(&e.to_string()))?,
    })
}

/// Creates a program's scheme (province administrators, within their province).
///
/// # Errors
/// `FORBIDDEN_ROLE`, `FORBIDDEN_PLACE`, `INVALID_FIELD`, `PROGRAM_NOT_FOUND`,
/// `TRADE_IN_SCHEME_EXISTS`, store failures.
#[tracing::instrument(name = "issuance.trade_in.create_scheme", skip_all, fields(admin = %admin.name))]
pub async fn create_scheme(
    state: &AppState,
    admin: &Admin,
    body: NewSchemeBody,
) -> Result<SchemeView, ApiError> {
    admin.require_role(AdminRole::Province)?;
    let fen = |field: &'static str, v: i64| {
        Fen::try_from(v).map_err(|e| ApiError::invalid_field(field, e))
    };
    let price_rate = body
        .price_rate_bp
        .map(|bp| {
            BasisPoints::try_from(bp).map_err(|e| ApiError::invalid_field("price_rate_bp", e))
        })
        .transpose()?;
    let terms = SchemeTerms {
        transfer_cap: fen("transfer_cap_fen", body.transfer_cap_fen)?,
        scrap_cap: fen("scrap_cap_fen", body.scrap_cap_fen)?,
        price_rate,
    };
    terms.validate().map_err(|e| {
        let field = match e {
            voucher_core::trade_in::InvalidTerms::Cap { field, .. } => field,
            voucher_core::trade_in::InvalidTerms::ZeroRate => "price_rate_bp",
        };
        ApiError::invalid_field(field, e)
    })?;
    SchemeWindow::new(body.opens_on, body.closes_on)
        .map_err(|e| ApiError::invalid_field("closes_on", e))?;
    let program_id = ProgramId(body.program_id);
    let program = programs::get(&state.pg, program_id)
        .await?
        .ok_or_else(|| error::program_not_found(program_id))?;
    admin.require_place(program.spec.funder_place)?;
    let record = SchemeRecord {
        program_id: body.program_id,
        program_name: program.spec.name.clone(),
        opens_on: body.opens_on,
        closes_on: body.closes_on,
        transfer_cap_fen: terms.transfer_cap.as_i64(),
        scrap_cap_fen: terms.scrap_cap.as_i64(),
        price_rate_bp: terms.price_rate.map(|bp| i32::from(bp.get())),
        created_by: admin.name.clone(),
        created_at: state.clock.now(),
    };
    match store::create_scheme(&state.pg, &record).await? {
        SchemeWrite::Created => Ok(record.into()),
        SchemeWrite::Exists => Err(
            ApiError::new(Code::TradeInSchemeExists).with_message(format!(
                "program {program_id} has a trade-in scheme already"
            )),
        ),
        SchemeWrite::NoProgram => Err(error::program_not_found(program_id)),
    }
}

/// Every scheme.
///
/// # Errors
/// Store failures.
pub async fn list_schemes(state: &AppState) -> Result<Vec<SchemeView>, ApiError> {
    Ok(store::list_schemes(&state.pg)
        .await?
        .into_iter()
        .map(SchemeView::from)
        .collect())
}

fn scheme_not_found(program_id: i64) -> ApiError {
    ApiError::new(Code::TradeInSchemeNotFound)
        .with_message(format!("program {program_id} has no trade-in scheme"))
        .with_details(json!({ "program_id": program_id }))
}

// ---------------------------------------------------------------- documents

/// The papers' formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentType {
    /// `application/pdf`.
    Pdf,
    /// `image/jpeg`.
    Jpeg,
    /// `image/png`.
    Png,
}

impl DocumentType {
    /// Every format.
    pub const ALL: [DocumentType; 3] = [DocumentType::Pdf, DocumentType::Jpeg, DocumentType::Png];

    /// The media type.
    pub const fn media_type(self) -> &'static str {
        match self {
            DocumentType::Pdf => "application/pdf",
            DocumentType::Jpeg => "image/jpeg",
            DocumentType::Png => "image/png",
        }
    }

    /// The format of a `Content-Type` value (parameters ignored), if it is one.
    pub fn from_content_type(value: &str) -> Option<DocumentType> {
        let essence = value.split(';').next()?.trim().to_ascii_lowercase();
        DocumentType::ALL
            .into_iter()
            .find(|t| t.media_type() == essence)
    }

    /// Whether `bytes` begin as a file of this format does.
    pub fn matches(self, bytes: &[u8]) -> bool {
        match self {
            DocumentType::Pdf => bytes.starts_with(b"%PDF-"),
            DocumentType::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
            DocumentType::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        }
    }
}

/// The `UNSUPPORTED_MEDIA_TYPE` of an upload, naming the accepted types.
pub fn unsupported_document_type() -> ApiError {
    let allowed: Vec<&str> = DocumentType::ALL.iter().map(|t| t.media_type()).collect();
    ApiError::unsupported_media_type(&allowed.join(", "))
        .with_details(json!({ "allowed": allowed }))
}

/// An uploaded document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    /// Lowercase hex SHA-256 of the bytes: cite it in an application.
    pub sha256: String,
    /// Bytes.
    pub size_bytes: i64,
    /// Media type.
    pub content_type: String,
    /// When you first uploaded it.
    pub uploaded_at: DateTime<Utc>,
    /// `false` when you had uploaded the same bytes before (HTTP 200 instead of 201).
    pub created: bool,
}

/// Lowercase hex SHA-256.
fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Whether `s` is a lowercase hex SHA-256 (and so a safe file name).
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A document hash from a request (upper case accepted).
fn parse_sha256(field: &str, s: &str) -> Result<String, ApiError> {
    let s = s.trim().to_ascii_lowercase();
    if is_sha256_hex(&s) {
        Ok(s)
    } else {
        Err(ApiError::invalid_field(
            field,
            "must be the 64 hex characters of a document's SHA-256, as the upload answered",
        ))
    }
}

/// Writes `bytes` to `dir/<sha256>` unless the file exists: a temporary file in the same
/// directory, flushed, renamed into place, then the directory flushed (so the rename
/// survives a crash).
fn write_once(dir: &Path, sha256: &str, bytes: &[u8]) -> std::io::Result<bool> {
    use std::io::Write as _;
    let target = dir.join(sha256);
    if target.try_exists()? {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{sha256}.{}.tmp", Uuid::new_v4()));
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        // Best effort: the temporary file is garbage either way.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| true)
}

/// Stores an uploaded document for `who`.
///
/// # Errors
/// `INVALID_FIELD` (an empty body), `DOCUMENT_CONTENT_MISMATCH`, 503 when the directory or
/// the database fails.
#[tracing::instrument(name = "issuance.trade_in.upload", skip_all, fields(size = bytes.len()))]
pub async fn upload_document(
    state: &AppState,
    who: &Identity,
    kind: DocumentType,
    bytes: actix_web::web::Bytes,
) -> Result<DocumentView, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::invalid_field("body", "the document is empty"));
    }
    if !kind.matches(&bytes) {
        return Err(
            ApiError::new(Code::DocumentContentMismatch).with_message(format!(
                "the body is not a {} file (its first bytes say otherwise)",
                kind.media_type()
            )),
        );
    }
    let size_bytes = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let dir: PathBuf = state.settings.documents.dir.clone();
    let (sha256, file_created) = tokio::task::spawn_blocking(move || {
        let sha256 = sha256_hex(&bytes);
        write_once(&dir, &sha256, &bytes).map(|created| (sha256, created))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::unavailable(anyhow::Error::new(e).context("writing the document")))?;
    if file_created {
        tracing::info!(sha256 = %sha256, size = size_bytes, "trade-in document stored");
    }
    let (row, created) = store::record_document(
        &state.pg,
        &DocumentRecord {
            sha256,
            uploaded_by: who.person_id.as_str().to_owned(),
            size_bytes,
            content_type: kind.media_type().to_owned(),
            uploaded_at: state.clock.now(),
        },
    )
    .await?;
    Ok(DocumentView {
        sha256: row.sha256,
        size_bytes: row.size_bytes,
        content_type: row.content_type,
        uploaded_at: row.uploaded_at,
        created,
    })
}

/// A document's bytes for an administrator who may see an application citing it.
///
/// # Errors
/// `INVALID_FIELD` (not a hash), `DOCUMENT_NOT_FOUND` (cited by no application),
/// `FORBIDDEN_PLACE` (only by applications of other places), store failures.
pub async fn document_for_admin(
    state: &AppState,
    admin: &Admin,
    sha256: &str,
) -> Result<(String, Vec<u8>), ApiError> {
    let sha256 = parse_sha256("sha256", sha256)?;
    let citing = store::citing_applications(&state.pg, &sha256).await?;
    let not_found = || {
        ApiError::new(Code::DocumentNotFound)
            .with_message(format!("no application cites document {sha256}"))
    };
    let visible = citing
        .iter()
        .find(|(_, home, _)| place_of(*home).is_ok_and(|p| admin.can_manage(p)));
    let Some((_, _, doc)) = visible else {
        // Cited, but only by applications of places the administrator does not manage.
        let (_, home, _) = citing.first().ok_or_else(not_found)?;
        admin.require_place(place_of(*home)?)?;
        return Err(not_found());
    };
    let path = state.settings.documents.dir.join(&sha256);
    let bytes = tokio::fs::read(&path).await.map_err(|e| {
        ApiError::internal(anyhow::Error::new(e).context(format!(
            "reading document {} (recorded but not readable)",
            path.display()
        )))
    })?;
    Ok((doc.content_type.clone(), bytes))
}

// ---------------------------------------------------------------- application bodies

/// A business named on the papers.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessBody {
    /// Its name, 1–200 characters.
    pub name: String,
    /// Its unified social credit code (统一社会信用代码, 18 characters with its check
    /// character); characters 3–8 say where it is registered.
    pub credit_code: String,
}

/// The old car.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OldCarBody {
    /// Its VIN (17 characters, check digit in 9th place).
    pub vin: String,
    /// Its plate, e.g. 晋E12345 or 晋ED12345.
    pub plate: String,
}

/// The new car and its invoice.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCarBody {
    /// The invoice number (8–32 digits or letters).
    pub invoice_no: String,
    /// The invoice's date (within the scheme's window, not in the future).
    pub invoice_date: NaiveDate,
    /// The new car's VIN.
    pub vin: String,
    /// The price on the invoice, fen.
    pub price_fen: i64,
    /// The dealer that sold it (registered in the province).
    pub dealer: BusinessBody,
    /// The invoice document's hash (from the upload).
    pub invoice_sha256: String,
}

/// `POST /v1/trade-in/applications` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApplicationBody {
    /// The client's idempotency key (a UUID it made): a retry returns the first answer.
    pub application_id: Uuid,
    /// The program whose scheme is applied to.
    pub program_id: i64,
    /// `transfer` (转出 through a registered used-car dealer) or `scrap` (报废).
    #[schema(value_type = String, example = "transfer")]
    pub kind: TradeInKind,
    /// The old car.
    pub old_car: OldCarBody,
    /// Who certified the transfer (the used-car dealer) or the scrapping (the scrapping
    /// enterprise); registered in the province.
    pub certifier: BusinessBody,
    /// The transfer or scrapping certificate's hash (from the upload).
    pub certificate_sha256: String,
    /// The new car.
    pub new_car: NewCarBody,
}

/// `PUT /v1/trade-in/applications/{id}` body: the amended papers (all of them).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendBody {
    /// `transfer` or `scrap`.
    #[schema(value_type = String, example = "transfer")]
    pub kind: TradeInKind,
    /// The old car.
    pub old_car: OldCarBody,
    /// The certifier.
    pub certifier: BusinessBody,
    /// The certificate's hash.
    pub certificate_sha256: String,
    /// The new car.
    pub new_car: NewCarBody,
}

impl NewApplicationBody {
    fn into_amend(self) -> (Uuid, i64, AmendBody) {
        (
            self.application_id,
            self.program_id,
            AmendBody {
                kind: self.kind,
                old_car: self.old_car,
                certifier: self.certifier,
                certificate_sha256: self.certificate_sha256,
                new_car: self.new_car,
            },
        )
    }
}

/// The papers, parsed.
struct Form {
    kind: TradeInKind,
    old_vin: Vin,
    old_plate: Plate,
    certifier_name: String,
    certifier: CreditCode,
    certificate_sha256: String,
    invoice_no: InvoiceNo,
    invoice_date: NaiveDate,
    new_vin: Vin,
    price: Fen,
    dealer_name: String,
    dealer: CreditCode,
    invoice_sha256: String,
}

fn name(field: &str, s: &str) -> Result<String, ApiError> {
    let s = s.trim();
    let len = s.chars().count();
    if (1..=200).contains(&len) {
        Ok(s.to_owned())
    } else {
        Err(ApiError::invalid_field(field, "must be 1-200 characters"))
    }
}

fn credit_code(field: &str, s: &str) -> Result<CreditCode, ApiError> {
    CreditCode::parse(s).map_err(|e| ApiError::invalid_field(field, e))
}

fn parse_form(b: &AmendBody) -> Result<Form, ApiError> {
    let old_vin =
        Vin::parse(&b.old_car.vin).map_err(|e| ApiError::invalid_field("old_car.vin", e))?;
    let new_vin =
        Vin::parse(&b.new_car.vin).map_err(|e| ApiError::invalid_field("new_car.vin", e))?;
    if old_vin == new_vin {
        return Err(ApiError::invalid_field(
            "new_car.vin",
            "the new car's VIN is the old car's",
        ));
    }
    let price = Fen::try_from(b.new_car.price_fen)
        .ok()
        .filter(|p| *p > Fen::ZERO && p.as_i64() <= MAX_PRICE_FEN)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "new_car.price_fen",
                format!("must be between 1 and {MAX_PRICE_FEN} fen"),
            )
        })?;
    Ok(Form {
        kind: b.kind,
        old_vin,
        old_plate: Plate::parse(&b.old_car.plate)
            .map_err(|e| ApiError::invalid_field("old_car.plate", e))?,
        certifier_name: name("certifier.name", &b.certifier.name)?,
        certifier: credit_code("certifier.credit_code", &b.certifier.credit_code)?,
        certificate_sha256: parse_sha256("certificate_sha256", &b.certificate_sha256)?,
        invoice_no: InvoiceNo::parse(&b.new_car.invoice_no)
            .map_err(|e| ApiError::invalid_field("new_car.invoice_no", e))?,
        invoice_date: b.new_car.invoice_date,
        new_vin,
        price,
        dealer_name: name("new_car.dealer.name", &b.new_car.dealer.name)?,
        dealer: credit_code("new_car.dealer.credit_code", &b.new_car.dealer.credit_code)?,
        invoice_sha256: parse_sha256("new_car.invoice_sha256", &b.new_car.invoice_sha256)?,
    })
}

/// `OUTSIDE_SCHEME_WINDOW` naming the window and the refused day.
fn outside_window(window: &SchemeWindow, what: &str, field: &str, day: NaiveDate) -> ApiError {
    ApiError::new(Code::OutsideSchemeWindow)
        .with_message(format!(
            "the trade-in scheme accepts {what} from {} to {} (Beijing time); {day} is outside",
            window.opens_on(),
            window.closes_on()
        ))
        .with_details(json!({
            "opens_on": window.opens_on(),
            "closes_on": window.closes_on(),
            "date": day,
            "field": field,
        }))
}

/// The checks every submission of papers passes (the first and each amendment): the
/// invoice date, the businesses' province, a positive amount. Answers the papers to store.
fn check_papers(
    form: &Form,
    scheme: &Scheme,
    province: PlaceCode,
    today: NaiveDate,
) -> Result<Papers, ApiError> {
    if form.invoice_date > today {
        return Err(ApiError::invalid_field(
            "new_car.invoice_date",
            format!("{} is in the future", form.invoice_date),
        ));
    }
    if !scheme.window.contains(form.invoice_date) {
        return Err(outside_window(
            &scheme.window,
            "new cars bought",
            "new_car.invoice_date",
            form.invoice_date,
        ));
    }
    for (field, code, what) in [
        (
            "new_car.dealer.credit_code",
            &form.dealer,
            "the new car's dealer",
        ),
        ("certifier.credit_code", &form.certifier, "the certifier"),
    ] {
        let place = registration_place(code);
        if !place.is_some_and(|p| province.covers(p)) {
            return Err(ApiError::new(Code::OutsideProvince)
                .with_message(format!(
                    "{what} must be registered in {} ({province}); its credit code says {}",
                    province.name_zh(),
                    place.map_or_else(|| "nowhere known".to_owned(), |p| p.to_string())
                ))
                .with_details(json!({ "field": field, "province": province })));
        }
    }
    let amount = scheme.terms.subsidy(form.kind, form.price);
    if amount == Fen::ZERO {
        return Err(ApiError::invalid_field(
            "new_car.price_fen",
            "the scheme gives no subsidy for this price",
        ));
    }
    Ok(Papers {
        kind: form.kind,
        old_vin: form.old_vin.as_str().to_owned(),
        old_plate: form.old_plate.as_str().to_owned(),
        certifier_name: form.certifier_name.clone(),
        certifier_credit_code: form.certifier.as_str().to_owned(),
        certificate_sha256: form.certificate_sha256.clone(),
        invoice_no: form.invoice_no.as_str().to_owned(),
        new_vin: form.new_vin.as_str().to_owned(),
        price_fen: form.price.as_i64(),
        dealer_name: form.dealer_name.clone(),
        dealer_credit_code: form.dealer.as_str().to_owned(),
        invoice_sha256: form.invoice_sha256.clone(),
        invoice_date: form.invoice_date,
        amount_fen: amount.as_i64(),
    })
}

/// The digest of a first submission: a retry with the same id must carry the same papers.
fn submission_digest(program_id: i64, p: &Papers) -> String {
    let canonical = json!([
        program_id,
        p.kind.as_str(),
        p.old_vin,
        p.old_plate,
        p.certifier_name,
        p.certifier_credit_code,
        p.certificate_sha256,
        p.invoice_no,
        p.new_vin,
        p.price_fen,
        p.dealer_name,
        p.dealer_credit_code,
        p.invoice_sha256,
        p.invoice_date,
    ]);
    sha256_hex(canonical.to_string().as_bytes())
}

fn duplicate(d: Duplicate, p: &Papers) -> ApiError {
    let (code, field, value, what) = match d {
        Duplicate::OldVin => (
            Code::OldCarAlreadyClaimed,
            "old_car.vin",
            &p.old_vin,
            "old car",
        ),
        Duplicate::NewVin => (
            Code::NewCarAlreadyClaimed,
            "new_car.vin",
            &p.new_vin,
            "new car",
        ),
        Duplicate::InvoiceNo => (
            Code::InvoiceAlreadyClaimed,
            "new_car.invoice_no",
            &p.invoice_no,
            "invoice",
        ),
    };
    ApiError::new(code)
        .with_message(format!(
            "the {what} {value} is already in another trade-in application (one subsidy per {what})"
        ))
        .with_details(json!({ "field": field, "value": value }))
}

fn refused(r: Refused, p: &Papers, program_id: i64) -> ApiError {
    match r {
        Refused::Duplicate(d) => duplicate(d, p),
        Refused::MissingDocument(m) => {
            let (field, sha) = match m {
                MissingDocument::Certificate => ("certificate_sha256", &p.certificate_sha256),
                MissingDocument::Invoice => ("new_car.invoice_sha256", &p.invoice_sha256),
            };
            ApiError::new(Code::DocumentNotFound)
                .with_message(format!(
                    "you have not uploaded a document {sha}: upload it to POST /v1/trade-in/documents first"
                ))
                .with_details(json!({ "field": field, "sha256": sha }))
        }
        Refused::NoScheme => scheme_not_found(program_id),
    }
}

/// The applicant's city and county.
fn applicant_places(home: PlaceCode) -> (PlaceCode, Option<PlaceCode>) {
    let county = (home.level() == PlaceLevel::County).then_some(home);
    (home.city(), county)
}

fn db_place(p: PlaceCode) -> i32 {
    i32::try_from(p.get()).unwrap_or(i32::MAX)
}

fn place_of(v: i32) -> Result<PlaceCode, ApiError> {
    u32::try_from(v)
        .ok()
        .and_then(|v| PlaceCode::try_from(v).ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("stored place code {v}")))
}

/// The scheme and its program's province.
async fn scheme_and_province(
    state: &AppState,
    program_id: i64,
) -> Result<(Scheme, PlaceCode), ApiError> {
    let record = store::get_scheme(&state.pg, program_id)
        .await?
        .ok_or_else(|| scheme_not_found(program_id))?;
    let program = programs::get(&state.pg, ProgramId(program_id))
        .await?
        .ok_or_else(|| error::program_not_found(ProgramId(program_id)))?;
    Ok((scheme_of(&record)?, program.spec.funder_place))
}

/// Submits an application for `who`.
///
/// # Errors
/// See the module's order of checks: `INVALID_FIELD`, `TRADE_IN_SCHEME_NOT_FOUND`,
/// `NOT_ELIGIBLE`, `OUTSIDE_SCHEME_WINDOW`, `OUTSIDE_PROVINCE`, `DOCUMENT_NOT_FOUND`,
/// `OLD_CAR_ALREADY_CLAIMED`, `NEW_CAR_ALREADY_CLAIMED`, `INVOICE_ALREADY_CLAIMED`,
/// `APPLICATION_ID_CONFLICT`, store failures.
#[tracing::instrument(name = "issuance.trade_in.submit", skip_all, fields(application_id = %body.application_id))]
pub async fn submit(
    state: &AppState,
    who: &Identity,
    body: NewApplicationBody,
) -> Result<(ApplicationView, bool), ApiError> {
    let (id, program_id, body) = body.into_amend();
    let form = parse_form(&body)?;
    let (scheme, province) = scheme_and_province(state, program_id).await?;
    if who.home.level() == PlaceLevel::Province || !province.covers(who.home) {
        return Err(ApiError::new(Code::NotEligible)
            .with_message(format!(
                "the trade-in subsidy is for residents of {} ({province}); your home is {}",
                province.name_zh(),
                who.home
            ))
            .with_details(json!({ "reason": "place" })));
    }
    let now = state.clock.now();
    let today = beijing_day(now);
    if !scheme.window.contains(today) {
        return Err(outside_window(
            &scheme.window,
            "applications",
            "today",
            today,
        ));
    }
    let papers = check_papers(&form, &scheme, province, today)?;
    let (city, county) = applicant_places(who.home);
    let application = store::NewApplication {
        id,
        program_id,
        person_id: who.person_id.as_str().to_owned(),
        home_place: db_place(who.home),
        city: db_place(city),
        county: county.map(db_place),
        at: now,
        submission_sha256: submission_digest(program_id, &papers),
        papers,
    };
    let replay = |existing: &ApplicationRecord| -> Result<(ApplicationView, bool), ApiError> {
        if existing.person_id != application.person_id
            || existing.submission_sha256 != application.submission_sha256
        {
            return Err(ApiError::new(Code::ApplicationIdConflict)
                .with_details(json!({ "application_id": id })));
        }
        Ok((ApplicationView::of(existing.clone(), Vec::new())?, false))
    };
    match store::insert_application(&state.pg, &application, "resident").await? {
        Inserted::New(record) => {
            tracing::info!(
                program_id,
                kind = %record.kind,
                amount_fen = record.amount_fen,
                "trade-in application submitted"
            );
            let history = store::history(&state.pg, id).await?;
            Ok((ApplicationView::of(*record, history)?, true))
        }
        Inserted::Existing(existing) => replay(&existing),
        Inserted::Refused(r) => {
            // A retry racing its own first attempt may land on the first's indexes rather
            // than on its id: answer it as the retry it is.
            if let Some(existing) = store::get(&state.pg, id).await? {
                return replay(&existing);
            }
            Err(refused(r, &application.papers, program_id))
        }
    }
}

/// Amends `who`'s application that waits for more: new papers, `submitted` again.
///
/// # Errors
/// `INVALID_FIELD`, `APPLICATION_NOT_FOUND`, `APPLICATION_STATUS_CONFLICT` (not waiting for
/// more), `OUTSIDE_SCHEME_WINDOW` (invoice date), `OUTSIDE_PROVINCE`, `DOCUMENT_NOT_FOUND`,
/// the duplicates, store failures.
#[tracing::instrument(name = "issuance.trade_in.amend", skip_all, fields(application_id = %id))]
pub async fn amend(
    state: &AppState,
    who: &Identity,
    id: Uuid,
    body: AmendBody,
) -> Result<ApplicationView, ApiError> {
    let form = parse_form(&body)?;
    let current = store::get(&state.pg, id)
        .await?
        .filter(|a| a.person_id == who.person_id.as_str())
        .ok_or_else(|| application_not_found(id))?;
    if current.status != ApplicationStatus::NeedsMore {
        return Err(status_conflict(&current, "amended"));
    }
    let (scheme, province) = scheme_and_province(state, current.program_id).await?;
    let now = state.clock.now();
    let papers = check_papers(&form, &scheme, province, beijing_day(now))?;
    match store::amend(&state.pg, id, who.person_id.as_str(), &papers, now).await? {
        Amended::Done(record) => {
            let history = store::history(&state.pg, id).await?;
            ApplicationView::of(*record, history)
        }
        Amended::NotFound => Err(application_not_found(id)),
        Amended::NotWaiting(status) => Err(status_conflict(
            &ApplicationRecord { status, ..current },
            "amended",
        )),
        Amended::Refused(r) => Err(refused(r, &papers, current.program_id)),
    }
}

/// `who`'s applications, newest first.
///
/// # Errors
/// Store failures.
pub async fn mine(state: &AppState, who: &Identity) -> Result<Vec<ApplicationView>, ApiError> {
    store::list_for_person(&state.pg, who.person_id.as_str())
        .await?
        .into_iter()
        .map(|a| ApplicationView::of(a, Vec::new()))
        .collect()
}

/// One of `who`'s applications with its history.
///
/// # Errors
/// `APPLICATION_NOT_FOUND`, store failures.
pub async fn one_of_mine(
    state: &AppState,
    who: &Identity,
    id: Uuid,
) -> Result<ApplicationView, ApiError> {
    let record = store::get(&state.pg, id)
        .await?
        .filter(|a| a.person_id == who.person_id.as_str())
        .ok_or_else(|| application_not_found(id))?;
    let history = store::history(&state.pg, id).await?;
    ApplicationView::of(record, history)
}

fn application_not_found(id: Uuid) -> ApiError {
    ApiError::new(Code::ApplicationNotFound).with_message(format!("no trade-in application {id}"))
}

fn status_conflict(a: &ApplicationRecord, what: &str) -> ApiError {
    ApiError::new(Code::ApplicationStatusConflict)
        .with_message(format!(
            "application {} is {} and cannot be {what}",
            a.id, a.status
        ))
        .with_details(json!({ "status": a.status, "application_id": a.id }))
}

// ---------------------------------------------------------------- views

/// The old car as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OldCarView {
    /// VIN.
    pub vin: String,
    /// Plate.
    pub plate: String,
}

/// A business as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BusinessView {
    /// Name.
    pub name: String,
    /// Credit code.
    pub credit_code: String,
}

/// The new car as applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewCarView {
    /// Invoice number.
    pub invoice_no: String,
    /// Invoice date.
    pub invoice_date: NaiveDate,
    /// VIN.
    pub vin: String,
    /// Price, fen.
    pub price_fen: i64,
    /// Dealer.
    pub dealer: BusinessView,
    /// Invoice document hash.
    pub invoice_sha256: String,
}

/// A history entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// `submit`, `resubmit`, `approve`, `reject` or `request_more`.
    pub action: String,
    /// A person id or an administrator's name.
    pub actor: String,
    /// `resident`, `province` or `city`.
    pub role: String,
    /// The actor's place.
    pub place: i32,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: String,
    /// Reason or what is missing.
    pub note: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<ReviewRecord> for HistoryEntry {
    fn from(r: ReviewRecord) -> HistoryEntry {
        HistoryEntry {
            action: r.action.as_str().to_owned(),
            actor: r.actor,
            role: r.role,
            place: r.place,
            from_status: r.from_status.map(|s| s.as_str().to_owned()),
            to_status: r.to_status.as_str().to_owned(),
            note: r.note,
            at: r.at,
        }
    }
}

/// An application, as the applicant and the reviewers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApplicationView {
    /// The application id.
    pub id: Uuid,
    /// The scheme's program.
    pub program_id: i64,
    /// `submitted`, `approved`, `rejected` or `needs_more`.
    pub status: String,
    /// `transfer` or `scrap`.
    pub kind: String,
    /// The subsidy for these papers, fen (paid when approved).
    pub amount_fen: i64,
    /// The reviewer's reason, when rejected.
    pub rejection_reason: Option<String>,
    /// What the reviewer asked for, when waiting for more.
    pub requested: Option<String>,
    /// The applicant.
    pub person_id: String,
    /// The applicant's home place.
    pub home_place: i32,
    /// The settlement city.
    pub city: i32,
    /// The county, if the home is one.
    pub county: Option<i32>,
    /// The old car.
    pub old_car: OldCarView,
    /// Who certified the transfer or the scrapping.
    pub certifier: BusinessView,
    /// The certificate's hash.
    pub certificate_sha256: String,
    /// The new car.
    pub new_car: NewCarView,
    /// Submissions so far (1 + amendments).
    pub submissions: i32,
    /// First submitted.
    pub submitted_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Approved or rejected at.
    pub decided_at: Option<DateTime<Utc>>,
    /// The payable written by the approval.
    pub subsidy_line_id: Option<Uuid>,
    /// Submissions and decisions, oldest first (in the detail views; empty in lists).
    pub history: Vec<HistoryEntry>,
}

impl ApplicationView {
    fn of(a: ApplicationRecord, history: Vec<ReviewRecord>) -> Result<ApplicationView, ApiError> {
        let kind = a.kind()?;
        let (rejection_reason, requested) = match a.status {
            ApplicationStatus::Rejected => (a.note.clone(), None),
            ApplicationStatus::NeedsMore => (None, a.note.clone()),
            _ => (None, None),
        };
        Ok(ApplicationView {
            id: a.id,
            program_id: a.program_id,
            status: a.status.as_str().to_owned(),
            kind: kind.as_str().to_owned(),
            amount_fen: a.amount_fen,
            rejection_reason,
            requested,
            person_id: a.person_id,
            home_place: a.home_place,
            city: a.city,
            county: a.county,
            old_car: OldCarView {
                vin: a.old_vin,
                plate: a.old_plate,
            },
            certifier: BusinessView {
                name: a.certifier_name,
                credit_code: a.certifier_credit_code,
            },
            certificate_sha256: a.certificate_sha256,
            new_car: NewCarView {
                invoice_no: a.invoice_no,
                invoice_date: a.invoice_date,
                vin: a.new_vin,
                price_fen: a.price_fen,
                dealer: BusinessView {
                    name: a.dealer_name,
                    credit_code: a.dealer_credit_code,
                },
                invoice_sha256: a.invoice_sha256,
            },
            submissions: a.submissions,
            submitted_at: a.submitted_at,
            updated_at: a.updated_at,
            decided_at: a.decided_at,
            subsidy_line_id: a.subsidy_line_id,
            history: history.into_iter().map(HistoryEntry::from).collect(),
        })
    }
}

/// A document of an application, for the reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewDocument {
    /// `certificate` or `invoice`.
    pub role: String,
    /// Hash.
    pub sha256: String,
    /// Media type (`null` if the row is missing, which the schema prevents).
    pub content_type: Option<String>,
    /// Bytes.
    pub size_bytes: Option<i64>,
    /// Where to fetch it (`X-Api-Key`).
    pub href: String,
}

/// An application with its documents, for the reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReviewView {
    /// The application with its history.
    #[serde(flatten)]
    pub application: ApplicationView,
    /// Its documents.
    pub documents: Vec<ReviewDocument>,
}

// ---------------------------------------------------------------- review

/// `GET /v1/admin/trade-in/applications` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewQuery {
    /// Only this status (`submitted`, `approved`, `rejected`, `needs_more`).
    pub status: Option<String>,
    /// Only applications submitted after this instant (paging: the last one's
    /// `submitted_at`).
    pub after: Option<DateTime<Utc>>,
    /// At most this many (1–500, default 100).
    pub limit: Option<i64>,
}

/// The home places an administrator reviews, as an inclusive range of codes: a province
/// covers `PP0000..=PP9999`, a city `PPCC00..=PPCC99`, a county itself.
fn homes_of(place: PlaceCode) -> (i32, i32) {
    let p = db_place(place);
    match place.level() {
        PlaceLevel::Province => (p, p + 9_999),
        PlaceLevel::City => (p, p + 99),
        PlaceLevel::County => (p, p),
    }
}

/// The applications of the administrator's place, oldest first.
///
/// # Errors
/// `INVALID_FIELD` (status, limit), store failures.
pub async fn review_queue(
    state: &AppState,
    admin: &Admin,
    q: ReviewQuery,
) -> Result<Vec<ApplicationView>, ApiError> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<ApplicationStatus>()
                .map_err(|e| ApiError::invalid_field("status", e))
        })
        .transpose()?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "must be 1-500"));
    }
    store::list_for_review(&state.pg, homes_of(admin.place), status, q.after, limit)
        .await?
        .into_iter()
        .map(|a| ApplicationView::of(a, Vec::new()))
        .collect()
}

/// One application of the administrator's place, with its documents and history.
///
/// # Errors
/// `APPLICATION_NOT_FOUND`, `FORBIDDEN_PLACE`, store failures.
pub async fn review_one(state: &AppState, admin: &Admin, id: Uuid) -> Result<ReviewView, ApiError> {
    let record = store::get(&state.pg, id)
        .await?
        .ok_or_else(|| application_not_found(id))?;
    admin.require_place(place_of(record.home_place)?)?;
    let mut documents = Vec::new();
    for (role, sha) in [
        ("certificate", &record.certificate_sha256),
        ("invoice", &record.invoice_sha256),
    ] {
        let row = store::document_of(&state.pg, sha, &record.person_id).await?;
        documents.push(ReviewDocument {
            role: role.to_owned(),
            sha256: sha.clone(),
            content_type: row.as_ref().map(|d| d.content_type.clone()),
            size_bytes: row.as_ref().map(|d| d.size_bytes),
            href: format!("/v1/admin/trade-in/documents/{sha}"),
        });
    }
    let history = store::history(&state.pg, id).await?;
    Ok(ReviewView {
        application: ApplicationView::of(record, history)?,
        documents,
    })
}

/// `POST …/reject` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (1–500 characters), shown to the applicant.
    pub reason: String,
}

/// `POST …/request-more` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestMoreBody {
    /// What is missing (1–500 characters), shown to the applicant.
    pub what: String,
}

/// A reviewer's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve: the payable is written.
    Approve,
    /// Reject, with the reason.
    Reject(String),
    /// Ask for more.
    RequestMore(String),
}

impl Decision {
    /// A decision with a note checked for length.
    ///
    /// # Errors
    /// `INVALID_FIELD`.
    pub fn with_note(
        field: &'static str,
        note: &str,
        make: fn(String) -> Decision,
    ) -> Result<Decision, ApiError> {
        let note = note.trim();
        if (1..=500).contains(&note.chars().count()) {
            Ok(make(note.to_owned()))
        } else {
            Err(ApiError::invalid_field(field, "must be 1-500 characters"))
        }
    }

    fn target(&self) -> ApplicationStatus {
        match self {
            Decision::Approve => ApplicationStatus::Approved,
            Decision::Reject(_) => ApplicationStatus::Rejected,
            Decision::RequestMore(_) => ApplicationStatus::NeedsMore,
        }
    }

    fn action(&self) -> ReviewAction {
        match self {
            Decision::Approve => ReviewAction::Approve,
            Decision::Reject(_) => ReviewAction::Reject,
            Decision::RequestMore(_) => ReviewAction::RequestMore,
        }
    }

    fn note(&self) -> Option<&str> {
        match self {
            Decision::Approve => None,
            Decision::Reject(n) | Decision::RequestMore(n) => Some(n),
        }
    }

    /// Whether the decision may be taken from `status`.
    fn allowed_from(&self, status: ApplicationStatus) -> bool {
        match self {
            Decision::Approve | Decision::RequestMore(_) => status == ApplicationStatus::Submitted,
            Decision::Reject(_) => matches!(
                status,
                ApplicationStatus::Submitted | ApplicationStatus::NeedsMore
            ),
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Decision::Approve => "approved",
            Decision::Reject(_) => "rejected",
            Decision::RequestMore(_) => "sent back for more",
        }
    }
}

/// Takes a reviewer's decision on an application of their place; see the module's
/// "Review". Answers the application and whether this call changed it.
///
/// # Errors
/// `APPLICATION_NOT_FOUND`, `FORBIDDEN_PLACE`, `APPLICATION_STATUS_CONFLICT`, store
/// failures (the transaction is rolled back: nothing is written).
#[tracing::instrument(name = "issuance.trade_in.decide", skip_all, fields(application_id = %id, admin = %admin.name))]
pub async fn decide(
    state: &AppState,
    admin: &Admin,
    id: Uuid,
    decision: Decision,
) -> Result<(ApplicationView, bool), ApiError> {
    let mut tx = state.pg.begin().await.map_err(ApiError::from)?;
    let current = store::lock_in_tx(&mut tx, id)
        .await?
        .ok_or_else(|| application_not_found(id))?;
    admin.require_place(place_of(current.home_place)?)?;
    if current.status == decision.target() {
        // The decision the application already has: answer it again, write nothing.
        drop(tx);
        let history = store::history(&state.pg, id).await?;
        return Ok((ApplicationView::of(current, history)?, false));
    }
    if !decision.allowed_from(current.status) {
        return Err(status_conflict(&current, decision.verb()));
    }
    let now = state.clock.now();
    let mut amount_fen = current.amount_fen;
    let mut line_id = None;
    if decision == Decision::Approve {
        let scheme = store::get_scheme(&mut *tx, current.program_id)
            .await?
            .ok_or_else(|| scheme_not_found(current.program_id))?;
        let scheme = scheme_of(&scheme)?;
        let price = Fen::try_from(current.price_fen)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("stored price: {e}")))?;
        let amount = scheme.terms.subsidy(current.kind()?, price);
        if amount == Fen::ZERO {
            return Err(ApiError::internal(anyhow::anyhow!(
                "application {id} would be approved for 0 fen"
            )));
        }
        amount_fen = amount.as_i64();
        let line = ResidentSubsidyLine {
            id: Uuid::now_v7(),
            source: format!("{LINE_KIND}:{id}"),
            kind: LINE_KIND.to_owned(),
            program_id: current.program_id,
            city: current.city,
            county: current.county,
            person_id: current.person_id.clone(),
            amount_fen,
            counted_at: now,
            detail: json!({
                "kind": current.kind,
                "old_vin": current.old_vin,
                "new_vin": current.new_vin,
                "invoice_no": current.invoice_no,
            }),
        };
        store::insert_subsidy_line_in_tx(&mut tx, &line).await?;
        line_id = Some(line.id);
    }
    let updated = store::set_status_in_tx(
        &mut tx,
        id,
        decision.target(),
        decision.note(),
        amount_fen,
        line_id,
        now,
    )
    .await?;
    store::insert_review_in_tx(
        &mut tx,
        &ReviewRecord {
            application_id: id,
            action: decision.action(),
            actor: admin.name.clone(),
            role: admin.role.as_str().to_owned(),
            place: db_place(admin.place),
            from_status: Some(current.status),
            to_status: decision.target(),
            note: decision.note().map(str::to_owned),
            at: now,
        },
    )
    .await?;
    tx.commit().await.map_err(ApiError::from)?;
    tracing::info!(
        status = %updated.status,
        amount_fen = updated.amount_fen,
        "trade-in application {}",
        decision.verb()
    );
    let history = store::history(&state.pg, id).await?;
    Ok((ApplicationView::of(updated, history)?, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_types_are_told_by_header_and_magic() {
        assert_eq!(
            DocumentType::from_content_type("application/PDF; charset=binary"),
            Some(DocumentType::Pdf)
        );
        assert_eq!(DocumentType::from_content_type("text/plain"), None);
        assert!(DocumentType::Pdf.matches(b"%PDF-1.7\n"));
        assert!(!DocumentType::Pdf.matches(b"\x89PNG\r\n\x1a\n"));
        assert!(DocumentType::Png.matches(b"\x89PNG\r\n\x1a\n...."));
        assert!(DocumentType::Jpeg.matches(&[0xFF, 0xD8, 0xFF, 0xE0]));
    }

    #[test]
    fn hashes_are_lowercase_hex_and_safe_as_file_names() {
        let h = sha256_hex(b"abc");
        assert!(is_sha256_hex(&h));
        assert!(!is_sha256_hex("../../etc/passwd"));
        assert_eq!(parse_sha256("f", &h.to_ascii_uppercase()).ok(), Some(h));
    }

    #[test]
    fn the_same_bytes_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let sha = sha256_hex(b"%PDF-1.4 x");
        assert!(write_once(dir.path(), &sha, b"%PDF-1.4 x").unwrap());
        assert!(!write_once(dir.path(), &sha, b"%PDF-1.4 x").unwrap());
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(files.len(), 1, "no temporary file is left behind");
        assert_eq!(std::fs::read(dir.path().join(&sha)).unwrap(), b"%PDF-1.4 x");
    }

    #[test]
    fn administrators_review_the_homes_of_their_place() {
        let p = |c: u32| PlaceCode::try_from(c).unwrap();
        assert_eq!(homes_of(p(140_000)), (140_000, 149_999));
        assert_eq!(homes_of(p(140_500)), (140_500, 140_599));
        assert_eq!(homes_of(p(140_522)), (140_522, 140_522));
        assert_eq!(applicant_places(p(140_522)), (p(140_500), Some(p(140_522))));
        assert_eq!(applicant_places(p(140_500)), (p(140_500), None));
    }

    #[test]
    fn decisions_follow_the_status_machine() {
        use ApplicationStatus::*;
        let reject = Decision::Reject("x".into());
        let more = Decision::RequestMore("x".into());
        assert!(Decision::Approve.allowed_from(Submitted));
        assert!(!Decision::Approve.allowed_from(NeedsMore));
        assert!(!Decision::Approve.allowed_from(Rejected));
        assert!(reject.allowed_from(NeedsMore));
        assert!(!reject.allowed_from(Approved));
        assert!(more.allowed_from(Submitted));
        assert!(!more.allowed_from(Approved));
        assert!(Decision::with_note("reason", "  ", Decision::Reject).is_err());
        assert!(Decision::with_note("reason", &"长".repeat(501), Decision::Reject).is_err());
    }
}
