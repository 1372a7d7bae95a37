//! Fuzz targets for the code that reads hostile input: the voucher token, the dynamic code,
//! the identity token, the terminal request signature, the bulk-issuance CSV and the JSON
//! bodies of the administrators' API.
//!
//! Each target takes arbitrary bytes and must neither panic nor accept a forged value. The
//! oracles:
//! - **token**, **code**, **identity**: whatever is accepted must carry claims that were
//!   really signed (the seeds' claims, made here with fixed test keys); anything else
//!   accepted is a forgery and aborts the run;
//! - **signature**: an accepted signature must be the HMAC of the request's canonical
//!   string under the terminal's secret (recomputed here independently);
//! - **csv**: every row parsed has a valid person id and the count never exceeds the limit;
//! - **json**: a body that deserialises and validates serialises back to a body that
//!   deserialises to the same value.
//!
//! The same functions run under AFL++ (`src/bin/*.rs`, built by `deploy/local/fuzz.sh` with
//! cargo-afl on the stable toolchain) and over the committed corpora in `tests/replay.rs`,
//! which the test command runs. The keys here are test fixtures derived from fixed labels:
//! they protect nothing.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::OnceLock;
use voucher_core::dynamic_code::DynamicCodes;
use voucher_core::identity::{self, Identity};
use voucher_core::keys::{SigningKey, SigningKeyFile, Verifier};
use voucher_core::token::{self, VoucherClaims};
use voucher_core::{
    BasisPoints, CampaignId, Category, Fen, NewCampaign, PersonId, PlaceCode, ProgramId, Rule,
    VoucherId,
};

/// The targets, by name (the names of `src/bin/*.rs` without `fuzz-`, and of the corpus
/// directories).
pub const TARGETS: [&str; 6] = ["token", "code", "identity", "signature", "csv", "json"];

/// The instant every verification is made at.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 2, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A fixed Ed25519 key made from a label (PKCS#8 v1 around SHA-256 of the label).
fn fixed_key(kid: u32, label: &str) -> SigningKey {
    let seed = ring::digest::digest(&ring::digest::SHA256, label.as_bytes());
    let mut doc = hex_bytes("302e020100300506032b657004220420");
    doc.extend_from_slice(seed.as_ref());
    let file = SigningKeyFile {
        kid,
        pkcs8: STANDARD.encode(doc),
    };
    match SigningKey::from_file(&file) {
        Ok(k) => k,
        Err(e) => panic!("fixture key: {e}"),
    }
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

struct Fixtures {
    voucher_key: SigningKey,
    vouchers: Verifier,
    idp_key: SigningKey,
    idp: Verifier,
    codes: DynamicCodes,
    claims: Vec<VoucherClaims>,
    people: Vec<Identity>,
}

fn fixtures() -> &'static Fixtures {
    static F: OnceLock<Fixtures> = OnceLock::new();
    F.get_or_init(|| {
        let voucher_key = fixed_key(7, "vp-fuzz voucher key");
        let idp_key = fixed_key(3, "vp-fuzz identity key");
        let vouchers = Verifier::new([voucher_key.public_key()]).unwrap_or_else(|e| panic!("{e}"));
        let idp = Verifier::new([idp_key.public_key()]).unwrap_or_else(|e| panic!("{e}"));
        let codes = DynamicCodes::new(b"vp-fuzz dynamic-code secret, 32b", 30)
            .unwrap_or_else(|e| panic!("{e}"));
        Fixtures {
            claims: seed_claims(),
            people: seed_people(),
            voucher_key,
            vouchers,
            idp_key,
            idp,
            codes,
        }
    })
}

fn fen(v: i64) -> Fen {
    Fen::try_from(v).unwrap_or(Fen::ZERO)
}

fn seed_claims() -> Vec<VoucherClaims> {
    let place = PlaceCode::try_from(140_500).unwrap_or_else(|e| panic!("{e}"));
    let rules = [
        Rule::Threshold {
            min_spend: fen(10_000),
            off: fen(2_000),
        },
        Rule::Percent {
            rate_bp: BasisPoints::try_from(1000).unwrap_or_else(|e| panic!("{e}")),
            per_person_cap: fen(200_000),
        },
        Rule::AnnualCard {
            subsidy: fen(1_000),
        },
    ];
    rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| {
            let n = u64::try_from(i).unwrap_or(0);
            VoucherClaims {
                voucher_id: VoucherId(uuid::Uuid::from_u128(0x1000 + u128::from(n))),
                campaign_id: CampaignId(i64::try_from(n).unwrap_or(0) + 1),
                program_id: ProgramId(1),
                person_id: PersonId::parse(&format!("R{n:06}")).unwrap_or_else(|e| panic!("{e}")),
                place,
                category: Category::Catering,
                rule,
                valid_from: now() - chrono::Duration::days(1),
                valid_until: now() + chrono::Duration::days(6),
            }
        })
        .collect()
}

fn seed_people() -> Vec<Identity> {
    (0..3)
        .map(|n| Identity {
            person_id: PersonId::parse(&format!("R{n:06}")).unwrap_or_else(|e| panic!("{e}")),
            home: PlaceCode::try_from(140_500).unwrap_or_else(|e| panic!("{e}")),
            real_name_level: 2,
            expires_at: now() + chrono::Duration::hours(1),
        })
        .collect()
}

/// The terminal secret of the signature target.
const TERMINAL_SECRET: &str = "5f1e0c9a8b7d6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e";

