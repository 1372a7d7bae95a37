//! Car trade-in subsidy (汽车以旧换新, seed 004 §二(一)): the pure rules of an application.
//!
//! > 2023年下半年,消费者通过省内已备案的二手车企,转出个人名下汽车并在省内购买新车,持相关
//! > 手续可享受每辆最高2000元补贴.2023年下半年,消费者在省内报废个人名下汽车并在省内购买
//! > 新车,持相关手续可享受每辆最高3000元补贴.
//!
//! - **The amount** ([`SchemeTerms::subsidy`]) is `min(cap of the kind, ⌊price × rate⌋ when
//!   the scheme sets a rate, price)`: the kind decides the cap (transfer 转出 up to 2,000 yuan,
//!   scrap 报废 up to 3,000 yuan in the seed, but both are the scheme's configuration, never
//!   constants), an optional rate of the new car's price can lower it, and the subsidy is
//!   never more than the car cost. Integer fen, rounded down (in the payer's favour).
//! - **The window** ([`SchemeWindow`]): whole Beijing days (UTC+8 all year, no daylight
//!   saving), both ends included; the seed's is 2023-07-01..=2023-12-31.
//! - **The papers** (持相关手续) are parsed here so that a value that exists is valid:
//!   the vehicle identification number ([`Vin`], ISO 3779 / GB 16735 with its check digit),
//!   the number plate ([`Plate`], ordinary or new-energy), the invoice number
//!   ([`InvoiceNo`]); [`registration_place`] reads the place a business is registered in
//!   from its credit code ("in the province" is checked with it).
//!
//! No I/O: the service (`issuance::trade_in`) stores applications and decides reviews.

use crate::credit_code::CreditCode;
use crate::money::{BasisPoints, Fen};
use crate::place::PlaceCode;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The kind of trade-in, which decides the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeInKind {
    /// 转出: the resident's own car sold through a registered used-car dealer in the province.
    Transfer,
    /// 报废: the resident's own car scrapped in the province.
    Scrap,
}

impl TradeInKind {
    /// Both kinds.
    pub const ALL: [TradeInKind; 2] = [TradeInKind::Transfer, TradeInKind::Scrap];

    /// `transfer` or `scrap`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TradeInKind::Transfer => "transfer",
            TradeInKind::Scrap => "scrap",
        }
    }

    /// The Chinese term, for messages.
    pub const fn name_zh(self) -> &'static str {
        match self {
            TradeInKind::Transfer => "转出",
            TradeInKind::Scrap => "报废",
        }
    }
}

impl std::str::FromStr for TradeInKind {
    type Err = String;
    fn from_str(s: &str) -> Result<TradeInKind, String> {
        match s {
            "transfer" => Ok(TradeInKind::Transfer),
            "scrap" => Ok(TradeInKind::Scrap),
            other => Err(format!("unknown trade-in kind {other:?}")),
        }
    }
}

// ---------------------------------------------------------------- the amount

/// The money terms of a scheme: a cap per kind and an optional rate of the new car's price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeTerms {
    /// The most a transfer (转出) gets, e.g. 200,000 fen = 2,000 yuan.
    pub transfer_cap: Fen,
    /// The most a scrap (报废) gets, e.g. 300,000 fen = 3,000 yuan.
    pub scrap_cap: Fen,
    /// When set, the subsidy is also at most this share of the new car's price.
    pub price_rate: Option<BasisPoints>,
}

/// Terms that cannot make a scheme.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTerms {
    /// A cap of zero (or above the largest accepted) would grant nothing (or anything).
    #[error("{field} must be between 1 and {max} fen")]
    Cap {
        /// The field.
        field: &'static str,
        /// The largest accepted.
        max: i64,
    },
    /// A rate of 0 grants nothing.
    #[error("price_rate_bp must be between 1 and 10000 when set")]
    ZeroRate,
}

/// The largest cap a scheme may set: 1,000,000 yuan (a bound against typing errors).
pub const MAX_CAP_FEN: i64 = 100_000_000;

/// The most a new car may cost in an application: 100 million yuan.
pub const MAX_PRICE_FEN: i64 = 10_000_000_000;

