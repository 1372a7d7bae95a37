//! The benchmark generator: fills a database with a period of redemptions, fast, so that
//! `settle` can be measured on a realistic day or month (`deploy/local/settle-bench.sh`).
//!
//! Shape: one program (50%, a pool of a third of the period's discounts, so the pool runs
//! short and is prorated), a threshold campaign per city of Shanxi plus one county campaign
//! (阳城, co-funded), `merchants` merchants spread over the campaigns, one terminal each, and
//! per redemption a voucher claimed the day before; the redemptions are spread evenly over
//! the `days` days from `day` (Beijing); every 20th is a captured hold, every 50th is
//! refunded in full ten minutes later (within the period); discounts have odd fen.
//!
//! How, and why it is fast (10,000,000 redemptions in a few minutes):
//! - the program, campaigns, merchants and terminals are a few thousand rows written with
//!   `INSERT … SELECT`; the vouchers, redemptions and reversals are streamed from here in
//!   PostgreSQL's binary `COPY` format (no text parsing, no per-row statement);
//! - their ids are UUIDv7 as the services make them (`Uuid::now_v7()` at claim, checkout and
//!   reversal), here with the record's own time and a counter in place of the random bits:
//!   unique, and time-ordered, so each primary key grows at its right edge as in production;
//! - as a superuser the load runs with `session_replication_role = replica`, which skips
//!   the per-row foreign-key triggers: every reference is valid by construction (the rows
//!   are written in dependency order either way, so a non-superuser gets the same data,
//!   checked row by row and slower);
//! - into a fresh database (the three tables empty), their secondary indexes and unique
//!   constraints are dropped for the load and built again after it, in the same transaction:
//!   one sort per index instead of ten million insertions into it (on text keys in the
//!   cluster's `C.UTF-8` collation, each insertion costs a few microseconds of `strcoll`).
//!   The schema's index and constraint definitions are then checked to be exactly what they
//!   were (else nothing is committed). Into a database that holds records, rows go through
//!   the indexes as usual;
//! - everything is one transaction; afterwards `VACUUM (ANALYZE)` of the tables filled, as
//!   autovacuum would have done by the time a period is settled (its insert threshold is
//!   20% of a table).

use crate::error::ReconError;
use crate::period::Period;
use chrono::{DateTime, Days, Utc};
use sqlx::postgres::PgCopyIn;
use sqlx::{PgConnection, PgPool};
use std::io::Write as _;
use std::time::{Duration, Instant};
use uuid::{Builder, Uuid};

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSpec {
    /// Redemptions in the period.
    pub redemptions: i64,
    /// Merchants (at least one per campaign: 12).
    pub merchants: i64,
    /// The first day (Beijing).
    pub day: chrono::NaiveDate,
    /// Days in the period (1: one day; 30 or 31: a month).
    pub days: u32,
}

impl BenchSpec {
    /// The period the redemptions fall in.
    ///
    /// # Errors
    /// [`ReconError::Usage`]: no day, or past the calendar.
    pub fn period(&self) -> Result<Period, ReconError> {
        let last = self
            .days
            .checked_sub(1)
            .and_then(|d| self.day.checked_add_days(Days::new(u64::from(d))))
            .ok_or_else(|| ReconError::Usage(format!("--days {} from {}", self.days, self.day)))?;
        Period::new(self.day, last).map_err(ReconError::Usage)
    }
}

/// The cities of the benchmark campaigns, and Yangcheng county (a campaign of its own).
const OWNERS: [i32; 12] = [
    140_100, 140_200, 140_300, 140_400, 140_500, 140_600, 140_700, 140_800, 140_900, 141_000,
    141_100, 140_522,
];

/// Residents the redemptions are spread over.
const PERSONS: i64 = 200_000;

/// The generator's row counter fills 48 bits of an id.
const MAX_REDEMPTIONS: i64 = 1 << 48;

/// Bytes buffered before they are sent to the server.
const CHUNK: usize = 1 << 20;

/// Seconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC), the origin of binary
/// timestamps.
const PG_EPOCH_UNIX_SECS: i64 = 946_684_800;

/// What a generated id names; its place in the id keeps the kinds apart.
#[derive(Clone, Copy)]
enum IdKind {
    Voucher = 1,
    Claim = 2,
    Redemption = 3,
    Reversal = 4,
}

/// A UUIDv7 at `at` whose "random" bits are the kind, the program (22 bits) and the row.
fn id_v7(at_micros: i64, kind: IdKind, program: i64, row: i64) -> Uuid {
    let millis = u64::try_from((at_micros / 1000).max(0)).unwrap_or(0);
    let mut counter = [0u8; 10];
    // The builder overwrites the version nibble of byte 0 and the variant bits of byte 2.
    counter[0] = kind as u8;
    let program = program.to_be_bytes();
    counter[1] = program[5];
    counter[2] = program[6] & 0x3f;
    counter[3] = program[7];
    counter[4..].copy_from_slice(&row.to_be_bytes()[2..]);
    Builder::from_unix_timestamp_millis(millis, &counter).into_uuid()
}

/// Microseconds since PostgreSQL's epoch.
fn pg_micros(at: DateTime<Utc>) -> i64 {
    (at.timestamp() - PG_EPOCH_UNIX_SECS) * 1_000_000 + i64::from(at.timestamp_subsec_micros())
}

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

/// Rows in PostgreSQL's binary `COPY` format, sent in chunks of about [`CHUNK`] bytes.
struct BinaryCopy<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: Vec<u8>,
}

impl<'c> BinaryCopy<'c> {
    async fn begin(con: &'c mut PgConnection, statement: &str) -> Result<Self, ReconError> {
        let copy = con.copy_in_raw(statement).await?;
        let mut buf = Vec::with_capacity(CHUNK + 4096);
        // Signature, flags (no OIDs), header extension length.
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes());
        buf.extend_from_slice(&0i32.to_be_bytes());
        Ok(BinaryCopy { copy, buf })
    }

    fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn uuid(&mut self, v: Uuid) {
        self.field(v.as_bytes());
    }

    fn int8(&mut self, v: i64) {
        self.field(&v.to_be_bytes());
    }

    fn int4(&mut self, v: i32) {
        self.field(&v.to_be_bytes());
    }

    fn boolean(&mut self, v: bool) {
        self.field(&[u8::from(v)]);
    }

    /// A `timestamptz`: microseconds since 2000-01-01 UTC.
    fn timestamp(&mut self, pg_micros: i64) {
        self.int8(pg_micros);
    }

    /// A `text` field written in place (no string allocated per row).
    fn text(&mut self, args: std::fmt::Arguments<'_>) {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        // Writing into a Vec cannot fail.
        let _ = self.buf.write_fmt(args);
        let len = i32::try_from(self.buf.len() - at - 4).unwrap_or(i32::MAX);
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    /// Sends the buffer once it holds a chunk.
    async fn flush_if_full(&mut self) -> Result<(), ReconError> {
        if self.buf.len() >= CHUNK {
            self.copy.send(self.buf.as_slice()).await?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Sends the rest and the trailer; returns the rows copied.
    async fn finish(mut self) -> Result<u64, ReconError> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.copy.send(self.buf.as_slice()).await?;
        Ok(self.copy.finish().await?)
    }
}

/// Where redemption `g` of the period falls, and what it is.
struct Redemption {
    /// Campaign index into [`OWNERS`].
    campaign: usize,
    /// Merchant index (serving that campaign).
    merchant: i64,
    /// Sold at (µs since 2000-01-01), evenly over the period.
    at: i64,
    /// 00:00 Beijing of its day.
    day_start: i64,
}

/// The layout shared by the three tables' generators.
struct Layout {
    program: i64,
    n: i64,
    k: i64,
    per_campaign: i64,
    start: i64,
    /// The period's length in seconds.
    seconds: i64,
}

impl Layout {
    fn redemption(&self, g: i64) -> Redemption {
        let campaign = g % self.k;
        let at = self.start + g * (self.seconds - 1) / self.n * SECOND;
        Redemption {
            campaign: usize::try_from(campaign).unwrap_or(0),
            merchant: campaign + self.k * ((g / self.k) % self.per_campaign),
            at,
            day_start: self.start + (at - self.start) / DAY * DAY,
        }
    }

    /// The last instant of the period a reversal may fall at.
    fn last_second(&self) -> i64 {
        self.start + (self.seconds - 1) * SECOND
    }
}

/// What [`generate`] wrote, and where its time went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generated {
    /// The program.
    pub program: i64,
    /// Streaming the vouchers, redemptions and reversals (`COPY`).
    pub copy: Duration,
    /// Building the deferred indexes again, and the commit.
    pub indexes: Duration,
    /// `VACUUM (ANALYZE)`.
    pub vacuum: Duration,
}

