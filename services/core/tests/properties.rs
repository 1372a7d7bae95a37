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