impl SchemeTerms {
    /// Checks the terms.
    ///
    /// # Errors
    /// [`InvalidTerms`].
    pub fn validate(&self) -> Result<(), InvalidTerms> {
        for (field, cap) in [
            ("transfer_cap_fen", self.transfer_cap),
            ("scrap_cap_fen", self.scrap_cap),
        ] {
            if cap == Fen::ZERO || cap.as_i64() > MAX_CAP_FEN {
                return Err(InvalidTerms::Cap {
                    field,
                    max: MAX_CAP_FEN,
                });
            }
        }
        if self.price_rate.is_some_and(|bp| bp.get() == 0) {
            return Err(InvalidTerms::ZeroRate);
        }
        Ok(())
    }

    /// The cap of `kind`.
    pub const fn cap(&self, kind: TradeInKind) -> Fen {
        match kind {
            TradeInKind::Transfer => self.transfer_cap,
            TradeInKind::Scrap => self.scrap_cap,
        }
    }

    /// The subsidy for a trade-in of `kind` with a new car costing `price`:
    /// `min(cap(kind), ⌊price × rate⌋ if a rate is set, price)`.
    pub fn subsidy(&self, kind: TradeInKind, price: Fen) -> Fen {
        let cap = self.cap(kind);
        let by_rate = self.price_rate.map_or(cap, |bp| price.mul_bp_floor(bp));
        cap.min(by_rate).min(price)
    }
}

// ---------------------------------------------------------------- the window

/// The days a scheme accepts applications: whole Beijing days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemeWindow {
    opens_on: NaiveDate,
    closes_on: NaiveDate,
}

/// A window whose end is before its start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("closes_on ({closes_on}) is before opens_on ({opens_on})")]
pub struct InvalidWindow {
    /// First day.
    pub opens_on: NaiveDate,
    /// Last day.
    pub closes_on: NaiveDate,
}

impl SchemeWindow {
    /// `opens_on..=closes_on`.
    ///
    /// # Errors
    /// [`InvalidWindow`] when `closes_on < opens_on`.
    pub fn new(opens_on: NaiveDate, closes_on: NaiveDate) -> Result<SchemeWindow, InvalidWindow> {
        if closes_on < opens_on {
            return Err(InvalidWindow {
                opens_on,
                closes_on,
            });
        }
        Ok(SchemeWindow {
            opens_on,
            closes_on,
        })
    }

    /// The first day.
    pub const fn opens_on(&self) -> NaiveDate {
        self.opens_on
    }

    /// The last day.
    pub const fn closes_on(&self) -> NaiveDate {
        self.closes_on
    }

    /// Whether `day` lies in the window.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.opens_on <= day && day <= self.closes_on
    }
}

/// The Beijing day (UTC+8, no daylight saving) of an instant.
pub fn beijing_day(at: DateTime<Utc>) -> NaiveDate {
    (at + Duration::hours(8)).date_naive()
}

// ---------------------------------------------------------------- the papers

/// The characters of a VIN (ISO 3779): digits and capital letters without I, O and Q.
fn vin_value(b: u8) -> Option<u32> {
    // Transliteration of ISO 3779 / 49 CFR 565.15 (GB 16735 uses the same): letters map to
    // 1-9 in runs, skipping I, O and Q.
    let v = match b {
        b'0'..=b'9' => u32::from(b - b'0'),
        b'A' | b'J' => 1,
        b'B' | b'K' | b'S' => 2,
        b'C' | b'L' | b'T' => 3,
        b'D' | b'M' | b'U' => 4,
        b'E' | b'N' | b'V' => 5,
        b'F' | b'W' => 6,
        b'G' | b'P' | b'X' => 7,
        b'H' | b'Y' => 8,
        b'R' | b'Z' => 9,
        _ => return None,
    };
    Some(v)
}

/// The weight of each position of a VIN in its check digit (the 9th position weighs 0).
const VIN_WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// A vehicle identification number (车辆识别代号): 17 characters of ISO 3779's alphabet
/// (no I, O, Q), upper case, whose 9th character is the check digit of GB 16735 (the
/// weighted sum of the transliterated characters modulo 11, `X` for 10).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Vin(String);

/// Why a VIN was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidVin {
    /// Not 17 characters.
    #[error("a VIN has 17 characters (got {0})")]
    Length(usize),
    /// A character outside the alphabet (I, O and Q are never used).
    #[error("a VIN may only contain 0-9 and A-Z except I, O and Q (found {0:?})")]
    Character(char),
    /// The 9th character is not the check digit of the others.
    #[error("the check digit (the 9th character) does not match: expected {expected}")]
    CheckDigit {
        /// What it should be.
        expected: char,
    },
}