/// The seed inputs of every target: valid values and a few near misses.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let f = fixtures();
    let mut out = Vec::new();
    for (i, c) in f.claims.iter().enumerate() {
        let t = token::sign(&f.voucher_key, c);
        out.push((
            "token",
            format!("valid-{i}"),
            t.as_str().as_bytes().to_vec(),
        ));
        let code = f.codes.code(&t, c.voucher_id, now());
        out.push(("code", format!("valid-{i}"), code.code.into_bytes()));
    }
    for (i, p) in f.people.iter().enumerate() {
        let tok = identity::mint(&f.idp_key, p, now() - chrono::Duration::minutes(5));
        out.push(("identity", format!("valid-{i}"), tok.into_bytes()));
    }
    let body = br#"{"code":"x","order_amount_fen":12000,"order_ref":"o-1"}"#;
    let ts = now().timestamp();
    let sig = voucher_core::signing::sign(
        TERMINAL_SECRET,
        "POST",
        "/v1/redemptions",
        ts,
        "nonce-0001",
        body,
    )
    .unwrap_or_default();
    let mut req = format!("POST\n/v1/redemptions\n{ts}\nnonce-0001\n{sig}\n").into_bytes();
    req.extend_from_slice(body);
    out.push(("signature", "valid".to_owned(), req));
    out.push((
        "csv",
        "list".to_owned(),
        "\u{feff}person_id,name\nE000001,职工1\nE000002,职工2\n\nnot valid!,x\n"
            .as_bytes()
            .to_vec(),
    ));
    out.push((
        "json",
        "campaign".to_owned(),
        br#"{"program_id":1,"name":"fuzz","owner_place":140500,"category":"catering",
"rule":{"type":"threshold","min_spend":10000,"off":2000},"stock":100,"per_person_limit":1,
"rounds":[{"round_no":1,"starts_at":"2026-06-01T02:00:00Z","quantity":100}],
"validity":{"days_after_claim":7},"budget":200000,"eligibility":{"places":[140500],"min_real_name_level":2},
"distribution":"claim"}"#
            .to_vec(),
    ));
    out
}

/// The voucher token verifier: accepts only the seeds' claims.
pub fn token(data: &[u8]) {
    let f = fixtures();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(claims) = token::verify(&f.vouchers, text, now()) {
        assert!(
            f.claims.contains(&claims),
            "a forged voucher token was accepted: {text}"
        );
    }
}

/// The dynamic code verifier: accepts only the seeds' claims, at the fixed instant.
pub fn code(data: &[u8]) {
    let f = fixtures();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = f.codes.verify_epoch(text, &f.vouchers, now()) {
        assert!(
            f.claims.contains(&v.claims),
            "a forged dynamic code was accepted: {text}"
        );
    }
}

/// The identity token verifier: accepts only the seeds' identities.
pub fn identity(data: &[u8]) {
    let f = fixtures();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(who) = identity::verify(&f.idp, text, now()) {
        assert!(
            f.people.contains(&who),
            "a forged identity token was accepted: {text}"
        );
    }
}

/// The request signature: `method\npath\ntimestamp\nnonce\nsignature\nbody`.
pub fn signature(data: &[u8]) {
    let mut parts = data.splitn(6, |b| *b == b'\n');
    let (Some(m), Some(p), Some(t), Some(n), Some(s)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return;
    };
    let body = parts.next().unwrap_or_default();
    let (Ok(method), Ok(path), Ok(ts), Ok(nonce), Ok(sig)) = (
        std::str::from_utf8(m),
        std::str::from_utf8(p),
        std::str::from_utf8(t).map(|t| t.parse::<i64>()),
        std::str::from_utf8(n),
        std::str::from_utf8(s),
    ) else {
        return;
    };
    let Ok(ts) = ts else { return };
    if voucher_core::signing::verify_signature(TERMINAL_SECRET, method, path, ts, nonce, body, sig)
    {
        // Independently: HMAC-SHA256 over the canonical string, compared as bytes.
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &hex_bytes(TERMINAL_SECRET));
        let canonical = voucher_core::signing::canonical_string(method, path, ts, nonce, body);
        let tag = ring::hmac::sign(&key, canonical.as_bytes());
        assert_eq!(
            hex_bytes(&sig.trim().to_ascii_lowercase()),
            tag.as_ref(),
            "a signature that is not the request's HMAC was accepted"
        );
    }
}

/// The bulk-issuance CSV parser.
pub fn csv(data: &[u8]) {
    const MAX: usize = 50;
    if let Ok(rows) = issuance::bulk::parse_csv(data, MAX) {
        assert!(
            rows.len() <= MAX + 1,
            "more rows than the limit: {}",
            rows.len()
        );
    }
}

/// The administrators' campaign body: deserialise, validate, and round-trip what passes.
pub fn json(data: &[u8]) {
    let Ok(spec) = serde_json::from_slice::<NewCampaign>(data) else {
        let _ = serde_json::from_slice::<Rule>(data);
        return;
    };
    if spec.validate().is_ok() {
        let again = serde_json::to_vec(&spec).unwrap_or_default();
        let back: Result<NewCampaign, _> = serde_json::from_slice(&again);
        assert!(
            back.as_ref().is_ok_and(|b| *b == spec),
            "a valid campaign does not survive its own serialisation: {back:?}"
        );
    }
}

/// Runs `target` on `data`.
///
/// # Panics
/// On an unknown target, and whenever the target finds a defect.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "token" => token(data),
        "code" => code(data),
        "identity" => identity(data),
        "signature" => signature(data),
        "csv" => csv(data),
        "json" => json(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

/// Base64url of `data` (names of corpus files found by the fuzzer are kept as AFL names).
pub fn b64(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}
