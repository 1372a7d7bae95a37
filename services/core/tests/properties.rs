//! Property and example tests of the pure domain: discount arithmetic, tokens, dynamic
//! codes, identity tokens and campaign validation.
#![allow(missing_docs, clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;
use voucher_core::discount::{self, Limit, NotApplicable};
use voucher_core::dynamic_code::{CodeError, DynamicCodes};
use voucher_core::identity::{self, Identity, IdentityError};
use voucher_core::keys::{SigningKey, Verifier, VerifyError};
use voucher_core::token::{self, TokenError, VoucherClaims};
use voucher_core::*;

fn fen(v: i64) -> Fen {
    Fen::try_from(v).unwrap()
}

fn bp(v: u32) -> BasisPoints {
    BasisPoints::try_from(v).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

fn claims(person: &str, rule: Rule) -> VoucherClaims {
    VoucherClaims {
        voucher_id: VoucherId(Uuid::new_v4()),
        campaign_id: CampaignId(42),
        program_id: ProgramId(7),
        person_id: PersonId::parse(person).unwrap(),
        place: PlaceCode::parse("140500").unwrap(),
        category: Category::Catering,
        rule,
        valid_from: t0(),
        valid_until: t0() + Duration::days(7),
    }
}

fn catering() -> Rule {
    Rule::Threshold {
        min_spend: fen(10_000),
        off: fen(2_000),
    }
}

// ---------------------------------------------------------------- discounts

#[test]
fn threshold_examples() {
    assert_eq!(
        discount::threshold(fen(10_000), fen(2_000), fen(9_999)),
        Err(NotApplicable::BelowThreshold {
            min_spend: fen(10_000)
        })
    );
    assert_eq!(
        discount::threshold(fen(10_000), fen(2_000), fen(10_000)),
        Ok(fen(2_000))
    );
    // 无门槛: never more than the order.
    assert_eq!(
        discount::threshold(fen(0), fen(500), fen(300)),
        Ok(fen(300))
    );
}

#[test]
fn percent_examples() {
    // 10% of 12,345.67 yuan floors to 1,234.56 yuan.
    let d = discount::percent(bp(1000), fen(1_234_567), fen(200_000), fen(i64::MAX));
    assert_eq!(d.amount, fen(123_456));
    assert_eq!(d.to_pay, fen(1_111_111));
    assert_eq!(d.limited_by, None);
    // A 30,000-yuan sofa: 3,000 yuan uncapped, cut to the 2,000-yuan cap.
    let d = discount::percent(bp(1000), fen(3_000_000), fen(200_000), fen(i64::MAX));
    assert_eq!(
        (d.amount, d.uncapped, d.limited_by),
        (fen(200_000), fen(300_000), Some(Limit::PersonCap))
    );
    // Cap used up: zero discount, still a sale.
    let d = discount::percent(bp(1000), fen(50_000), Fen::ZERO, fen(i64::MAX));
    assert_eq!((d.amount, d.to_pay), (Fen::ZERO, fen(50_000)));
    // Budget below the cap's remainder.
    let d = discount::percent(bp(1000), fen(50_000), fen(200_000), fen(1_234));
    assert_eq!((d.amount, d.limited_by), (fen(1_234), Some(Limit::Budget)));
}

#[test]
fn threshold_rule_needs_budget_for_the_whole_discount() {
    assert_eq!(
        catering().discount(fen(12_000), Fen::ZERO, fen(1_999)),
        Err(NotApplicable::BudgetExhausted)
    );
    let d = catering()
        .discount(fen(12_000), Fen::ZERO, fen(2_000))
        .unwrap();
    assert_eq!((d.amount, d.to_pay), (fen(2_000), fen(10_000)));
}

proptest! {
    #[test]
    fn percent_is_floor_then_cap_then_budget(price in 0i64..10_000_000_000, rate in 1u32..=10_000, cap in 0i64..1_000_000, budget in 0i64..1_000_000) {
        let d = discount::percent(bp(rate), fen(price), fen(cap), fen(budget));
        let floor = i64::try_from(i128::from(price) * i128::from(rate) / 10_000).unwrap();
        prop_assert_eq!(d.uncapped.as_i64(), floor);
        prop_assert_eq!(d.amount.as_i64(), floor.min(cap).min(budget));
        prop_assert_eq!(d.amount.as_i64() + d.to_pay.as_i64(), price);
        prop_assert!(d.amount <= fen(price));
        // floor: the discount never exceeds the exact rate × price.
        prop_assert!(i128::from(d.amount.as_i64()) * 10_000 <= i128::from(price) * i128::from(rate));
    }

    #[test]
    fn cumulative_percent_never_exceeds_the_cap(prices in proptest::collection::vec(0i64..5_000_000, 1..30)) {
        let cap = fen(200_000);
        let mut used = Fen::ZERO;
        let mut uncapped_sum = 0i64;
        for p in prices {
            let remaining = cap.saturating_sub(used);
            let d = discount::percent(bp(1000), fen(p), remaining, fen(i64::MAX));
            used = used.checked_add(d.amount).unwrap();
            uncapped_sum += d.uncapped.as_i64();
            prop_assert!(used <= cap);
        }
        prop_assert_eq!(used.as_i64(), uncapped_sum.min(cap.as_i64()));
    }

    #[test]
    fn threshold_never_exceeds_order(min in 0i64..1_000_000, off in 1i64..1_000_000, order in 0i64..2_000_000) {
        match discount::threshold(fen(min), fen(off), fen(order)) {
            Ok(d) => { prop_assert!(order >= min); prop_assert_eq!(d.as_i64(), off.min(order)); }
            Err(_) => prop_assert!(order < min),
        }
    }
}

// ---------------------------------------------------------------- tokens

fn key(kid: u32) -> SigningKey {
    SigningKey::generate(kid).unwrap()
}

fn verifier(keys: &[&SigningKey]) -> Verifier {
    Verifier::new(keys.iter().map(|k| k.public_key())).unwrap()
}

#[test]
fn token_is_compact_enough_for_a_qr_code() {
    let k = key(1);
    // The longest person id allowed and a percent rule: the worst case.
    let c = claims(
        &"p".repeat(64),
        Rule::Percent {
            rate_bp: bp(1000),
            per_person_cap: fen(200_000),
        },
    );
    let t = token::sign(&k, &c);
    assert!(t.as_str().len() <= 256, "token length {}", t.as_str().len());
    let typical = token::sign(&k, &claims("p0000123456", catering()));
    println!(
        "token length: typical {}, worst {}",
        typical.as_str().len(),
        t.as_str().len()
    );
    assert_eq!(typical.key_id(), Some(1));
}

#[test]
fn token_is_deterministic() {
    let k = key(1);
    let c = claims("alice", catering());
    assert_eq!(token::sign(&k, &c), token::sign(&k, &c));
}

#[test]
fn wrong_key_unknown_key_and_rotation() {
    let (k1, k2) = (key(1), key(2));
    let c = claims("alice", catering());
    let old = token::sign(&k1, &c);
    // A verifier that knows only key 2 does not know kid 1.
    assert_eq!(
        token::verify(&verifier(&[&k2]), old.as_str(), t0()),
        Err(TokenError::Signature(VerifyError::UnknownKey(1)))
    );
    // A different key under the same id: bad signature.
    let impostor = key(1);
    assert_eq!(
        token::verify(&verifier(&[&impostor]), old.as_str(), t0()),
        Err(TokenError::Signature(VerifyError::BadSignature))
    );
    // After rotation both keys are published: old and new tokens verify.
    let both = verifier(&[&k1, &k2]);
    assert_eq!(token::verify(&both, old.as_str(), t0()).unwrap(), c);
    assert_eq!(
        token::verify(&both, token::sign(&k2, &c).as_str(), t0()).unwrap(),
        c
    );
    // Retiring key 1 (not_after) refuses its tokens afterwards.
    let mut pk1 = k1.public_key();
    pk1.not_after = Some(t0());
    let retired = Verifier::new([pk1, k2.public_key()]).unwrap();
    assert_eq!(
        token::verify(&retired, old.as_str(), t0() + Duration::seconds(1)),
        Err(TokenError::Signature(VerifyError::RetiredKey(1)))
    );
}

#[test]
fn forged_token_is_refused() {
    let real = key(1);
    let forger = key(1);
    let forged = token::sign(&forger, &claims("mallory", catering()));
    assert!(token::verify(&verifier(&[&real]), forged.as_str(), t0()).is_err());
    assert_eq!(
        token::verify(&verifier(&[&real]), "not a token", t0()),
        Err(TokenError::Malformed)
    );
    assert_eq!(
        token::verify(&verifier(&[&real]), "", t0()),
        Err(TokenError::Malformed)
    );
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        (0i64..10_000_000, 1i64..10_000_000).prop_map(|(m, o)| Rule::Threshold {
            min_spend: fen(m),
            off: fen(o)
        }),
        (1u32..=10_000, 1i64..10_000_000).prop_map(|(r, c)| Rule::Percent {
            rate_bp: bp(r),
            per_person_cap: fen(c)
        }),
    ]
}