impl Vin {
    /// The check digit of a 17-character VIN (its own 9th character is ignored), or `None`
    /// when it is not 17 characters of the alphabet.
    pub fn check_digit(vin: &str) -> Option<char> {
        if vin.len() != 17 {
            return None;
        }
        let mut sum = 0u32;
        for (b, w) in vin.bytes().zip(VIN_WEIGHTS) {
            sum += vin_value(b)? * w;
        }
        match sum % 11 {
            10 => Some('X'),
            d => char::from_digit(d, 10),
        }
    }

    /// Parses a VIN (trimmed and upper-cased first).
    ///
    /// # Errors
    /// [`InvalidVin`].
    pub fn parse(text: &str) -> Result<Vin, InvalidVin> {
        let vin = text.trim().to_ascii_uppercase();
        let chars = vin.chars().count();
        if chars != 17 {
            return Err(InvalidVin::Length(chars));
        }
        if let Some(bad) = vin.bytes().find(|b| vin_value(*b).is_none()) {
            return Err(InvalidVin::Character(char::from(bad)));
        }
        let expected = Vin::check_digit(&vin).ok_or(InvalidVin::Length(chars))?;
        if vin.as_bytes().get(8).copied() != u8::try_from(expected).ok() {
            return Err(InvalidVin::CheckDigit { expected });
        }
        Ok(Vin(vin))
    }

    /// The VIN.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Vin {
    type Error = InvalidVin;
    fn try_from(s: String) -> Result<Vin, InvalidVin> {
        Vin::parse(&s)
    }
}

impl From<Vin> for String {
    fn from(v: Vin) -> String {
        v.0
    }
}

impl fmt::Display for Vin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The one-character abbreviations of the provinces that begin a plate (晋 is Shanxi).
const PLATE_PROVINCES: &str = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼";

/// A letter of a plate (no I and O, which read as 1 and 0).
fn plate_letter(c: char) -> bool {
    c.is_ascii_uppercase() && c != 'I' && c != 'O'
}

/// A letter or digit of a plate's serial.
fn plate_alnum(c: char) -> bool {
    c.is_ascii_digit() || plate_letter(c)
}

/// The letters that mark a small new-energy car's plate (D pure electric, F other, and the
/// letters added when those ran out).
const NEV_SMALL: &str = "DFABCEGHJK";

/// A Chinese number plate (号牌号码) of a private car: the province's character, the issuing
/// office's letter, then five characters (ordinary blue plate, e.g. `晋E12345`) or six for a
/// new-energy green plate (`晋ED12345` small, `晋E12345D` large). A `·` or spaces after
/// the office letter are dropped; letters are upper-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Plate(String);

/// A plate that is not of either format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a plate is a province character, an office letter and 5 characters (e.g. 晋E12345), or 6 for a new-energy car (晋ED12345, 晋E12345D)")]
pub struct InvalidPlate;

impl Plate {
    /// Parses a plate.
    ///
    /// # Errors
    /// [`InvalidPlate`].
    pub fn parse(text: &str) -> Result<Plate, InvalidPlate> {
        let plate: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '·' && *c != '•')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let chars: Vec<char> = plate.chars().collect();
        let (Some(province), Some(office)) = (chars.first(), chars.get(1)) else {
            return Err(InvalidPlate);
        };
        if !PLATE_PROVINCES.contains(*province) || !plate_letter(*office) {
            return Err(InvalidPlate);
        }
        let serial = chars.get(2..).unwrap_or_default();
        let ok = match serial {
            // Ordinary: five letters or digits.
            [_, _, _, _, _] => serial.iter().all(|c| plate_alnum(*c)),
            // New energy, small: D/F (…) + a letter or digit + four digits.
            [first, second, rest @ ..] if NEV_SMALL.contains(*first) && rest.len() == 4 => {
                plate_alnum(*second) && rest.iter().all(char::is_ascii_digit)
            }
            // New energy, large: five digits + D/F.
            [digits @ .., last] if digits.len() == 5 && (*last == 'D' || *last == 'F') => {
                digits.iter().all(char::is_ascii_digit)
            }
            _ => false,
        };
        if ok {
            Ok(Plate(plate))
        } else {
            Err(InvalidPlate)
        }
    }

    /// The plate.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Plate {
    type Error = InvalidPlate;
    fn try_from(s: String) -> Result<Plate, InvalidPlate> {
        Plate::parse(&s)
    }
}

impl From<Plate> for String {
    fn from(p: Plate) -> String {
        p.0
    }
}

