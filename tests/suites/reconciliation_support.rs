//! What the reconciliation tests share: a fresh database with a program, campaigns owned by
//! cities or counties, merchants with a terminal each, and redemptions, holds and reversals
//! written directly as the redemption service records them (the job only reads records).

#![allow(dead_code)]

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use reconciliation::period::{beijing, Period};
use reconciliation::settle::{settle, SettleOutcome, SettleRequest};
use std::path::PathBuf;
use std::process::Command;
use system_tests::{fresh_db, TestDb};
use uuid::Uuid;

/// Taiyuan 太原, Datong 大同, Jincheng 晋城, Yangcheng 阳城 (a county of Jincheng).
pub const TAIYUAN: i32 = 140_100;
pub const DATONG: i32 = 140_200;
pub const JINCHENG: i32 = 140_500;
pub const YANGCHENG: i32 = 140_522;

/// A day of May 2026.
pub fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 5, d).expect("date")
}

/// `d` May 2026 at `hour`:`minute` Beijing time.
pub fn at(d: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    beijing()
        .with_ymd_and_hms(2026, 5, d, hour, minute, 0)
        .single()
        .expect("time")
        .with_timezone(&Utc)
}

/// A database with one program.
pub struct Fx {
    pub db: TestDb,
    pub program: i64,
}

impl Fx {
    /// A program with `pool` fen, the province's ratio, optional county co-funding and
    /// city allocations.
    pub async fn new(
        pool: i64,
        ratio_bp: i32,
        cofund_bp: Option<i32>,
        allocations: &[(i32, i64)],
    ) -> Fx {
        let db = fresh_db().await;
        let program: i64 = sqlx::query_scalar(
            "INSERT INTO programs (name, funder_place, province_ratio_bp, pool_fen, county_cofund_bp, refund_policy)
             VALUES ('家居惠民 2026', 140000, $1, $2, $3, 'restore') RETURNING id",
        )
        .bind(ratio_bp)
        .bind(pool)
        .bind(cofund_bp)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        for (city, a) in allocations {
            sqlx::query("INSERT INTO program_city_allocations VALUES ($1, $2, $3)")
                .bind(program)
                .bind(city)
                .bind(a)
                .execute(&db.pool)
                .await
                .unwrap();
        }
        Fx { db, program }
    }