fn arb_claims() -> impl Strategy<Value = VoucherClaims> {
    (
        any::<u128>(),
        1i64..1_000_000,
        1i64..1_000,
        "[A-Za-z0-9_-]{1,64}",
        prop::sample::select(vec![140500u32, 140522, 140100]),
        prop::sample::select(Category::ALL.to_vec()),
        arb_rule(),
        0i64..4_000_000_000,
        0i64..10_000_000,
    )
        .prop_map(
            |(id, c, p, person, place, category, rule, from, len)| VoucherClaims {
                voucher_id: VoucherId(Uuid::from_u128(id)),
                campaign_id: CampaignId(c),
                program_id: ProgramId(p),
                person_id: PersonId::parse(&person).unwrap(),
                place: PlaceCode::try_from(place).unwrap(),
                category,
                rule,
                valid_from: DateTime::from_timestamp(from, 0).unwrap(),
                valid_until: DateTime::from_timestamp(from + len, 0).unwrap(),
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn token_round_trips(c in arb_claims()) {
        let k = key(3);
        let t = token::sign(&k, &c);
        // Arbitrary (far larger than real) numbers and 64-character ids: still a small QR code.
        prop_assert!(t.as_str().len() <= 280);
        prop_assert_eq!(token::verify(&verifier(&[&k]), t.as_str(), t0()).unwrap(), c);
    }

    #[test]
    fn any_tampered_byte_is_refused(c in arb_claims(), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let k = key(3);
        let t = token::sign(&k, &c);
        let mut bytes = URL_SAFE_NO_PAD.decode(t.as_str()).unwrap();
        let i = pos.index(bytes.len());
        bytes[i] ^= flip;
        let tampered = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert!(token::verify(&verifier(&[&k]), &tampered, t0()).is_err());
    }

    #[test]
    fn any_tampered_character_is_refused(c in arb_claims(), pos in any::<prop::sample::Index>(), ch in "[A-Za-z0-9_-]") {
        let k = key(3);
        let t = token::sign(&k, &c);
        let mut text: Vec<char> = t.as_str().chars().collect();
        let i = pos.index(text.len());
        let new = ch.chars().next().unwrap();
        prop_assume!(text[i] != new);
        text[i] = new;
        let tampered: String = text.into_iter().collect();
        prop_assert!(token::verify(&verifier(&[&k]), &tampered, t0()).is_err());
    }
}

// ---------------------------------------------------------------- dynamic codes

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";

#[test]
fn dynamic_code_accepts_one_step_of_skew_and_no_more() {
    let k = key(1);
    let v = verifier(&[&k]);
    let codes = DynamicCodes::new(SECRET, 30).unwrap();
    let c = claims("alice", catering());
    let t = token::sign(&k, &c);
    let shown = codes.code(&t, c.voucher_id, t0());
    assert!(shown.refresh_at > t0() && shown.refresh_at <= t0() + Duration::seconds(30));
    for offset in [-30i64, -1, 0, 29, 30, 59] {
        assert_eq!(
            codes
                .verify(&shown.code, &v, t0() + Duration::seconds(offset))
                .unwrap(),
            c,
            "offset {offset}"
        );
    }
    for offset in [-31i64, 60, 90, 3600] {
        assert_eq!(
            codes.verify(&shown.code, &v, t0() + Duration::seconds(offset)),
            Err(CodeError::Stale),
            "offset {offset}"
        );
    }
}

#[test]
fn dynamic_code_is_bound_to_secret_voucher_and_shape() {
    let k = key(1);
    let v = verifier(&[&k]);
    let codes = DynamicCodes::new(SECRET, 30).unwrap();
    let other_server = DynamicCodes::new(b"another-secret-another-secret-another", 30).unwrap();
    let c = claims("alice", catering());
    let t = token::sign(&k, &c);
    let shown = codes.code(&t, c.voucher_id, t0());
    assert_eq!(
        other_server.verify(&shown.code, &v, t0()),
        Err(CodeError::Stale)
    );
    // The MAC of another voucher does not fit this token.
    let other = codes.code(&t, VoucherId(Uuid::new_v4()), t0());
    assert_eq!(codes.verify(&other.code, &v, t0()), Err(CodeError::Stale));
    assert_eq!(
        codes.verify(t.as_str(), &v, t0()),
        Err(CodeError::Malformed)
    );
    assert!(codes.verify("garbage.garbagegarbage", &v, t0()).is_err());
    assert!(DynamicCodes::new(b"short", 30).is_err());
    assert!(DynamicCodes::new(SECRET, 29).is_err());
    assert!(DynamicCodes::new(SECRET, 61).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn tampered_dynamic_code_is_refused(pos in any::<prop::sample::Index>(), ch in "[A-Za-z0-9_.-]") {
        let k = key(1);
        let codes = DynamicCodes::new(SECRET, 60).unwrap();
        let c = claims("bob", catering());
        let shown = codes.code(&token::sign(&k, &c), c.voucher_id, t0()).code;
        let mut text: Vec<char> = shown.chars().collect();
        let i = pos.index(text.len());
        let new = ch.chars().next().unwrap();
        prop_assume!(text[i] != new);
        text[i] = new;
        let tampered: String = text.into_iter().collect();
        prop_assert!(codes.verify(&tampered, &verifier(&[&k]), t0()).is_err());
    }
}

// ---------------------------------------------------------------- identity

fn resident() -> Identity {
    Identity {
        person_id: PersonId::parse("p0000001").unwrap(),
        home: PlaceCode::parse("140522").unwrap(),
        real_name_level: 2,
        expires_at: t0() + Duration::hours(1),
    }
}

#[test]
fn identity_round_trip_and_refusals() {
    let idp = key(9);
    let v = verifier(&[&idp]);
    let who = resident();
    let tok = identity::mint(&idp, &who, t0());
    assert_eq!(identity::verify(&v, &tok, t0()).unwrap(), who);
    assert_eq!(
        identity::verify(&v, &tok, t0() + Duration::hours(1)),
        Err(IdentityError::Expired)
    );
    assert_eq!(
        identity::verify(&v, &tok, t0() - Duration::minutes(5)),
        Err(IdentityError::NotYetValid)
    );
    let forged = identity::mint(&key(9), &who, t0());
    assert!(matches!(
        identity::verify(&v, &forged, t0()),
        Err(IdentityError::Signature(_))
    ));
    assert_eq!(
        identity::verify(&v, "a.b", t0()),
        Err(IdentityError::Malformed)
    );
    // alg=none is refused whatever the signature.
    let parts: Vec<&str> = tok.split('.').collect();
    let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"9"}"#);
    assert_eq!(
        identity::verify(&v, &format!("{none}.{}.{}", parts[1], parts[2]), t0()),
        Err(IdentityError::Algorithm)
    );
    // A changed payload (another person) breaks the signature.
    let other = URL_SAFE_NO_PAD
        .encode(br#"{"sub":"p0000002","home":140522,"rnl":2,"iat":0,"exp":9999999999}"#);
    assert!(matches!(
        identity::verify(&v, &format!("{}.{other}.{}", parts[0], parts[2]), t0()),
        Err(IdentityError::Signature(_))
    ));
}

// ---------------------------------------------------------------- campaigns and programs

fn campaign_spec() -> NewCampaign {
    NewCampaign {
        program_id: ProgramId(1),
        name: "晋城餐饮券 满100减20".into(),
        owner_place: PlaceCode::parse("140500").unwrap(),
        category: Category::Catering,
        rule: catering(),
        stock: 500,
        per_person_limit: 1,
        rounds: vec![
            Round {
                round_no: 1,
                starts_at: t0(),
                quantity: 300,
                mode: RoundMode::Rush,
            },
            Round {
                round_no: 2,
                starts_at: t0() + Duration::days(7),
                quantity: 200,
                mode: RoundMode::Rush,
            },
        ],
        validity: Validity {
            days_after_claim: Some(7),
            ends_at: None,
        },
        budget: fen(1_000_000),
        eligibility: Eligibility {
            places: vec![],
            min_real_name_level: 1,
        },
        distribution: Distribution::Claim,
    }
}

#[test]
fn campaign_validation() {
    use voucher_core::campaign::InvalidCampaign as E;
    assert_eq!(campaign_spec().validate(), Ok(()));
    let bad = |f: &dyn Fn(&mut NewCampaign)| {
        let mut c = campaign_spec();
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert_eq!(bad(&|c| c.name = " ".into()), E::Name);
    assert_eq!(
        bad(&|c| c.owner_place = PlaceCode::parse("140000").unwrap()),
        E::OwnerLevel
    );
    assert_eq!(bad(&|c| c.stock = 0), E::ZeroStock);
    assert_eq!(bad(&|c| c.per_person_limit = 0), E::ZeroLimit);
    assert_eq!(bad(&|c| c.rounds[1].round_no = 3), E::Rounds);
    assert_eq!(bad(&|c| c.rounds[1].starts_at = t0()), E::Rounds);
    assert_eq!(bad(&|c| c.rounds.clear()), E::RoundsForDistribution);
    assert_eq!(
        bad(&|c| c.distribution = Distribution::List),
        E::RoundsForDistribution
    );
    assert_eq!(
        bad(&|c| c.validity = Validity {
            days_after_claim: None,
            ends_at: None
        }),
        E::Validity
    );
    assert_eq!(bad(&|c| c.budget = Fen::ZERO), E::ZeroBudget);
    assert!(matches!(
        bad(&|c| c.category = Category::HomeFurnishing),
        E::RuleCategory { .. }
    ));
    assert_eq!(
        bad(&|c| c.eligibility.places = vec![PlaceCode::parse("150100").unwrap()]),
        E::EligiblePlace(PlaceCode::parse("150100").unwrap())
    );
    let spec = campaign_spec();
    assert!(spec
        .validate_new_round(&Round {
            round_no: 3,
            starts_at: t0() + Duration::days(8),
            quantity: 1,
            mode: RoundMode::Rush,
        })
        .is_ok());
    assert!(spec
        .validate_new_round(&Round {
            round_no: 3,
            starts_at: t0() + Duration::days(6),
            quantity: 1,
            mode: RoundMode::Rush,
        })
        .is_err());
}

#[test]
fn rounds_eligibility_and_validity() {
    let c = Campaign {
        id: CampaignId(1),
        status: CampaignStatus::Active,
        spec: campaign_spec(),
    };
    assert_eq!(c.current_round(t0() - Duration::seconds(1)), None);
    assert_eq!(c.current_round(t0()).map(|r| r.round_no), Some(1));
    assert_eq!(
        c.current_round(t0() + Duration::days(8))
            .map(|r| r.round_no),
        Some(2)
    );
    assert_eq!(c.next_round(t0()).map(|r| r.round_no), Some(2));
    // A Yangcheng resident is a Jincheng resident; a Taiyuan one is not.
    assert_eq!(c.check_eligibility(&resident()), Ok(()));
    let mut taiyuan = resident();
    taiyuan.home = PlaceCode::parse("140100").unwrap();
    assert!(c.check_eligibility(&taiyuan).is_err());
    let mut anonymous = resident();
    anonymous.real_name_level = 0;
    assert!(c.check_eligibility(&anonymous).is_err());
    let v = Validity {
        days_after_claim: Some(7),
        ends_at: Some(t0() + Duration::days(3)),
    };
    assert_eq!(v.window(t0()), (t0(), t0() + Duration::days(3)));
}

#[test]
fn program_validation() {
    use std::collections::BTreeMap;
    let mut p = NewProgram {
        name: "家居惠民".into(),
        funder_place: PlaceCode::parse("140000").unwrap(),
        province_ratio_bp: bp(5000),
        pool: Fen::from_yuan(200_000_000).unwrap(),
        city_allocations: BTreeMap::new(),
        county_cofund_bp: None,
        refund_policy: RefundPolicy::Restore,
    };
    assert!(p.validate().is_ok());
    p.city_allocations.insert(
        PlaceCode::parse("140500").unwrap(),
        Fen::from_yuan(300_000_000).unwrap(),
    );
    assert!(p.validate().is_err());
    p.city_allocations.clear();
    p.city_allocations
        .insert(PlaceCode::parse("150100").unwrap(), fen(1));
    assert!(p.validate().is_err());
    p.city_allocations.clear();
    p.funder_place = PlaceCode::parse("140500").unwrap();
    assert!(p.validate().is_err());
}

// ---------------------------------------------------------------- parsing bounds

fn campaign_json() -> serde_json::Value {
    serde_json::json!({
        "program_id": 1, "name": "晋城餐饮券", "owner_place": 140500, "category": "catering",
        "rule": {"type": "threshold", "min_spend": 10000, "off": 2000},
        "stock": 500, "per_person_limit": 1,
        "rounds": [{"round_no": 1, "starts_at": "2026-05-01T02:00:00Z", "quantity": 500}],
        "validity": {"days_after_claim": 7}, "budget": 1000000,
        "eligibility": {"places": [], "min_real_name_level": 1}, "distribution": "claim"
    })
}

#[test]
fn a_stored_campaign_round_trips_and_unknown_fields_are_refused() {
    let mut stored = campaign_json();
    stored["id"] = serde_json::json!(7);
    stored["status"] = serde_json::json!("active");
    let campaign: Campaign = serde_json::from_value(stored).unwrap();
    assert_eq!(campaign.id, CampaignId(7));
    let again: Campaign = serde_json::from_value(serde_json::to_value(&campaign).unwrap()).unwrap();
    assert_eq!(again, campaign);
    let mut unknown = campaign_json();
    unknown["colour"] = serde_json::json!("red");
    let err = serde_json::from_value::<NewCampaign>(unknown).unwrap_err();
    assert!(err.to_string().contains("unknown field `colour`"), "{err}");
}

proptest! {
    #[test]
    fn counts_beyond_their_bounds_are_refused_when_parsed(extra in 1u64..=u64::from(u32::MAX)) {
        use voucher_core::campaign::bounds;
        for (pointer, max) in [
            ("/stock", bounds::MAX_STOCK),
            ("/per_person_limit", bounds::MAX_PER_PERSON_LIMIT),
            ("/rounds/0/quantity", bounds::MAX_STOCK),
            ("/rounds/0/round_no", bounds::MAX_ROUND_NO),
            ("/validity/days_after_claim", bounds::MAX_VALIDITY_DAYS),
        ] {
            let mut at_max = campaign_json();
            *at_max.pointer_mut(pointer).unwrap() = serde_json::json!(max);
            prop_assert!(serde_json::from_value::<NewCampaign>(at_max).is_ok(), "{pointer} at its bound");
            let mut over = campaign_json();
            *over.pointer_mut(pointer).unwrap() = serde_json::json!(u64::from(max) + extra);
            prop_assert!(serde_json::from_value::<NewCampaign>(over).is_err(), "{pointer} over its bound");
        }
    }
}

// ---------------------------------------------------------------- scenic-spot tickets

/// Scenic-spot ticket subsidies (001 item 13: 首道门票八折以上优惠 … 市级财政 … 按门票实际销售价格的20%
/// 给予补贴): the worked example and the arithmetic's properties.
mod tickets {
    use super::{bp, fen};
    use proptest::prelude::*;
    use voucher_core::ticket::{times, ProvinceBasis, ProvincePart, TicketRule};
    use voucher_core::Fen;

    /// Jincheng's rule: 80% of list or less qualifies, the city adds 20% of the sale price.
    fn jincheng(province: Option<ProvincePart>) -> TicketRule {
        TicketRule {
            max_sale_ratio_bp: bp(8000),
            province,
            city_rate_bp: bp(2000),
            city_per_ticket_cap: None,
        }
    }

    #[test]
    fn listed_at_100_sold_at_80_the_city_adds_16_per_ticket_and_48_for_three() {
        let t = jincheng(None).per_ticket(fen(100_00), fen(80_00));
        assert!(t.eligible);
        assert_eq!((t.province, t.city), (Fen::ZERO, fen(16_00)));
        assert_eq!(times(t.city, 3), Some(fen(48_00)));
    }

    #[test]
    fn sold_one_fen_above_80_percent_it_gets_nothing() {
        let t = jincheng(None).per_ticket(fen(100_00), fen(80_01));
        assert!(!t.eligible);
        assert_eq!((t.province, t.city), (Fen::ZERO, Fen::ZERO));
    }

    #[test]
    fn the_city_part_floors_to_the_fen() {
        // 20% of 79.99 yuan is 15.998: 15.99.
        let t = jincheng(None).per_ticket(fen(100_00), fen(79_99));
        assert_eq!(t.city, fen(15_99));
    }

    #[test]
    fn the_province_part_is_configured_floored_and_capped() {
        let rule = jincheng(Some(ProvincePart {
            basis: ProvinceBasis::Discount,
            rate_bp: bp(5000),
            per_ticket_cap: Some(fen(15_00)),
        }));
        // Half the 20.00 discount.
        assert_eq!(
            rule.per_ticket(fen(100_00), fen(80_00)).province,
            fen(10_00)
        );
        // Half the 20.01 discount is 10.005: 10.00.
        assert_eq!(
            rule.per_ticket(fen(100_01), fen(80_00)).province,
            fen(10_00)
        );
        // Half the 100.00 discount is 50.00: the cap of 15.00 per ticket.
        assert_eq!(
            rule.per_ticket(fen(200_00), fen(100_00)).province,
            fen(15_00)
        );
    }

    fn any_province() -> impl Strategy<Value = Option<ProvincePart>> {
        prop_oneof![
            Just(None),
            (
                0usize..3,
                1u32..=10_000,
                proptest::option::of(1i64..=1_000_00)
            )
                .prop_map(|(b, rate, cap)| Some(ProvincePart {
                    basis: [
                        ProvinceBasis::Discount,
                        ProvinceBasis::SalePrice,
                        ProvinceBasis::ListPrice,
                    ][b],
                    rate_bp: bp(rate),
                    per_ticket_cap: cap.map(fen),
                })),
        ]
    }

    fn any_rule() -> impl Strategy<Value = TicketRule> {
        (
            1u32..=10_000,
            any_province(),
            0u32..=10_000,
            proptest::option::of(1i64..=1_000_00),
        )
            .prop_map(|(ratio, province, city, cap)| TicketRule {
                max_sale_ratio_bp: bp(ratio),
                province,
                city_rate_bp: bp(city),
                city_per_ticket_cap: cap.map(fen),
            })
    }

    /// A list price and a sale price not above it, fen.
    fn prices() -> impl Strategy<Value = (i64, i64)> {
        (1i64..=10_000_000).prop_flat_map(|list| (Just(list), 1i64..=list))
    }

    proptest! {
        #[test]
        fn eligibility_is_the_exact_integer_comparison(rule in any_rule(), (list, sale) in prices()) {
            let t = rule.per_ticket(fen(list), fen(sale));
            let exact = i128::from(sale) * 10_000 <= i128::from(list) * i128::from(rule.max_sale_ratio_bp.get());
            prop_assert_eq!(t.eligible, exact);
            if !t.eligible {
                prop_assert_eq!((t.province, t.city), (Fen::ZERO, Fen::ZERO));
            }
        }

        #[test]
        fn the_parts_never_exceed_the_sale_price(rule in any_rule(), (list, sale) in prices()) {
            let t = rule.per_ticket(fen(list), fen(sale));
            prop_assert!(t.province.as_i64() + t.city.as_i64() <= sale);
        }

        #[test]
        fn without_a_province_part_or_a_cap_the_city_gets_exactly_the_floored_rate(
            ratio in 1u32..=10_000, rate in 0u32..=10_000, (list, sale) in prices()
        ) {
            let rule = TicketRule {
                max_sale_ratio_bp: bp(ratio),
                province: None,
                city_rate_bp: bp(rate),
                city_per_ticket_cap: None,
            };
            let t = rule.per_ticket(fen(list), fen(sale));
            if t.eligible {
                let floored = i128::from(sale) * i128::from(rate) / 10_000;
                prop_assert_eq!(i128::from(t.city.as_i64()), floored);
                // Floored: never more than the exact share, less than a fen below it.
                prop_assert!(floored * 10_000 <= i128::from(sale) * i128::from(rate));
                prop_assert!((floored + 1) * 10_000 > i128::from(sale) * i128::from(rate));
            }
        }

        #[test]
        fn a_cap_bounds_each_part_per_ticket(rule in any_rule(), (list, sale) in prices()) {
            let t = rule.per_ticket(fen(list), fen(sale));
            if let Some(cap) = rule.city_per_ticket_cap {
                prop_assert!(t.city <= cap);
            }
            if let Some(cap) = rule.province.and_then(|p| p.per_ticket_cap) {
                prop_assert!(t.province <= cap);
            }
        }

        #[test]
        fn refunds_in_any_parts_give_back_exactly_the_sale_total(
            rule in any_rule(), (list, sale) in prices(), parts in proptest::collection::vec(1u32..=50, 1..8)
        ) {
            let t = rule.per_ticket(fen(list), fen(sale));
            let quantity: u32 = parts.iter().sum();
            for per in [t.province, t.city] {
                let whole = times(per, quantity).unwrap();
                let given_back: i64 = parts.iter().map(|q| times(per, *q).unwrap().as_i64()).sum();
                prop_assert_eq!(given_back, whole.as_i64());
                prop_assert_eq!(whole.as_i64(), per.as_i64() * i64::from(quantity));
            }
        }
    }
}

// ---------------------------------------------------------------- lottery rounds

/// Lottery rounds (报名摇号, issue 12): the draw's arithmetic against a reference written
/// here from the documented algorithm (SHA-256 by `ring` directly, winners picked by
/// repeated minimum instead of a sort), and the published draw's verification.
mod lottery {
    use chrono::DateTime;
    use proptest::prelude::*;
    use ring::digest::{digest, SHA256};
    use voucher_core::lottery::{
        draw, registration_hash, verify, winner_claim_id, Discrepancy, PublishedDraw,
        RegistrationHash, Seed, ALGORITHM,
    };
    use voucher_core::{CampaignId, PersonId};

    fn sha(bytes: &[u8]) -> Vec<u8> {
        digest(&SHA256, bytes).as_ref().to_vec()
    }

    /// The reference: distinct entries; repeatedly take the one whose SHA-256(seed ‖ entry)
    /// (then the entry) is least, `quantity` times or until none is left.
    fn reference(seed: &[u8; 32], entries: &[[u8; 32]], quantity: u32) -> Vec<[u8; 32]> {
        let mut left: Vec<(Vec<u8>, [u8; 32])> = Vec::new();
        for e in entries {
            if !left.iter().any(|(_, x)| x == e) {
                left.push((sha(&[&seed[..], &e[..]].concat()), *e));
            }
        }
        let mut out = Vec::new();
        while out.len() < quantity as usize && !left.is_empty() {
            let mut best = 0;
            for i in 1..left.len() {
                if (&left[i].0, &left[i].1) < (&left[best].0, &left[best].1) {
                    best = i;
                }
            }
            out.push(left.swap_remove(best).1);
        }
        out
    }

    fn entries() -> impl Strategy<Value = Vec<[u8; 32]>> {
        // Few distinct byte patterns now and then, so repeats occur.
        prop::collection::vec(
            prop_oneof![any::<[u8; 32]>(), (0u8..4).prop_map(|b| [b; 32])],
            0..50,
        )
    }

    fn hashes(list: &[[u8; 32]]) -> Vec<RegistrationHash> {
        list.iter()
            .copied()
            .map(RegistrationHash::from_bytes)
            .collect()
    }

    fn published(seed: [u8; 32], list: &[[u8; 32]], quantity: u32) -> PublishedDraw {
        let seed = Seed::from_bytes(seed);
        let mut sorted = hashes(list);
        sorted.sort_unstable();
        sorted.dedup();
        PublishedDraw {
            algorithm: ALGORITHM.into(),
            campaign_id: CampaignId(1),
            round_no: 1,
            quantity,
            commitment: seed.commitment(),
            winners: draw(&seed, &sorted, quantity),
            seed,
            drawn_at: DateTime::from_timestamp(1_777_600_800, 0).unwrap(),
            registration_hashes: sorted,
        }
    }

    proptest! {
        #[test]
        fn the_draw_is_the_reference_selection(
            seed in any::<[u8; 32]>(),
            list in entries(),
            quantity in 0u32..60,
        ) {
            let got = draw(&Seed::from_bytes(seed), &hashes(&list), quantity);
            let want: Vec<RegistrationHash> = hashes(&reference(&seed, &list, quantity));
            prop_assert_eq!(got, want);
        }

        #[test]
        fn no_loser_outranks_a_winner(
            seed in any::<[u8; 32]>(),
            list in entries(),
            quantity in 0u32..60,
        ) {
            let winners = draw(&Seed::from_bytes(seed), &hashes(&list), quantity);
            let key = |h: &RegistrationHash| sha(&[&seed[..], &h.as_bytes()[..]].concat());
            let losers: Vec<RegistrationHash> = hashes(&list)
                .into_iter()
                .filter(|h| !winners.contains(h))
                .collect();
            for w in &winners {
                for l in &losers {
                    prop_assert!(key(w) < key(l));
                }
            }
            prop_assert!(winners.windows(2).all(|p| key(&p[0]) < key(&p[1])));
        }

        #[test]
        fn an_honest_draw_verifies_and_a_changed_one_does_not(
            seed in any::<[u8; 32]>(),
            list in prop::collection::vec(any::<[u8; 32]>(), 2..40),
            quantity in 1u32..40,
            other in any::<[u8; 32]>(),
        ) {
            let good = published(seed, &list, quantity);
            prop_assert!(verify(&good).is_ok());
            prop_assert_eq!(good.seed.commitment().as_bytes().to_vec(), sha(&seed));

            // A winner swapped for an entry that lost (when one did).
            if let Some(loser) = good
                .registration_hashes
                .iter()
                .find(|h| !good.winners.contains(h))
            {
                let mut bad = good.clone();
                bad.winners[0] = *loser;
                let found = verify(&bad).unwrap_err();
                let is_rank_1 = found
                    .iter()
                    .any(|d| matches!(d, Discrepancy::Winner { rank: 1, .. }));
                prop_assert!(is_rank_1, "{:?}", found);
            }
            // The list out of order.
            let mut unsorted = good.clone();
            unsorted.registration_hashes.reverse();
            let found = verify(&unsorted).unwrap_err();
            let names_order = found
                .iter()
                .any(|d| matches!(d, Discrepancy::Unsorted { .. }));
            prop_assert!(names_order, "{:?}", found);
            // A commitment to another seed.
            if other != seed {
                let mut bad = good.clone();
                bad.commitment = Seed::from_bytes(other).commitment();
                let found = verify(&bad).unwrap_err();
                let names_commitment = matches!(found[0], Discrepancy::Commitment { .. });
                prop_assert!(names_commitment, "{:?}", found);
            }
        }

        #[test]
        fn the_registration_hash_is_the_documented_bytes(
            campaign in any::<i64>(),
            round_no in any::<u32>(),
            person in "[A-Za-z0-9_-]{1,64}",
        ) {
            let id = PersonId::parse(&person).unwrap();
            let mut bytes = campaign.to_be_bytes().to_vec();
            bytes.extend_from_slice(&round_no.to_be_bytes());
            bytes.extend_from_slice(person.as_bytes());
            let h = registration_hash(CampaignId(campaign), round_no, &id);
            prop_assert_eq!(h.as_bytes().to_vec(), sha(&bytes));
            prop_assert_eq!(RegistrationHash::parse_hex(&h.to_hex()).unwrap(), h);
        }

        #[test]
        fn winners_claim_ids_are_stable_and_distinct(
            campaign in 1i64..1_000,
            round_no in 1u32..100,
            a in "[A-Z][0-9]{1,6}",
            b in "[A-Z][0-9]{1,6}",
        ) {
            let (pa, pb) = (PersonId::parse(&a).unwrap(), PersonId::parse(&b).unwrap());
            let id = winner_claim_id(CampaignId(campaign), round_no, &pa);
            prop_assert_eq!(id, winner_claim_id(CampaignId(campaign), round_no, &pa));
            prop_assert_ne!(id, winner_claim_id(CampaignId(campaign), round_no + 1, &pa));
            prop_assert_ne!(id, winner_claim_id(CampaignId(campaign + 1), round_no, &pa));
            prop_assert_eq!(a == b, id == winner_claim_id(CampaignId(campaign), round_no, &pb));
        }
    }
}

/// The checkout's schemes (issue 12): the 以旧换新 per-item rule, the annual card, the extra
/// rules on certified attributes, and their tokens.
mod checkout_schemes {
    use super::*;
    use voucher_core::extra::{
        self, Attribute, CertificateNo, Certification, CertifiedLine, ExtraInput, ExtraRule,
    };
    use voucher_core::item_rule::{
        self, CategoryRule, ItemLine, ItemRefusal, ItemRule, PricedLine, ProductCategory,
    };

    const NAMES: [&str; 12] = [
        "refrigerator",
        "washing_machine",
        "television",
        "air_conditioner",
        "computer",
        "water_heater",
        "cooker",
        "range_hood",
        "dishwasher",
        "phone",
        "tablet",
        "smart_watch",
    ];

    fn cat(s: &str) -> ProductCategory {
        ProductCategory::parse(s).unwrap()
    }

    fn arb_category_rule() -> impl Strategy<Value = (u32, Option<u32>, Option<i64>, Option<i64>)> {
        (
            1u32..=5,
            proptest::option::of(1u32..=10_000),
            proptest::option::of(1i64..=500_000),
            proptest::option::of(1i64..=2_000_000),
        )
    }

    fn arb_item_rule() -> impl Strategy<Value = ItemRule> {
        (
            1u32..=10_000,
            1i64..=500_000,
            proptest::option::of(1i64..=5_000_000),
            proptest::option::of(1i64..=2_000_000),
            proptest::sample::subsequence(NAMES.to_vec(), 1..=12),
            proptest::collection::vec(arb_category_rule(), 12),
        )
            .prop_map(|(rate, cap, person, max, names, terms)| ItemRule {
                rate_bp: bp(rate),
                item_cap: fen(cap),
                per_person_cap: person.map(fen),
                max_item_price: max.map(fen),
                categories: names
                    .iter()
                    .zip(terms)
                    .map(|(n, (items, r, c, m))| CategoryRule {
                        product_category: cat(n),
                        per_person_items: items,
                        rate_bp: r.map(bp),
                        item_cap: c.map(fen),
                        max_item_price: m.map(fen),
                    })
                    .collect(),
            })
    }

    fn arb_lines() -> impl Strategy<Value = Vec<ItemLine>> {
        proptest::collection::vec(
            (
                proptest::sample::select(NAMES.to_vec()),
                1i64..=3_000_000,
                1u32..=4,
            ),
            0..6,
        )
        .prop_map(|lines| {
            lines
                .into_iter()
                .map(|(c, price, quantity)| ItemLine {
                    product_category: Some(cat(c)),
                    unit_price: fen(price),
                    quantity,
                })
                .collect()
        })
    }

    #[test]
    fn the_worked_examples_of_the_2025_rules() {
        let rule: Rule = serde_json::from_value(serde_json::json!({
            "type": "item_percent", "rate_bp": 1500, "item_cap": 200_000,
            "categories": [{"product_category": "refrigerator", "per_person_items": 1},
                           {"product_category": "air_conditioner", "per_person_items": 3},
                           {"product_category": "phone", "per_person_items": 1,
                            "item_cap": 50_000, "max_item_price": 600_000}]
        }))
        .unwrap();
        let Rule::ItemPercent(rule) = rule else {
            unreachable!()
        };
        let line = |c: &str, price: i64, quantity: u32| ItemLine {
            product_category: Some(cat(c)),
            unit_price: fen(price),
            quantity,
        };
        // 15% of 4,999.00 yuan = 749.85 yuan; 15% of 15,000 yuan = 2,250 → the 2,000 cap.
        let priced = rule
            .price(&[
                line("refrigerator", 499_900, 1),
                line("air_conditioner", 1_500_000, 2),
            ])
            .unwrap();
        assert_eq!(item_rule::total(&priced), fen(74_985 + 400_000));
        assert_eq!(
            rule.price(&[line("air_conditioner", 100, 4)]),
            Err(ItemRefusal::OverLimit(cat("air_conditioner")))
        );
        assert_eq!(
            rule.price(&[line("phone", 699_900, 1)]),
            Err(ItemRefusal::PriceAboveLimit(cat("phone")))
        );
        assert_eq!(
            rule.price(&[line("phone", 599_900, 1)]).unwrap()[0].discount,
            fen(50_000)
        );
        // The annual card: 10 yuan once.
        let card = Rule::AnnualCard {
            subsidy: fen(1_000),
        };
        let first = card
            .discount(fen(5_000), fen(1_000), fen(i64::MAX))
            .unwrap();
        let later = card.discount(fen(5_000), fen(0), fen(i64::MAX)).unwrap();
        assert_eq!((first.amount, later.amount), (fen(1_000), fen(0)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn one_item_never_gets_more_than_its_cap_or_its_price(
            rate in 0u32..=10_000, cap in 0i64..10_000_000, price in 0i64..10_000_000_000,
        ) {
            let d = item_rule::item_discount(bp(rate), fen(cap), fen(price));
            prop_assert!(d <= fen(cap) && d <= fen(price));
            prop_assert_eq!(d.as_i64(), (i128::from(price) * i128::from(rate) / 10_000).min(i128::from(cap)) as i64);
        }

        #[test]
        fn priced_lines_keep_every_limit_or_name_the_one_passed(rule in arb_item_rule(), lines in arb_lines()) {
            match rule.price(&lines) {
                Ok(priced) => {
                    prop_assert_eq!(priced.len(), lines.len());
                    for (p, l) in priced.iter().zip(&lines) {
                        let t = rule.terms(&p.product_category).unwrap();
                        prop_assert!(p.per_item <= t.item_cap && p.per_item <= l.unit_price);
                        prop_assert!(t.max_item_price.is_none_or(|m| l.unit_price <= m));
                        prop_assert_eq!(p.discount.as_i64(), p.per_item.as_i64() * i64::from(p.quantity));
                    }
                    for (c, q) in item_rule::quantities(&priced) {
                        prop_assert!(q <= rule.terms(&c).unwrap().per_person_items);
                    }
                    prop_assert!(item_rule::total(&priced).as_i64()
                        <= lines.iter().map(|l| l.unit_price.as_i64() * i64::from(l.quantity)).sum::<i64>());
                }
                Err(ItemRefusal::NoLines) => prop_assert!(lines.is_empty()),
                Err(ItemRefusal::NotCovered(c)) => {
                    prop_assert!(c.is_some_and(|c| rule.terms(&c).is_none()));
                }
                Err(ItemRefusal::PriceAboveLimit(c)) => {
                    let max = rule.terms(&c).unwrap().max_item_price.unwrap();
                    prop_assert!(lines.iter().any(|l| l.product_category.as_ref() == Some(&c) && l.unit_price > max));
                }
                Err(ItemRefusal::OverLimit(c)) => {
                    let q: u32 = lines.iter().filter(|l| l.product_category.as_ref() == Some(&c)).map(|l| l.quantity).sum();
                    prop_assert!(q > rule.terms(&c).unwrap().per_person_items);
                }
            }
        }

        #[test]
        fn cut_to_keeps_a_prefix_and_adds_up_to_the_room(
            discounts in proptest::collection::vec(0i64..1_000_000, 0..8), room in 0i64..5_000_000,
        ) {
            let mut lines: Vec<PricedLine> = discounts.iter().map(|d| PricedLine {
                product_category: cat("phone"), unit_price: fen(*d), quantity: 1, per_item: fen(*d), discount: fen(*d),
            }).collect();
            let total = item_rule::cut_to(&mut lines, fen(room));
            let sum: i64 = discounts.iter().sum();
            prop_assert_eq!(total.as_i64(), sum.min(room));
            prop_assert_eq!(item_rule::total(&lines), total);
            let mut cut_seen = false;
            for (l, d) in lines.iter().zip(&discounts) {
                prop_assert!(l.discount.as_i64() <= *d);
                if cut_seen {
                    prop_assert_eq!(l.discount, Fen::ZERO);
                }
                if l.discount.as_i64() < *d {
                    cut_seen = true;
                }
            }
        }

        #[test]
        fn extra_reversals_add_up_exactly_to_the_extra(
            amount in 0i64..1_000_000, extra_order in 0i64..10_000_000,
            cuts in proptest::collection::vec(1u32..=1_000, 1..8),
        ) {
            let order = amount.max(1) + extra_order;
            // Split the order into refunds proportional to the random weights.
            let weights: u64 = cuts.iter().map(|c| u64::from(*c)).sum();
            let mut parts: Vec<i64> = cuts.iter().map(|c| (i128::from(order) * i128::from(*c) / i128::from(weights)) as i64).collect();
            let given: i64 = parts.iter().sum();
            parts[0] += order - given;
            let (mut refunded, mut back) = (Fen::ZERO, Fen::ZERO);
            for p in parts {
                let b = extra::proportional(fen(amount), fen(order), refunded, fen(p));
                prop_assert!(b >= Fen::ZERO);
                back = back.checked_add(b).unwrap();
                refunded = refunded.checked_add(fen(p)).unwrap();
                prop_assert!(back <= fen(amount));
            }
            prop_assert_eq!(refunded, fen(order));
            prop_assert_eq!(back, fen(amount));
        }

        #[test]
        fn extras_stay_within_room_caps_person_caps_and_budgets(
            specs in proptest::collection::vec(
                (1u32..=10_000, 1i64..100_000, proptest::option::of(1i64..200_000), 0i64..200_000, 0i64..300_000, 0i64..3_000_000),
                1..4),
            room in 0i64..2_000_000,
        ) {
            let names = ["green_product", "new_energy", "water_saving", "energy_label_1"];
            let rules: Vec<ExtraRule> = specs.iter().enumerate().map(|(i, (rate, cap, person, _, _, _))| ExtraRule {
                attribute: Attribute::parse(names[i]).unwrap(), rate_bp: bp(*rate), cap_per_order: fen(*cap),
                per_person_cap: person.map(fen), budget: fen(1), active: true,
            }).collect();
            let inputs: Vec<ExtraInput<'_>> = rules.iter().zip(&specs).map(|(r, (_, _, _, used, left, base))| ExtraInput {
                rule: r, base: fen(*base), budget_left: fen(*left), person_used: fen(*used),
            }).collect();
            let amounts = extra::plan(&inputs, fen(room));
            prop_assert!(amounts.iter().map(|a| a.as_i64()).sum::<i64>() <= room);
            for (a, i) in amounts.iter().zip(&inputs) {
                prop_assert!(*a <= i.rule.cap_per_order && *a <= i.budget_left && *a <= i.base.mul_bp_floor(i.rule.rate_bp));
                if let Some(cap) = i.rule.per_person_cap {
                    prop_assert!(*a <= cap.saturating_sub(i.person_used));
                }
            }
        }

        #[test]
        fn a_certified_base_counts_only_the_certified_lines(
            lines in proptest::collection::vec((1i64..1_000_000, any::<bool>()), 0..8),
        ) {
            let green = Attribute::parse("green_product").unwrap();
            let cert = vec![Certification { attribute: green.clone(), certificate_no: CertificateNo::parse("CQC-0001").unwrap() }];
            let none: Vec<Certification> = Vec::new();
            let certified: Vec<CertifiedLine<'_>> = lines.iter().map(|(a, c)| CertifiedLine {
                amount: fen(*a), certifications: if *c { &cert } else { &none },
            }).collect();
            let expected: i64 = lines.iter().filter(|(_, c)| *c).map(|(a, _)| a).sum();
            prop_assert_eq!(extra::certified_base(&certified, &green), fen(expected));
        }

        #[test]
        fn an_annual_card_is_subsidised_once_whatever_the_entries(
            subsidy in 1i64..100_000, orders in proptest::collection::vec(1i64..100_000, 1..10),
        ) {
            // The record: the entitlement row's use, whose cap is the subsidy.
            let card = Rule::AnnualCard { subsidy: fen(subsidy) };
            let mut used = Fen::ZERO;
            let mut granted = Vec::new();
            for o in &orders {
                let d = card.discount(fen(*o), fen(subsidy).saturating_sub(used), fen(i64::MAX)).unwrap();
                prop_assert_eq!(d.amount, discount::annual_card(fen(subsidy), fen(*o), used > Fen::ZERO));
                used = used.checked_add(d.amount).unwrap();
                granted.push(d.amount);
            }
            prop_assert_eq!(granted[0], fen(subsidy.min(orders[0])));
            prop_assert!(granted[1..].iter().all(|g| *g == Fen::ZERO));
        }

        #[test]
        fn item_rule_and_annual_card_tokens_round_trip_and_fit_a_qr_code(
            rule in arb_item_rule(), subsidy in 1i64..10_000_000, person in "[A-Za-z0-9_-]{1,64}",
        ) {
            let k = key(5);
            for r in [Rule::ItemPercent(rule.clone()), Rule::AnnualCard { subsidy: fen(subsidy) }] {
                let mut c = claims(&person, r);
                c.category = Category::HomeFurnishing;
                let t = token::sign(&k, &c);
                prop_assert!(t.as_str().len() <= 1024, "{} characters", t.as_str().len());
                prop_assert_eq!(token::verify(&verifier(&[&k]), t.as_str(), t0()).unwrap(), c);
            }
        }
    }
}
