//! Property tests of the checkout decline rules (`voucher_core::checkout`): a good code at
//! the right till passes and yields its claims; each rule declines exactly when it should,
//! and the checks run in the documented order.
#![allow(missing_docs, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use uuid::Uuid;
use voucher_core::checkout::{check_claims, precheck, Decline, Till};
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::keys::{SigningKey, Verifier};
use voucher_core::token::{self, VoucherClaims};
use voucher_core::*;

fn fen(v: i64) -> Fen {
    Fen::try_from(v).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 2, 0, 0).single().unwrap()
}

fn place(code: u32) -> PlaceCode {
    PlaceCode::try_from(code).unwrap()
}

fn claims(category: Category, owner: u32, min_spend: i64) -> VoucherClaims {
    VoucherClaims {
        voucher_id: VoucherId(Uuid::new_v4()),
        campaign_id: CampaignId(42),
        program_id: ProgramId(7),
        person_id: PersonId::parse("p1").unwrap(),
        place: place(owner),
        category,
        rule: Rule::Threshold {
            min_spend: fen(min_spend),
            off: fen(min_spend / 5),
        },
        valid_from: t0(),
        valid_until: t0() + Duration::days(7),
    }
}

fn catering_till(place_code: u32) -> Till {
    Till {
        category: Category::Catering,
        place: place(place_code),
    }
}

struct World {
    key: SigningKey,
    verifier: Verifier,
    codes: DynamicCodes,
}

fn world() -> World {
    let key = SigningKey::generate(1).unwrap();
    let verifier = Verifier::new([key.public_key()]).unwrap();
    World {
        key,
        verifier,
        codes: DynamicCodes::new(&[7u8; 32], 30).unwrap(),
    }
}

const CATEGORIES: [Category; 5] = [
    Category::Catering,
    Category::Lodging,
    Category::CultureTourism,
    Category::HomeFurnishing,
    Category::General,
];

#[test]
fn decline_codes_are_unique_and_serialize_as_their_code() {
    let mut seen = std::collections::HashSet::new();
    for d in Decline::ALL {
        assert!(seen.insert(d.as_str()), "{d:?} repeated");
        assert!(d
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b == b'_'));
        assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        assert!(!d.message().is_empty());
    }
}

proptest! {
    #[test]
    fn a_current_code_at_the_right_till_passes(offset in 0i64..7 * 86_400, extra in 0i64..1_000_000) {
        let w = world();
        let c = claims(Category::Catering, 140_500, 10_000);
        let now = t0() + Duration::seconds(offset);
        let code = w.codes.code(&token::sign(&w.key, &c), c.voucher_id, now).code;
        let got = precheck(&w.codes, &w.verifier, &code, now, catering_till(140_522), fen(10_000 + extra));
        prop_assert_eq!(got.map(|v| (v.claims, v.epoch)), Ok((c, 0)));
    }

    #[test]
    fn a_code_more_than_one_step_old_or_ahead_is_stale(steps in 2i64..10_000, ahead in any::<bool>()) {
        let w = world();
        let c = claims(Category::Catering, 140_500, 10_000);
        let shown = t0() + Duration::days(1);
        let code = w.codes.code(&token::sign(&w.key, &c), c.voucher_id, shown).code;
        let delta = Duration::seconds(30 * steps);
        let now = if ahead { shown - delta } else { shown + delta };
        let got = precheck(&w.codes, &w.verifier, &code, now, catering_till(140_500), fen(20_000));
        // Outside the window the validity check would not be reached: the code is refused first.
        prop_assert_eq!(got.map(|v| v.epoch), Err(Decline::CodeStale));
    }

    #[test]
    fn a_tampered_code_is_a_token_invalid(cut in 1usize..40) {
        let w = world();
        let c = claims(Category::Catering, 140_500, 10_000);
        let code = w.codes.code(&token::sign(&w.key, &c), c.voucher_id, t0()).code;
        let tampered = format!("{}{}", &code[cut..cut + 1].to_uppercase(), &code[..]);
        let got = precheck(&w.codes, &w.verifier, &tampered, t0(), catering_till(140_500), fen(20_000));
        prop_assert!(matches!(got, Err(Decline::TokenInvalid) | Err(Decline::CodeStale)));
        prop_assert!(precheck(&w.codes, &w.verifier, "no-dot-here", t0(), catering_till(140_500), fen(1)).map(|v| v.epoch) == Err(Decline::TokenInvalid));
    }

    #[test]
    fn the_threshold_declines_exactly_below_the_minimum(min in 1i64..10_000_000, order in 1i64..20_000_000) {
        let c = claims(Category::Catering, 140_500, min);
        let got = check_claims(&c, t0(), catering_till(140_500), fen(order));
        prop_assert_eq!(got.is_err(), order < min);
        if order < min {
            prop_assert_eq!(got, Err(Decline::BelowThreshold));
        }
    }

    #[test]
    fn a_category_is_accepted_by_its_own_merchants_and_general_by_all(v in 0usize..5, m in 0usize..5) {
        let (voucher, merchant) = (CATEGORIES[v], CATEGORIES[m]);
        let c = claims(voucher, 140_500, 100);
        let till = Till { category: merchant, place: place(140_500) };
        let got = check_claims(&c, t0(), till, fen(100));
        let accepted = voucher == merchant || voucher == Category::General;
        prop_assert_eq!(got.is_ok(), accepted);
        if !accepted {
            prop_assert_eq!(got, Err(Decline::MerchantCategoryMismatch));
        }
    }

    #[test]
    fn validity_is_checked_before_everything_but_the_code(before in any::<bool>(), secs in 1i64..10_000_000) {
        let c = claims(Category::Lodging, 140_522, 1_000_000);
        let now = if before { t0() - Duration::seconds(secs) } else { t0() + Duration::days(7) + Duration::seconds(secs) };
        // Wrong category, wrong place and below the threshold too: validity wins.
        let got = check_claims(&c, now, catering_till(140_100), fen(1));
        prop_assert_eq!(got, Err(if before { Decline::VoucherNotYetValid } else { Decline::VoucherExpired }));
    }
}