    /// A threshold campaign (满100减20) owned by `owner`.
    pub async fn campaign(&self, owner: i32) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO campaigns (program_id, name, owner_place, category, rule, stock, per_person_limit,
                                    validity_days, budget_fen, distribution)
             VALUES ($1, $2, $3, 'catering', '{\"type\":\"threshold\",\"min_spend\":10000,\"off\":2000}',
                     1000, 10, 7, 10000000, 'list') RETURNING id",
        )
        .bind(self.program)
        .bind(format!("餐饮券 {owner}"))
        .bind(owner)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// A merchant in `city`, approved, with one terminal.
    pub async fn merchant(&self, id: &str, name: &str, city: i32) {
        sqlx::query(
            "INSERT INTO merchants (id, name, credit_code, category, city, status)
             VALUES ($1, $2, $3, 'catering', $4, 'approved')",
        )
        .bind(id)
        .bind(name)
        .bind(format!("CC-{id}"))
        .bind(city)
        .execute(&self.db.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO terminals (terminal_id, merchant_id, key_id, secret, created_at)
             VALUES ($1, $2, $3, 'c2VjcmV0', now())",
        )
        .bind(terminal(id))
        .bind(id)
        .bind(format!("k-{id}"))
        .execute(&self.db.pool)
        .await
        .unwrap();
    }

    /// A redemption in status `status` (resolved at `resolved` for a resolved hold).
    pub async fn redemption(
        &self,
        campaign: i64,
        merchant: &str,
        person: &str,
        order: i64,
        discount: i64,
        status: &str,
        created: DateTime<Utc>,
        resolved: Option<DateTime<Utc>>,
    ) -> Uuid {
        let voucher = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO vouchers (voucher_id, campaign_id, person_id, claim_id, round_no, source, status,
                                   claimed_at, valid_from, valid_until)
             VALUES ($1, $2, $3, $4, 0, 'list', 'redeemed', $5, $5, $5 + interval '7 days')",
        )
        .bind(voucher)
        .bind(campaign)
        .bind(person)
        .bind(Uuid::new_v4())
        .bind(created - chrono::Duration::hours(1))
        .execute(&self.db.pool)
        .await
        .unwrap();
        let id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO redemptions (id, merchant_id, terminal_id, voucher_id, campaign_id, program_id, person_id,
                                      single_use, status, order_ref, order_amount_fen, discount_fen, created_at, resolved_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, true, $8, $9, $10, $11, $12, $13)",
        )
        .bind(id)
        .bind(merchant)
        .bind(terminal(merchant))
        .bind(voucher)
        .bind(campaign)
        .bind(self.program)
        .bind(person)
        .bind(status)
        .bind(format!("order-{id}"))
        .bind(order)
        .bind(discount)
        .bind(created)
        .bind(resolved)
        .execute(&self.db.pool)
        .await
        .unwrap();
        id
    }

    /// A one-step sale.
    pub async fn sale(
        &self,
        campaign: i64,
        merchant: &str,
        person: &str,
        discount: i64,
        when: DateTime<Utc>,
    ) -> Uuid {
        self.redemption(
            campaign,
            merchant,
            person,
            discount.max(10_000) + 1,
            discount,
            "approved",
            when,
            None,
        )
        .await
    }

    /// A reversal of `discount` fen of `redemption` at `when`.
    pub async fn reverse(&self, redemption: Uuid, discount: i64, when: DateTime<Utc>) {
        sqlx::query(
            "INSERT INTO reversals (id, redemption_id, reversal_ref, refund_amount_fen, discount_reversed_fen, restored, created_at)
             VALUES ($1, $2, $3, 0, $4, true, $5)",
        )
        .bind(Uuid::now_v7())
        .bind(redemption)
        .bind(format!("rev-{}", Uuid::new_v4()))
        .bind(discount)
        .bind(when)
        .execute(&self.db.pool)
        .await
        .unwrap();
        sqlx::query("UPDATE redemptions SET reversed_fen = reversed_fen + $2 WHERE id = $1")
            .bind(redemption)
            .bind(discount)
            .execute(&self.db.pool)
            .await
            .unwrap();
    }

    /// Settles days `from..=to`.
    pub async fn settle(&self, from: u32, to: u32) -> SettleOutcome {
        settle(
            &self.db.pool,
            &SettleRequest {
                period: Period::new(day(from), day(to)).unwrap(),
                actor: "test".into(),
                now: at(to + 1, 1, 0),
            },
        )
        .await
        .unwrap()
    }

    /// `SELECT count(*) …` or another single bigint.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    /// Rows in every table the settlement writes.
    pub async fn ledger_rows(&self) -> Vec<i64> {
        let mut out = Vec::new();
        for t in [
            "settlement_runs",
            "settlement_batches",
            "settlement_county_shares",
            "settlement_merchant_lines",
            "settlement_batch_steps",
            "ledger_accounts",
            "ledger_postings",
        ] {
            out.push(self.scalar(&format!("SELECT count(*) FROM {t}")).await);
        }
        out
    }

    /// (province, city, county, spending) of the batch of `city` settled for `from..=to`.
    pub async fn batch(&self, city: i32, from: u32, to: u32) -> (i64, i64, i64, i64) {
        let row: (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT b.province_fen, b.city_fen, b.county_fen, b.spending_fen
               FROM settlement_batches b JOIN settlement_runs r ON r.id = b.run_id
              WHERE b.city = $1 AND r.period_start = $2 AND r.period_end = $3 AND r.program_id = $4",
        )
        .bind(city)
        .bind(day(from))
        .bind(day(to))
        .bind(self.program)
        .fetch_one(&self.db.pool)
        .await
        .unwrap();
        row
    }

    /// Asserts invariant I6 on every batch written so far: postings balance, Σ payables =
    /// S = P + city + county, and the clearing account nets to zero.
    pub async fn assert_balanced(&self) {
        let unbalanced = self
            .scalar("SELECT count(*) FROM (SELECT batch_id, advance_id FROM ledger_postings GROUP BY batch_id, advance_id HAVING sum(amount_fen) <> 0) x")
            .await;
        assert_eq!(unbalanced, 0, "every batch's postings sum to zero");
        let clearing = self
            .scalar("SELECT count(*) FROM (SELECT batch_id FROM ledger_postings WHERE account_code LIKE 'clearing:%' GROUP BY batch_id HAVING sum(amount_fen) <> 0) x")
            .await;
        assert_eq!(clearing, 0, "the clearing account nets to zero per batch");
        let wrong = self
            .scalar(
                "SELECT count(*) FROM settlement_batches b
                  WHERE b.spending_fen <> b.province_fen + b.city_fen + b.county_fen
                     OR b.spending_fen <> (SELECT COALESCE(sum(payable_fen), 0) FROM settlement_merchant_lines l WHERE l.batch_id = b.id)
                                        + (SELECT COALESCE(sum(payable_fen), 0) FROM settlement_subsidy_lines l WHERE l.batch_id = b.id)",
            )
            .await;
        assert_eq!(
            wrong, 0,
            "Σ payables = S = P + city + county in every batch"
        );
        let pool_total = self
            .scalar(&format!(
                "SELECT pool_fen FROM programs WHERE id = {}",
                self.program
            ))
            .await;
        let paid = self
            .scalar(&format!("SELECT COALESCE(sum(province_fen), 0)::bigint FROM settlement_batches WHERE program_id = {}", self.program))
            .await;
        assert!(
            paid <= pool_total && paid >= 0,
            "Σ P = {paid} within the pool {pool_total}"
        );
    }
}

/// The terminal id of a merchant's one terminal.
pub fn terminal(merchant: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, merchant.as_bytes())
}

/// The `reconciliation` binary of this workspace, built if missing.
pub fn reconciliation_binary() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("debug").join("reconciliation");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "reconciliation", "--bin", "reconciliation"])
            .current_dir(&root)
            .status()
            .expect("cargo build")
            .success();
        assert!(ok, "building the reconciliation binary failed");
    }
    bin
}