/// Generates the period.
///
/// # Errors
/// [`ReconError::Usage`] for a spec out of range; database failure (nothing is written).
pub async fn generate(pool: &PgPool, spec: &BenchSpec) -> Result<Generated, ReconError> {
    let k = i64::try_from(OWNERS.len()).unwrap_or(12);
    if !(1..MAX_REDEMPTIONS).contains(&spec.redemptions) {
        return Err(ReconError::Usage(format!(
            "--redemptions {} is not in 1..2^48",
            spec.redemptions
        )));
    }
    if spec.merchants < k {
        return Err(ReconError::Usage(format!(
            "--merchants {} is fewer than the {k} campaigns",
            spec.merchants
        )));
    }
    let period = spec.period()?;
    let start = period.starts_at();
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    let superuser: bool = sqlx::query_scalar("SELECT current_setting('is_superuser') = 'on'")
        .fetch_one(&mut *tx)
        .await?;
    if superuser {
        sqlx::query("SET LOCAL session_replication_role = replica")
            .execute(&mut *tx)
            .await?;
    }
    // Average discount ≈ 2003 fen: a pool of a third of the period's discounts.
    let program: i64 = sqlx::query_scalar(
        "INSERT INTO programs (name, funder_place, province_ratio_bp, pool_fen, county_cofund_bp, refund_policy)
         VALUES ('基准测试 餐饮消费券', 140000, 5000, $1, 3000, 'restore') RETURNING id",
    )
    .bind(spec.redemptions * 2003 / 3)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "CREATE TEMP TABLE bench_campaigns (k integer PRIMARY KEY, id bigint, city integer) ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut campaigns = Vec::with_capacity(OWNERS.len());
    for (i, owner) in OWNERS.iter().enumerate() {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO campaigns (program_id, name, owner_place, category, rule, stock, per_person_limit,
                                    validity_days, budget_fen, distribution)
             VALUES ($1, $2, $3, 'catering', '{\"type\":\"threshold\",\"min_spend\":10000,\"off\":2000}',
                     $4, 100, 7, $5, 'list') RETURNING id",
        )
        .bind(program)
        .bind(format!("基准 {owner}"))
        .bind(owner)
        .bind(i32::try_from(spec.redemptions).unwrap_or(i32::MAX))
        .bind(spec.redemptions * 3_000)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO bench_campaigns VALUES ($1, $2, $3)")
            .bind(i32::try_from(i).unwrap_or(0))
            .bind(id)
            .bind(owner / 100 * 100)
            .execute(&mut *tx)
            .await?;
        campaigns.push(id);
    }
    // Merchant i serves campaign i % k, in that campaign's city.
    sqlx::query(
        "INSERT INTO merchants (id, name, credit_code, category, city, status)
         SELECT format('bm%s-%s', $1::bigint, i), format('基准商户%s', i), format('BENCH%s-%s', $1::bigint, i),
                'catering', c.city, 'approved'
           FROM generate_series(0, $2 - 1) i JOIN bench_campaigns c ON c.k = i % $3",
    )
    .bind(program)
    .bind(spec.merchants)
    .bind(k)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO terminals (terminal_id, merchant_id, key_id, secret, created_at)
         SELECT md5(format('bt%s-%s', $1::bigint, i))::uuid, format('bm%s-%s', $1::bigint, i),
                format('bk%s-%s', $1::bigint, i), 'c2VjcmV0', now()
           FROM generate_series(0, $2 - 1) i",
    )
    .bind(program)
    .bind(spec.merchants)
    .execute(&mut *tx)
    .await?;
    // Merchant i's terminal, by i.
    let terminals: Vec<Uuid> = sqlx::query_scalar(
        "SELECT md5(format('bt%s-%s', $1::bigint, i))::uuid FROM generate_series(0, $2 - 1) i ORDER BY i",
    )
    .bind(program)
    .bind(spec.merchants)
    .fetch_all(&mut *tx)
    .await?;
    let length = period.ends_at() - start;
    let layout = Layout {
        program,
        n: spec.redemptions,
        k,
        per_campaign: spec.merchants / k,
        start: pg_micros(start),
        seconds: length.num_seconds(),
    };
    let started = Instant::now();
    let deferred = defer_indexes(&mut tx).await?;
    copy_vouchers(&mut tx, &layout, &campaigns).await?;
    copy_redemptions(&mut tx, &layout, &campaigns, &terminals).await?;
    copy_reversals(&mut tx, &layout).await?;
    let copied = started.elapsed();
    if let Some(deferred) = deferred {
        deferred.rebuild(&mut tx).await?;
    }
    tx.commit().await?;
    let indexed = started.elapsed() - copied;
    sqlx::query(
        "VACUUM (ANALYZE) programs, campaigns, merchants, terminals, vouchers, redemptions, reversals",
    )
    .execute(pool)
    .await?;
    Ok(Generated {
        program,
        copy: copied,
        indexes: indexed,
        vacuum: started.elapsed() - copied - indexed,
    })
}

