//! What the storage tests share: a private Redis and a fresh database per test, a program
//! and a campaign written to PostgreSQL and synced into Redis, and claim requests.

#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::collections::BTreeMap;
use system_tests::{fresh_db, hot_store, TestDb, TestRedis};
use uuid::Uuid;
use voucher_core::{
    BasisPoints, Campaign, Category, ClaimId, Distribution, Eligibility, Fen, NewCampaign,
    NewProgram, PersonId, PlaceCode, Program, RefundPolicy, Round, Rule, Validity, VoucherId,
};
use voucher_store::persister::{Persister, PersisterConfig};
use voucher_store::pg::{campaigns, programs};
use voucher_store::{ClaimMode, ClaimOutcome, ClaimRequest, HotStore};

/// 2026-05-01 10:00 Beijing time: the first round opens.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0)
        .single()
        .expect("valid date")
}

/// Jincheng (晋城).
pub fn jincheng() -> PlaceCode {
    PlaceCode::parse("140500").expect("place")
}

/// A private Redis, a fresh database, the hot store, and one campaign in both.
pub struct Env {
    pub redis: TestRedis,
    pub db: TestDb,
    pub hot: HotStore,
    pub program: Program,
    pub campaign: Campaign,
}

/// How the test campaign looks.
#[derive(Debug, Clone)]
pub struct Shape {
    pub stock: u32,
    pub limit: u32,
    /// (start offset from t0, quantity) per round.
    pub rounds: Vec<(Duration, u32)>,
    pub distribution: Distribution,
    pub validity_days: u32,
}

impl Shape {
    /// A rush campaign with one round at t0 releasing the whole stock.
    pub fn rush(stock: u32, limit: u32) -> Shape {
        Shape {
            stock,
            limit,
            rounds: vec![(Duration::zero(), stock)],
            distribution: Distribution::Claim,
            validity_days: 7,
        }
    }
}

pub async fn new_program(pg: &sqlx::PgPool) -> Program {
    let spec = NewProgram {
        name: "晋城文旅消费券 2026".to_owned(),
        funder_place: PlaceCode::parse("140000").expect("place"),
        province_ratio_bp: BasisPoints::try_from(5000).expect("bp"),
        pool: Fen::from_yuan(200_000_000).expect("fen"),
        city_allocations: BTreeMap::from([(jincheng(), Fen::from_yuan(10_000_000).expect("fen"))]),
        county_cofund_bp: None,
        refund_policy: RefundPolicy::Restore,
    };
    programs::create(pg, &spec).await.expect("program")
}

pub fn campaign_spec(program: &Program, owner: PlaceCode, shape: &Shape) -> NewCampaign {
    NewCampaign {
        program_id: program.id,
        name: "晋城餐饮券 满100减20".to_owned(),
        owner_place: owner,
        category: Category::Catering,
        rule: Rule::Threshold {
            min_spend: Fen::from_yuan(100).expect("fen"),
            off: Fen::from_yuan(20).expect("fen"),
        },
        stock: shape.stock,
        per_person_limit: shape.limit,
        rounds: shape
            .rounds
            .iter()
            .zip(1..)
            .map(|((offset, quantity), round_no)| Round {
                round_no,
                starts_at: t0() + *offset,
                quantity: *quantity,
                mode: voucher_core::RoundMode::Rush,
            })
            .collect(),
        validity: Validity {
            days_after_claim: Some(shape.validity_days),
            ends_at: None,
        },
        budget: Fen::from_yuan(1_000_000).expect("fen"),
        eligibility: Eligibility {
            places: vec![],
            min_real_name_level: 0,
        },
        distribution: shape.distribution,
    }
}

/// Starts everything and creates and syncs the campaign.
pub async fn env(shape: Shape) -> Env {
    let redis = TestRedis::start();
    let db = fresh_db().await;
    let hot = hot_store(&redis).await;
    let program = new_program(&db.pool).await;
    let campaign = campaigns::create(&db.pool, &campaign_spec(&program, jincheng(), &shape))
        .await
        .expect("campaign");
    hot.sync_campaign(&campaign).await.expect("sync");
    Env {
        redis,
        db,
        hot,
        program,
        campaign,
    }
}

pub fn person(name: &str) -> PersonId {
    PersonId::parse(name).expect("person id")
}

impl Env {
    /// A claim by `who` at `now` with a fresh claim id and voucher id.
    pub fn request(&self, who: &str, now: DateTime<Utc>) -> ClaimRequest {
        self.request_with(who, now, ClaimId(Uuid::new_v4()))
    }

    /// A claim by `who` at `now` with this claim id (a retry) and a fresh voucher id.
    pub fn request_with(&self, who: &str, now: DateTime<Utc>, claim_id: ClaimId) -> ClaimRequest {
        let rounds = &self.campaign.spec.rounds;
        let round_no = rounds
            .iter()
            .filter(|r| r.starts_at <= now)
            .map(|r| r.round_no)
            .max()
            .unwrap_or(0);
        let days = i64::from(self.campaign.spec.validity.days_after_claim.unwrap_or(7));
        ClaimRequest {
            campaign_id: self.campaign.id,
            person_id: person(who),
            claim_id,
            voucher_id: VoucherId(Uuid::now_v7()),
            round_no,
            now,
            valid_from: now,
            valid_until: now + Duration::days(days),
            mode: match self.campaign.spec.distribution {
                Distribution::Claim => ClaimMode::Rush,
                Distribution::List => ClaimMode::List,
            },
        }
    }

    /// Claims and returns the outcome.
    pub async fn claim(&self, who: &str, now: DateTime<Utc>) -> ClaimOutcome {
        self.hot
            .claim(&self.request(who, now))
            .await
            .expect("claim")
    }

    /// A persister with test settings.
    pub fn persister(&self, consumer: &str) -> Persister {
        let config = PersisterConfig {
            consumer: consumer.to_owned(),
            batch: 500,
            block: std::time::Duration::from_millis(50),
            claim_idle: std::time::Duration::from_millis(100),
        };
        Persister::new(self.db.pool.clone(), self.hot.clone(), config)
    }

    /// A plain connection to the private Redis, for looking under the hood.
    pub async fn raw_redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }

    /// Counts rows (`SELECT count(*) …`).
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.db.pool)
            .await
            .expect("count")
    }
}

/// Whether the outcome is a new voucher.
pub fn claimed(outcome: &ClaimOutcome) -> bool {
    matches!(outcome, ClaimOutcome::Claimed(_))
}