#[test]
fn a_city_voucher_is_good_in_its_counties_and_a_county_voucher_only_there() {
    let city = claims(Category::Catering, 140_500, 100);
    assert!(check_claims(&city, t0(), catering_till(140_522), fen(100)).is_ok());
    assert!(check_claims(&city, t0(), catering_till(140_500), fen(100)).is_ok());
    assert_eq!(
        check_claims(&city, t0(), catering_till(140_100), fen(100)),
        Err(Decline::OutsideIssuingPlace)
    );
    let county = claims(Category::Catering, 140_522, 100);
    assert!(check_claims(&county, t0(), catering_till(140_522), fen(100)).is_ok());
    assert_eq!(
        check_claims(&county, t0(), catering_till(140_521), fen(100)),
        Err(Decline::OutsideIssuingPlace)
    );
    assert_eq!(
        check_claims(&county, t0(), catering_till(140_500), fen(100)),
        Err(Decline::OutsideIssuingPlace),
        "a merchant registered in the city, not the county"
    );
}

proptest! {
    /// A phone that holds only the code key (never the server secret) computes, offline,
    /// exactly the code the server would draw, for any step and any key epoch; the code
    /// carries its epoch, and a code made with another epoch's key is refused.
    #[test]
    fn codes_computed_from_the_code_key_are_the_server_s(offset in 0i64..7 * 86_400, epoch in 0u32..5) {
        use voucher_core::dynamic_code::mac_with_key;
        let w = world();
        let c = claims(Category::Catering, 140_500, 10_000);
        let token = token::sign(&w.key, &c);
        let now = t0() + Duration::seconds(offset);
        let key = w.codes.code_key(c.voucher_id, epoch);
        let step = now.timestamp().div_euclid(30);
        let mac = mac_with_key(&key, step);
        let offline = if epoch == 0 {
            format!("{}.{mac}", token.as_str())
        } else {
            format!("{}.{epoch}.{mac}", token.as_str())
        };
        prop_assert_eq!(&offline, &w.codes.code_at_epoch(&token, c.voucher_id, epoch, now).code);
        let verified = precheck(&w.codes, &w.verifier, &offline, now, catering_till(140_500), fen(10_000));
        prop_assert_eq!(verified.map(|v| v.epoch), Ok(epoch));
        // The same MAC presented as another epoch's code does not verify.
        let wrong = format!("{}.{}.{mac}", token.as_str(), epoch + 1);
        prop_assert_eq!(
            precheck(&w.codes, &w.verifier, &wrong, now, catering_till(140_500), fen(10_000)).map(|v| v.epoch),
            Err(Decline::CodeStale)
        );
        prop_assert_ne!(w.codes.code_key(c.voucher_id, epoch), w.codes.code_key(c.voucher_id, epoch + 1));
    }
}

#[test]
fn malformed_epochs_are_token_invalid() {
    let w = world();
    let c = claims(Category::Catering, 140_500, 10_000);
    let token = token::sign(&w.key, &c);
    let mac = "AAAAAAAAAAAAAA";
    for bad in ["0", "01", "-1", "x", "", "99999999999"] {
        let code = format!("{}.{bad}.{mac}", token.as_str());
        assert_eq!(
            precheck(
                &w.codes,
                &w.verifier,
                &code,
                t0(),
                catering_till(140_500),
                fen(10_000)
            )
            .map(|v| v.epoch),
            Err(Decline::TokenInvalid),
            "{bad:?}"
        );
    }
}