/// An invoice number (发票号码): 8–32 digits or capital letters, upper-cased. A fully
/// digital invoice (数电发票) has a 20-digit number; an older motor-vehicle sales invoice
/// (机动车销售统一发票) is written as its 12-digit code followed by its 8-digit number.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InvoiceNo(String);

/// An invoice number that is not 8–32 digits or letters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an invoice number is 8-32 digits or letters (the invoice code and number run together for an older invoice)")]
pub struct InvalidInvoiceNo;

impl InvoiceNo {
    /// Parses an invoice number.
    ///
    /// # Errors
    /// [`InvalidInvoiceNo`].
    pub fn parse(text: &str) -> Result<InvoiceNo, InvalidInvoiceNo> {
        let no = text.trim().to_ascii_uppercase();
        if (8..=32).contains(&no.len())
            && no
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
        {
            Ok(InvoiceNo(no))
        } else {
            Err(InvalidInvoiceNo)
        }
    }

    /// The number.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for InvoiceNo {
    type Error = InvalidInvoiceNo;
    fn try_from(s: String) -> Result<InvoiceNo, InvalidInvoiceNo> {
        InvoiceNo::parse(&s)
    }
}

impl From<InvoiceNo> for String {
    fn from(n: InvoiceNo) -> String {
        n.0
    }
}

