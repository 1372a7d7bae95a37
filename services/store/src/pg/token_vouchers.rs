//! The redemption service's writes to `vouchers`: a voucher the persister has not written
//! yet is inserted from its verified signed token (the token is proof of issuance; such rows
//! have source `token` and a claim id derived from the voucher id, so the persister's later
//! insert is a no-op), and a single-use voucher is spent and given back.
//!
//! Spending is the conditional update `issued → redeemed` (`… WHERE status = 'issued'`): of
//! two concurrent spenders of one voucher, the second waits for the first's transaction and
//! then finds it spent, so a voucher cannot be spent twice. Everything here takes the
//! checkout transaction's connection; the voucher as the record keeps it is read through
//! [`super::vouchers`].
//!
//! The person's limit at the record (issue 13, the second line of defence): a voucher known
//! only by its token may be one whose claim was acknowledged and then lost with Redis' data,
//! after which the person could claim again. Each insert from a token says whether it
//! inserted; when it did, the checkout asks [`person_vouchers`] — under a transaction lock on
//! (campaign, person), so that two such vouchers presented at once are counted one after the
//! other — whether the record now holds more of the person's vouchers of the campaign than
//! its `per_person_limit`, and refuses (rolls back) if so. It counts what the claim script's
//! person count counts: every voucher of the person in the campaign, whatever its round or
//! status (spent, expired and recycled ones included: recycling gives the stock back, never
//! the person's count). A voucher already in the record takes none of this.
//!
//! The persister's later insert of a voucher that was refused is harmless: the refusal wrote
//! nothing, so the row arrives as an ordinary claim would. The opposite order — a token-only
//! voucher inserted here first, then the persister writing another voucher of the same
//! person (claimed again after the loss) — puts the record over the limit without a
//! refusal: the voucher the persister wrote is in the record and is spent by the normal
//! path. Only the replica barrier (an acknowledged claim has reached a replica) prevents
//! that; `reconciliation check` sees the person's count differ between Redis and the record.

use crate::pg::constraints::{self, Expected, Missing};
use crate::pg::vouchers::VoucherStatus;
use crate::StoreError;
use sqlx::PgConnection;
use uuid::Uuid;
use voucher_core::token::VoucherClaims;
use voucher_core::{CampaignId, ClaimId, PersonId, VoucherId};

/// The claim id given to a voucher inserted from its token: UUID v5 of the voucher id, so it
/// is stable and never collides with a real (v4/v5-of-person) claim id.
pub fn token_claim_id(voucher_id: VoucherId) -> ClaimId {
    ClaimId(Uuid::new_v5(&TOKEN_NAMESPACE, voucher_id.0.as_bytes()))
}

const TOKEN_NAMESPACE: Uuid = Uuid::from_u128(0x6a0e_52f4_9d1b_4c6e_8f3a_1b2c_3d4e_5f60);

/// What a voucher insert from a token expects: the token's campaign may be unknown to the
/// record.
pub(crate) const UNKNOWN_CAMPAIGN: Expected = Expected::ForeignKey(Missing::VoucherCampaign);

/// Inserts the voucher from its verified token if the persister has not written it yet
/// (idempotent on the voucher id). `true` when this call inserted it (the record did not
/// hold it: check the person's limit with [`person_vouchers`] before committing).
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist; database failure.
pub async fn insert_voucher_from_token(
    con: &mut PgConnection,
    claims: &VoucherClaims,
) -> Result<bool, StoreError> {
    let inserted: Option<i32> = sqlx::query_scalar(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         VALUES ($1, $2, $3, $4, 0, 'token', 'issued', $5, $5, $6)
         ON CONFLICT DO NOTHING
         RETURNING 1",
    )
    .bind(claims.voucher_id.0)
    .bind(claims.campaign_id.0)
    .bind(claims.person_id.as_str())
    .bind(token_claim_id(claims.voucher_id).0)
    .bind(claims.valid_from)
    .bind(claims.valid_until)
    .fetch_optional(&mut *con)
    .await
    .map_err(|e| constraints::expected(e, &[UNKNOWN_CAMPAIGN]))?;
    Ok(inserted.is_some())
}

/// What [`spend_voucher_from_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSpend {
    /// Nothing: the voucher exists and is not `issued` (spent, held or expired), or its code
    /// key epoch is not the presented code's.
    NotSpendable,
    /// The record held it: moved `issued → redeemed`.
    Spent,
    /// The record did not hold it: inserted from its token already `redeemed` (check the
    /// person's limit with [`person_vouchers`] before committing).
    SpentFromToken,
}

