//! The benchmark generator: fills a database with one day of redemptions, fast, entirely
//! inside PostgreSQL (`INSERT … SELECT generate_series`), so that `settle` can be measured on
//! a realistic period (`deploy/local/settle-bench.sh`).
//!
//! Shape: one program (50%, a pool of a third of the day's discounts, so the pool runs
//! short and is prorated), a threshold campaign per city of Shanxi plus one county campaign
//! (阳城, co-funded), `merchants` merchants spread over the campaigns, one terminal each, and
//! per redemption a voucher; every 20th redemption is a captured hold, every 50th is
//! reversed later that day; discounts have odd fen.

use crate::error::ReconError;
use crate::period::Period;
use sqlx::PgPool;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSpec {
    /// Redemptions in the day.
    pub redemptions: i64,
    /// Merchants.
    pub merchants: i64,
    /// The day.
    pub day: chrono::NaiveDate,
}

/// The cities of the benchmark campaigns, and Yangcheng county (a campaign of its own).
const OWNERS: [i32; 12] = [
    140_100, 140_200, 140_300, 140_400, 140_500, 140_600, 140_700, 140_800, 140_900, 141_000,
    141_100, 140_522,
];

/// Generates the day; returns the program id.
///
/// # Errors
/// Database failure.
pub async fn generate(pool: &PgPool, spec: &BenchSpec) -> Result<i64, ReconError> {
    let day = Period::day(spec.day);
    let start = day.starts_at();
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    // Average discount ≈ 2003 fen: a pool of a third of the day's discounts.
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
    for (k, owner) in OWNERS.iter().enumerate() {
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
            .bind(i32::try_from(k).unwrap_or(0))
            .bind(id)
            .bind(owner / 100 * 100)
            .execute(&mut *tx)
            .await?;
    }
    let k = i64::try_from(OWNERS.len()).unwrap_or(12);
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
    // Redemption g: campaign g % k, merchant serving it, person p<g % 200000>.
    sqlx::query(
        "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                               claimed_at, valid_from, valid_until)
         SELECT md5(format('bv%s-%s', $1::bigint, g))::uuid, c.id, format('p%s', g % 200000),
                md5(format('bc%s-%s', $1::bigint, g))::uuid, 0, 'list', 'redeemed',
                $2::timestamptz - interval '1 day', $2::timestamptz - interval '1 day', $2::timestamptz + interval '6 days'
           FROM generate_series(0, $3 - 1) g JOIN bench_campaigns c ON c.k = g % $4",
    )
    .bind(program)
    .bind(start)
    .bind(spec.redemptions)
    .bind(k)
    .execute(&mut *tx)
    .await?;
    let per_campaign = (spec.merchants / k).max(1);
    sqlx::query(
        "INSERT INTO redemptions (id, merchant_id, terminal_id, voucher_id, campaign_id, program_id, person_id,
                                  single_use, status, order_ref, order_amount_fen, discount_fen, reversed_fen,
                                  created_at, resolved_at)
         SELECT md5(format('br%s-%s', $1::bigint, g))::uuid, format('bm%s-%s', $1::bigint, m),
                md5(format('bt%s-%s', $1::bigint, m))::uuid, md5(format('bv%s-%s', $1::bigint, g))::uuid,
                c.id, $1, format('p%s', g % 200000), true,
                CASE WHEN g % 20 = 7 THEN 'captured' ELSE 'approved' END,
                format('o%s', g), 10000 + g % 5000, 2000 + g % 7,
                CASE WHEN g % 50 = 3 THEN 2000 + g % 7 ELSE 0 END,
                $2::timestamptz + make_interval(secs => (g * 86399 / $3)::double precision),
                CASE WHEN g % 20 = 7 THEN $2::timestamptz + make_interval(secs => (g * 86399 / $3)::double precision) + interval '1 second' END
           FROM generate_series(0, $3 - 1) g JOIN bench_campaigns c ON c.k = g % $4,
                LATERAL (SELECT (g % $4) + $4 * ((g / $4) % $5) AS m) mm
          WHERE m < $6",
    )
    .bind(program)
    .bind(start)
    .bind(spec.redemptions)
    .bind(k)
    .bind(per_campaign)
    .bind(spec.merchants)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO reversals (id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at)
         SELECT md5(format('bx%s-%s', $1::bigint, g))::uuid, md5(format('br%s-%s', $1::bigint, g))::uuid, 'full',
                10000 + g % 5000, 2000 + g % 7, true,
                least($2::timestamptz + make_interval(secs => (g * 86399 / $3)::double precision) + interval '10 minutes',
                      $2::timestamptz + interval '86399 seconds')
           FROM generate_series(0, $3 - 1) g WHERE g % 50 = 3",
    )
    .bind(program)
    .bind(start)
    .bind(spec.redemptions)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    Ok(program)
}