/// The tables loaded with `COPY`.
const LOADED: &str = "'{vouchers,redemptions,reversals}'::regclass[]";

/// The secondary indexes and unique constraints of the loaded tables (not the primary keys,
/// not a unique constraint a foreign key references), dropped for the load and rebuilt after
/// it: one sorted build per index instead of ten million insertions into it.
struct DeferredIndexes {
    /// What the schema's indexes and constraints were, to check that the rebuild restored them.
    before: String,
    /// `CREATE INDEX …` and `ALTER TABLE … ADD CONSTRAINT …`, as PostgreSQL prints them.
    create: Vec<String>,
}

/// Every index and constraint definition of the loaded tables, in one string.
async fn schema_of_loaded(con: &mut PgConnection) -> Result<String, ReconError> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT concat_ws(E'\\n',
                (SELECT string_agg(pg_get_indexdef(indexrelid), E'\\n' ORDER BY pg_get_indexdef(indexrelid)) FROM pg_index
                  WHERE indrelid = ANY ({LOADED})),
                (SELECT string_agg(format('%s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid)),
                                   E'\\n' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint
                  WHERE conrelid = ANY ({LOADED})))"
    ))
    .fetch_one(&mut *con)
    .await?)
}

/// Drops the deferrable indexes when the loaded tables are empty (a fresh database: the
/// rebuild then costs only the generated rows); otherwise leaves them and returns `None`.
async fn defer_indexes(con: &mut PgConnection) -> Result<Option<DeferredIndexes>, ReconError> {
    let empty: bool = sqlx::query_scalar(
        "SELECT NOT EXISTS (SELECT 1 FROM vouchers) AND NOT EXISTS (SELECT 1 FROM redemptions)
            AND NOT EXISTS (SELECT 1 FROM reversals)",
    )
    .fetch_one(&mut *con)
    .await?;
    if !empty {
        return Ok(None);
    }
    let before = schema_of_loaded(con).await?;
    let statements: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT format('DROP INDEX %s', i.indexrelid::regclass), pg_get_indexdef(i.indexrelid)
           FROM pg_index i
          WHERE i.indrelid = ANY ({LOADED})
            AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
         UNION ALL
         SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
                format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname,
                       pg_get_constraintdef(c.oid))
           FROM pg_constraint c
          WHERE c.conrelid = ANY ({LOADED}) AND c.contype = 'u'
            AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' AND f.conindid = c.conindid)
          ORDER BY 1"
    ))
    .fetch_all(&mut *con)
    .await?;
    let mut create = Vec::with_capacity(statements.len());
    for (drop, again) in statements {
        sqlx::query(&drop).execute(&mut *con).await?;
        create.push(again);
    }
    Ok(Some(DeferredIndexes { before, create }))
}