/// Spends a single-use voucher in one statement: inserts it from its verified token already
/// `redeemed` if the persister has not written it yet, or moves it `issued → redeemed`
/// ([`TokenSpend`] says which, or that it exists and was not `issued`). This is
/// [`insert_voucher_from_token`] plus [`spend_voucher`] in one round trip; a concurrent
/// spender of the same voucher waits for this transaction and then finds it spent. Only a
/// voucher whose code key epoch is `code_epoch` (the presented code's) is spent.
///
/// The statement first takes a transaction-scoped advisory lock on the voucher id: two
/// spenders of a voucher the record does not hold yet would otherwise both pass the
/// `ON CONFLICT (voucher_id)` pre-check, and the second would fail on the other unique index
/// (`vouchers_claim_id_key`: the claim id is derived from the voucher id) with a 500 instead
/// of finding the voucher spent. The lock makes it wait for the first one's commit.
///
/// # Errors
/// [`StoreError::NotFound`] when the token's campaign does not exist; database failure.
pub async fn spend_voucher_from_token(
    con: &mut PgConnection,
    claims: &VoucherClaims,
    code_epoch: u32,
) -> Result<TokenSpend, StoreError> {
    // `xmax = 0`: the row was inserted by this statement, not updated (an updated row carries
    // the updating transaction's id).
    let inserted: Option<bool> = sqlx::query_scalar(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         SELECT $1, $2, $3, $4, 0, 'token', 'redeemed', $5, $5, $6
           FROM (SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))) AS one_spender
         ON CONFLICT (voucher_id) DO UPDATE SET status = 'redeemed'
         WHERE vouchers.status = 'issued' AND vouchers.code_epoch = $7
         RETURNING xmax = 0",
    )
    .bind(claims.voucher_id.0)
    .bind(claims.campaign_id.0)
    .bind(claims.person_id.as_str())
    .bind(token_claim_id(claims.voucher_id).0)
    .bind(claims.valid_from)
    .bind(claims.valid_until)
    .bind(i64::from(code_epoch))
    .fetch_optional(&mut *con)
    .await
    .map_err(|e| constraints::expected(e, &[UNKNOWN_CAMPAIGN]))?;
    Ok(match inserted {
        None => TokenSpend::NotSpendable,
        Some(false) => TokenSpend::Spent,
        Some(true) => TokenSpend::SpentFromToken,
    })
}

/// A person's vouchers of a campaign as the record holds them, against the campaign's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonVouchers {
    /// Every voucher of the person in the campaign (this transaction's own inserts included),
    /// whatever its round or status.
    pub held: i64,
    /// The campaign's `per_person_limit`.
    pub limit: i64,
}

impl PersonVouchers {
    /// Whether the record holds more of the person's vouchers than the campaign allows.
    pub fn exceeded(self) -> bool {
        self.held > self.limit
    }
}

/// Counts the person's vouchers of the campaign in the record, after taking a
/// transaction-scoped advisory lock on (campaign, person) that serialises the checkouts
/// inserting that person's vouchers from their tokens: a second one waits for the first's
/// commit (or rollback) and then counts what it wrote. Two statements on purpose: in READ
/// COMMITTED a statement sees the rows committed before it started, so a count in the
/// statement that waited for the lock would miss the first one's voucher. Call it only after
/// a voucher was inserted from its token ([`insert_voucher_from_token`] `true`,
/// [`TokenSpend::SpentFromToken`]), as the checkout's last step, so that the transaction
/// holding the lock waits for nothing else and no lock cycle can form; a voucher already in
/// the record never takes this lock.
///
/// # Errors
/// [`StoreError::NotFound`] when the campaign does not exist; database failure.
pub async fn person_vouchers(
    con: &mut PgConnection,
    campaign_id: CampaignId,
    person: &PersonId,
) -> Result<PersonVouchers, StoreError> {
    // One int8 key, hashed from a text of its own (the budget lock's key is the bare campaign
    // id, the voucher spend lock's a voucher id's text).
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('person-limit:' || $1::text || ':' || $2, 0))")
        .bind(campaign_id.0)
        .bind(person.as_str())
        .execute(&mut *con)
        .await?;
    let row: Option<(i64, i32)> = sqlx::query_as(
        "SELECT (SELECT count(*) FROM vouchers WHERE campaign_id = $1 AND person_id = $2),
                c.per_person_limit
           FROM campaigns c WHERE c.id = $1",
    )
    .bind(campaign_id.0)
    .bind(person.as_str())
    .fetch_optional(&mut *con)
    .await?;
    let (held, limit) = row.ok_or(StoreError::NotFound)?;
    Ok(PersonVouchers {
        held,
        limit: i64::from(limit),
    })
}

/// Marks a single-use voucher spent: `issued → redeemed`. `false` when it was not `issued`.
///
/// # Errors
/// Database failure.
pub async fn spend_voucher(
    con: &mut PgConnection,
    voucher_id: VoucherId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE vouchers SET status = 'redeemed' WHERE voucher_id = $1 AND status = 'issued'",
    )
    .bind(voucher_id.0)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Makes a spent single-use voucher usable again: `redeemed → issued`.
///
/// # Errors
/// Database failure.
pub async fn unspend_voucher(
    con: &mut PgConnection,
    voucher_id: VoucherId,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE vouchers SET status = 'issued' WHERE voucher_id = $1 AND status = 'redeemed'",
    )
    .bind(voucher_id.0)
    .execute(&mut *con)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Where a voucher stands for a checkout: its status and its code key epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoucherState {
    /// Issued, redeemed or expired.
    pub status: VoucherStatus,
    /// The current code key epoch (codes of another epoch are refused).
    pub code_epoch: u32,
}

/// The voucher's state, `None` when the record has no such voucher.
///
/// # Errors
/// Database failure, or a status the schema does not allow.
pub async fn voucher_state(
    con: &mut PgConnection,
    voucher_id: VoucherId,
) -> Result<Option<VoucherState>, StoreError> {
    let row: Option<(VoucherStatus, i32)> =
        sqlx::query_as("SELECT status, code_epoch FROM vouchers WHERE voucher_id = $1")
            .bind(voucher_id.0)
            .fetch_optional(&mut *con)
            .await?;
    row.map(|(status, epoch)| {
        Ok(VoucherState {
            status,
            code_epoch: u32::try_from(epoch)
                .map_err(|_| StoreError::Corrupt(format!("code epoch {epoch}")))?,
        })
    })
    .transpose()
}