/// The place a business is registered in: characters 3–8 of its unified social credit code
/// are the registering authority's division code (登记管理机关行政区划码, GB 32100-2015).
/// `None` when they are not a place code.
pub fn registration_place(code: &CreditCode) -> Option<PlaceCode> {
    code.as_str()
        .get(2..8)
        .and_then(|p| PlaceCode::parse(p).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fen(v: i64) -> Fen {
        Fen::try_from(v).unwrap()
    }

    /// The seed's terms: up to 2,000 yuan for a transfer, 3,000 yuan for a scrap, no rate.
    fn seed_terms() -> SchemeTerms {
        SchemeTerms {
            transfer_cap: Fen::from_yuan(2_000).unwrap(),
            scrap_cap: Fen::from_yuan(3_000).unwrap(),
            price_rate: None,
        }
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// A valid VIN from 16 characters (the check digit is put in 9th place).
    fn vin_from(sixteen: &str) -> String {
        let mut v = format!("{}0{}", &sixteen[..8], &sixteen[8..]);
        let check = Vin::check_digit(&v).unwrap();
        v.replace_range(8..9, &check.to_string());
        v
    }

    #[test]
    fn a_transfer_gets_2000_yuan_and_a_scrap_3000_yuan() {
        // 004 §二(一): 转出 … 每辆最高2000元; 报废 … 每辆最高3000元. A new car of
        // 150,000 yuan.
        let price = Fen::from_yuan(150_000).unwrap();
        let terms = seed_terms();
        assert_eq!(terms.subsidy(TradeInKind::Transfer, price), fen(200_000));
        assert_eq!(terms.subsidy(TradeInKind::Scrap, price), fen(300_000));
        assert_eq!(
            terms.subsidy(TradeInKind::Scrap, price).to_string(),
            "3000.00"
        );
    }

    #[test]
    fn a_cheaper_car_or_a_rate_lowers_the_subsidy() {
        let terms = seed_terms();
        // A (hypothetical) 1,500-yuan car: the subsidy is never more than the price.
        assert_eq!(
            terms.subsidy(TradeInKind::Scrap, fen(150_000)),
            fen(150_000)
        );
        // With a rate of 1% of the price, a 150,000-yuan car gets 1,500 yuan, not 2,000.
        let with_rate = SchemeTerms {
            price_rate: Some(BasisPoints::try_from(100).unwrap()),
            ..terms
        };
        assert_eq!(
            with_rate.subsidy(TradeInKind::Transfer, fen(15_000_000)),
            fen(150_000)
        );
        // … and a 500,000-yuan car is capped at 2,000 / 3,000 yuan again.
        assert_eq!(
            with_rate.subsidy(TradeInKind::Transfer, fen(50_000_000)),
            fen(200_000)
        );
        assert_eq!(
            with_rate.subsidy(TradeInKind::Scrap, fen(50_000_000)),
            fen(300_000)
        );
        // ⌊12,345.67 × 1%⌋ = 123.45 yuan: rounded down to the fen.
        assert_eq!(
            with_rate.subsidy(TradeInKind::Scrap, fen(1_234_567)),
            fen(12_345)
        );
    }

    #[test]
    fn terms_are_validated() {
        assert_eq!(seed_terms().validate(), Ok(()));
        let zero = SchemeTerms {
            transfer_cap: Fen::ZERO,
            ..seed_terms()
        };
        assert!(matches!(
            zero.validate(),
            Err(InvalidTerms::Cap {
                field: "transfer_cap_fen",
                ..
            })
        ));
        let huge = SchemeTerms {
            scrap_cap: fen(MAX_CAP_FEN + 1),
            ..seed_terms()
        };
        assert!(huge.validate().is_err());
        let zero_rate = SchemeTerms {
            price_rate: Some(BasisPoints::try_from(0).unwrap()),
            ..seed_terms()
        };
        assert_eq!(zero_rate.validate(), Err(InvalidTerms::ZeroRate));
    }

    #[test]
    fn the_window_is_the_second_half_of_2023_in_beijing_days() {
        let window = SchemeWindow::new(day(2023, 7, 1), day(2023, 12, 31)).unwrap();
        assert!(!window.contains(day(2023, 6, 30)));
        assert!(window.contains(day(2023, 7, 1)));
        assert!(window.contains(day(2023, 12, 31)));
        assert!(!window.contains(day(2024, 1, 1)));
        // 2023-06-30 16:00 UTC is already 2023-07-01 00:00 in Beijing.
        let at = DateTime::parse_from_rfc3339("2023-06-30T16:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(beijing_day(at), day(2023, 7, 1));
        assert_eq!(beijing_day(at - Duration::seconds(1)), day(2023, 6, 30));
        assert!(SchemeWindow::new(day(2023, 12, 31), day(2023, 7, 1)).is_err());
        assert!(SchemeWindow::new(day(2023, 7, 1), day(2023, 7, 1)).is_ok());
    }

    #[test]
    fn vins_carry_a_check_digit() {
        // The textbook example of 49 CFR 565 (check digit X).
        assert_eq!(
            Vin::parse("1M8GDM9AXKP042788").unwrap().as_str(),
            "1M8GDM9AXKP042788"
        );
        assert_eq!(
            Vin::parse(" 1m8gdm9axkp042788 ").unwrap().as_str(),
            "1M8GDM9AXKP042788"
        );
        assert_eq!(
            Vin::parse("1M8GDM9A1KP042788"),
            Err(InvalidVin::CheckDigit { expected: 'X' })
        );
        assert_eq!(
            Vin::parse("11111111111111111").unwrap().as_str(),
            "11111111111111111"
        );
        assert_eq!(Vin::parse("1M8GDM9AXKP04278"), Err(InvalidVin::Length(16)));
        assert_eq!(
            Vin::parse("1M8GDM9AXKP04278O"),
            Err(InvalidVin::Character('O'))
        );
        assert!(matches!(
            Vin::parse("LSVAU2180N218329Q"),
            Err(InvalidVin::Character('Q'))
        ));
        assert!(Vin::parse("晋E12345晋E12345晋").is_err());
        let made = vin_from("LSGKB54H0KS10001");
        assert!(Vin::parse(&made).is_ok(), "{made}");
    }

    #[test]
    fn plates_are_ordinary_or_new_energy() {
        for ok in [
            "晋E12345",
            "晋E·12345",
            "晋e 1234a",
            "晋ED12345",
            "晋EFA1234",
            "晋E12345D",
            "京AA0001",
        ] {
            assert!(Plate::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(Plate::parse("晋E·1234a").unwrap().as_str(), "晋E1234A");
        for bad in [
            "",
            "晋",
            "晋E1234",
            "晋E123456",
            "晋I12345",
            "晋E1234O",
            "X E12345",
            "AE12345",
            "晋ED1234A",
            "晋E12345X",
            "晋E1234567",
            "晋E12345学",
        ] {
            assert!(Plate::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invoice_numbers_are_8_to_32_digits_or_letters() {
        assert_eq!(
            InvoiceNo::parse(" 23142000000012345678 ").unwrap().as_str(),
            "23142000000012345678"
        );
        assert!(InvoiceNo::parse("1234567").is_err());
        assert!(InvoiceNo::parse("1234-5678").is_err());
        assert!(InvoiceNo::parse(&"1".repeat(33)).is_err());
    }

    #[test]
    fn a_credit_code_names_the_place_of_registration() {
        let head = "91140500MA0K12345";
        let code =
            CreditCode::parse(&format!("{head}{}", CreditCode::check_char(head).unwrap())).unwrap();
        assert_eq!(registration_place(&code).map(PlaceCode::get), Some(140_500));
    }

    #[test]
    fn kinds_have_stable_names() {
        for kind in TradeInKind::ALL {
            assert_eq!(kind.as_str().parse::<TradeInKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::from(kind.as_str())
            );
        }
    }

    fn kind() -> impl Strategy<Value = TradeInKind> {
        prop_oneof![Just(TradeInKind::Transfer), Just(TradeInKind::Scrap)]
    }

    fn terms() -> impl Strategy<Value = SchemeTerms> {
        (
            1..=MAX_CAP_FEN,
            1..=MAX_CAP_FEN,
            proptest::option::of(1u32..=10_000),
        )
            .prop_map(|(t, s, bp)| SchemeTerms {
                transfer_cap: fen(t),
                scrap_cap: fen(s),
                price_rate: bp.map(|bp| BasisPoints::try_from(bp).unwrap()),
            })
    }

    proptest! {
        #[test]
        fn the_subsidy_is_never_above_the_cap_of_its_kind_nor_the_price(
            terms in terms(), kind in kind(), price in 0..=MAX_PRICE_FEN,
        ) {
            let price = fen(price);
            let s = terms.subsidy(kind, price);
            prop_assert!(s <= terms.cap(kind));
            prop_assert!(s <= price);
            if let Some(bp) = terms.price_rate {
                prop_assert!(s <= price.mul_bp_floor(bp));
                // Exactly the smallest of the three limits, in whole fen.
                prop_assert_eq!(s, terms.cap(kind).min(price.mul_bp_floor(bp)).min(price));
                // ⌊price × bp / 10000⌋ in integers: s × 10000 ≤ price × bp < (s + 1) × 10000
                // whenever the rate is the binding limit.
                if s < terms.cap(kind) {
                    let lhs = i128::from(s.as_i64()) * 10_000;
                    let rhs = i128::from(price.as_i64()) * i128::from(bp.get());
                    prop_assert!(lhs <= rhs && rhs < lhs + 10_000);
                }
            } else {
                prop_assert_eq!(s, terms.cap(kind).min(price));
            }
        }

        #[test]
        fn the_kind_decides_the_cap(
            terms in terms(), price in 0..=MAX_PRICE_FEN,
        ) {
            // Without a rate and with a car dearer than both caps, each kind gets its cap.
            let no_rate = SchemeTerms { price_rate: None, ..terms };
            let dear = fen(price.max(MAX_CAP_FEN));
            prop_assert_eq!(no_rate.subsidy(TradeInKind::Transfer, dear), terms.transfer_cap);
            prop_assert_eq!(no_rate.subsidy(TradeInKind::Scrap, dear), terms.scrap_cap);
            // Swapping the caps swaps the subsidies.
            let swapped = SchemeTerms {
                transfer_cap: terms.scrap_cap,
                scrap_cap: terms.transfer_cap,
                ..terms
            };
            let p = fen(price);
            prop_assert_eq!(
                swapped.subsidy(TradeInKind::Transfer, p),
                terms.subsidy(TradeInKind::Scrap, p)
            );
        }

        #[test]
        fn a_dearer_car_never_gets_less(
            terms in terms(), kind in kind(), a in 0..=MAX_PRICE_FEN, b in 0..=MAX_PRICE_FEN,
        ) {
            let (lo, hi) = (a.min(b), a.max(b));
            prop_assert!(terms.subsidy(kind, fen(lo)) <= terms.subsidy(kind, fen(hi)));
        }

        #[test]
        fn a_single_mistyped_character_of_a_vin_is_caught(
            sixteen in "[A-HJ-NPR-Z0-9]{16}", pos in 0usize..17, with in "[A-HJ-NPR-Z0-9]",
        ) {
            let vin = vin_from(&sixteen);
            prop_assert!(Vin::parse(&vin).is_ok());
            let mut changed = vin.clone();
            changed.replace_range(pos..=pos, &with);
            let value = |s: &str| s.as_bytes().get(pos).and_then(|b| vin_value(*b));
            // Weights are 2..=10 and 11 is prime, so a different value anywhere (or another
            // check digit) changes the sum modulo 11; letters of equal value (A and J are
            // both 1) cannot be told apart by any check digit.
            let caught = if pos == 8 { changed != vin } else { value(&changed) != value(&vin) };
            prop_assert_eq!(Vin::parse(&changed).is_err(), caught, "{} -> {}", vin, changed);
        }
    }
}