impl DeferredIndexes {
    /// Builds the dropped indexes again and checks that the schema is what it was.
    async fn rebuild(self, con: &mut PgConnection) -> Result<(), ReconError> {
        // Sorts ten million keys mostly in memory rather than in temporary files.
        sqlx::query("SET LOCAL maintenance_work_mem = '1GB'")
            .execute(&mut *con)
            .await?;
        for statement in &self.create {
            sqlx::query(statement).execute(&mut *con).await?;
        }
        let after = schema_of_loaded(con).await?;
        if after != self.before {
            return Err(ReconError::Corrupt(format!(
                "the rebuilt indexes differ from the schema's:\n{}\n---\n{after}",
                self.before
            )));
        }
        Ok(())
    }
}

/// Voucher of redemption g: claimed the day before the sale, valid seven days.
async fn copy_vouchers(
    con: &mut PgConnection,
    l: &Layout,
    campaigns: &[i64],
) -> Result<(), ReconError> {
    let mut copy = BinaryCopy::begin(
        con,
        "COPY vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                        claimed_at, valid_from, valid_until) FROM STDIN (FORMAT binary)",
    )
    .await?;
    for g in 0..l.n {
        let r = l.redemption(g);
        let claimed = r.day_start - DAY;
        copy.row(10);
        copy.uuid(id_v7(unix_micros(claimed), IdKind::Voucher, l.program, g));
        copy.int8(campaigns[r.campaign]);
        copy.text(format_args!("p{}", g % PERSONS));
        copy.uuid(id_v7(unix_micros(claimed), IdKind::Claim, l.program, g));
        copy.int4(0);
        copy.text(format_args!("list"));
        copy.text(format_args!("redeemed"));
        copy.timestamp(claimed);
        copy.timestamp(claimed);
        copy.timestamp(claimed + 7 * DAY);
        copy.flush_if_full().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// Redemption g: campaign g % k at a merchant serving it; every 20th a captured hold
/// (resolved a second later), every 50th reversed in full.
async fn copy_redemptions(
    con: &mut PgConnection,
    l: &Layout,
    campaigns: &[i64],
    terminals: &[Uuid],
) -> Result<(), ReconError> {
    let mut copy = BinaryCopy::begin(
        con,
        "COPY redemptions (id, merchant_id, terminal_id, voucher_id, campaign_id, program_id, person_id,
                           single_use, status, order_ref, order_amount_fen, discount_fen,
                           refunded_amount_fen, reversed_fen, created_at, resolved_at)
         FROM STDIN (FORMAT binary)",
    )
    .await?;
    for g in 0..l.n {
        let r = l.redemption(g);
        let captured = g % 20 == 7;
        let reversed = g % 50 == 3;
        let (order, discount) = (10_000 + g % 5_000, 2_000 + g % 7);
        let terminal = usize::try_from(r.merchant)
            .ok()
            .and_then(|m| terminals.get(m))
            .copied()
            .ok_or_else(|| {
                ReconError::Corrupt(format!("no terminal for merchant {}", r.merchant))
            })?;
        copy.row(16);
        copy.uuid(id_v7(unix_micros(r.at), IdKind::Redemption, l.program, g));
        copy.text(format_args!("bm{}-{}", l.program, r.merchant));
        copy.uuid(terminal);
        copy.uuid(id_v7(
            unix_micros(r.day_start - DAY),
            IdKind::Voucher,
            l.program,
            g,
        ));
        copy.int8(campaigns[r.campaign]);
        copy.int8(l.program);
        copy.text(format_args!("p{}", g % PERSONS));
        copy.boolean(true);
        copy.text(format_args!(
            "{}",
            if captured { "captured" } else { "approved" }
        ));
        copy.text(format_args!("o{g}"));
        copy.int8(order);
        copy.int8(discount);
        copy.int8(if reversed { order } else { 0 });
        copy.int8(if reversed { discount } else { 0 });
        copy.timestamp(r.at);
        if captured {
            copy.timestamp(r.at + SECOND);
        } else {
            copy.null();
        }
        copy.flush_if_full().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// The full reversal of every 50th redemption, ten minutes after the sale (at the latest in
/// the period's last second).
async fn copy_reversals(con: &mut PgConnection, l: &Layout) -> Result<(), ReconError> {
    let mut copy = BinaryCopy::begin(
        con,
        "COPY reversals (id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen,
                         restored, created_at) FROM STDIN (FORMAT binary)",
    )
    .await?;
    for g in (3..l.n).step_by(50) {
        let r = l.redemption(g);
        let at = (r.at + 600 * SECOND).min(l.last_second());
        copy.row(7);
        copy.uuid(id_v7(unix_micros(at), IdKind::Reversal, l.program, g));
        copy.uuid(id_v7(unix_micros(r.at), IdKind::Redemption, l.program, g));
        copy.text(format_args!("full"));
        copy.int8(10_000 + g % 5_000);
        copy.int8(2_000 + g % 7);
        copy.boolean(true);
        copy.timestamp(at);
        copy.flush_if_full().await?;
    }
    copy.finish().await?;
    Ok(())
}

/// PostgreSQL-epoch microseconds as Unix microseconds (for the ids' clock).
fn unix_micros(pg_micros: i64) -> i64 {
    pg_micros + PG_EPOCH_UNIX_SECS * SECOND
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_version_7_unique_per_kind_and_ordered_by_time_then_row() {
        let at = 1_777_000_000_000_000;
        let a = id_v7(at, IdKind::Redemption, 7, 1);
        let b = id_v7(at, IdKind::Redemption, 7, 2);
        let later = id_v7(at + 1_000, IdKind::Redemption, 7, 0);
        assert_eq!(a.get_version_num(), 7);
        assert!(a < b && b < later);
        assert_ne!(a, id_v7(at, IdKind::Voucher, 7, 1));
        assert_ne!(a, id_v7(at, IdKind::Redemption, 8, 1));
    }

    #[test]
    fn a_period_of_days_spreads_the_redemptions_over_all_of_it() {
        let spec = BenchSpec {
            redemptions: 1_000,
            merchants: 24,
            day: chrono::NaiveDate::from_ymd_opt(2026, 5, 1).unwrap_or_default(),
            days: 31,
        };
        let period = spec.period().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(period.to_string(), "2026-05-01..2026-05-31");
        let l = Layout {
            program: 1,
            n: spec.redemptions,
            k: 12,
            per_campaign: 2,
            start: pg_micros(period.starts_at()),
            seconds: (period.ends_at() - period.starts_at()).num_seconds(),
        };
        let last = l.redemption(spec.redemptions - 1);
        assert!(last.at >= l.start + 30 * DAY && last.at < l.start + 31 * DAY);
        assert!((0..spec.redemptions).all(|g| l.redemption(g).merchant < spec.merchants));
        assert_eq!(last.day_start, l.start + 30 * DAY);
    }
}
