//! Decimal figures without float arithmetic, both ways:
//!
//! - [`Fixed`]: an integer and a number of decimal places (per mille → 3, µs as ms → 1),
//!   written into the JSON report as a plain JSON number (`0.357`, `93.4`). The digits come
//!   from integer division; the text is only parsed back into a number so that the JSON
//!   carries a number, not a string — the per-mille or µs integer stays beside it.
//! - [`parse_scaled`]: the decimal text the external tools print (`tps = 5181.234`,
//!   `"6.559"` ms) read into an integer at a chosen scale (µs, whole units), truncating.

use serde::{Serialize, Serializer};

/// `scaled / 10^places`, written as a JSON number with at most `places` decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    scaled: u64,
    places: u32,
}

impl Fixed {
    /// A ratio from its per-mille integer: `357` → `0.357`.
    pub fn from_permille(permille: u64) -> Fixed {
        Fixed {
            scaled: permille,
            places: 3,
        }
    }

    /// Milliseconds with one decimal from microseconds (truncated, as [`crate::report::ms`]
    /// prints them): `93_456` µs → `93.4`.
    pub fn ms_from_us(us: u64) -> Fixed {
        Fixed {
            scaled: us / 100,
            places: 1,
        }
    }

    /// The decimal text, e.g. `0.357`, `93.4`, `12.000`.
    pub fn text(&self) -> String {
        let unit = 10u64.pow(self.places);
        let width = usize::try_from(self.places).unwrap_or(0);
        if width == 0 {
            return self.scaled.to_string();
        }
        format!(
            "{}.{:0width$}",
            self.scaled / unit,
            self.scaled % unit,
            width = width
        )
    }
}

impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Parsing the exact decimal text gives the double nearest to it, which serde_json
        // prints back as the same shortest text (trailing zeros aside).
        let value: f64 = self.text().parse().map_err(serde::ser::Error::custom)?;
        s.serialize_f64(value)
    }
}

/// The decimal `text` (digits, at most one `.`, nothing else) times `10^places`, truncated:
/// `parse_scaled("6.559", 3)` = 6559, `parse_scaled("5181.234", 0)` = 5181. `None` when the
/// text is not such a number or does not fit.
pub fn parse_scaled(text: &str, places: u32) -> Option<u64> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole
        .bytes()
        .chain(frac.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let width = usize::try_from(places).ok()?;
    let mut digits: String = frac.chars().take(width).collect();
    while digits.len() < width {
        digits.push('0');
    }
    let frac: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    whole
        .checked_mul(10u64.checked_pow(places)?)?
        .checked_add(frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_figures_print_their_integer_digits() {
        assert_eq!(Fixed::from_permille(357).text(), "0.357");
        assert_eq!(Fixed::from_permille(9_712).text(), "9.712");
        assert_eq!(Fixed::from_permille(5).text(), "0.005");
        assert_eq!(Fixed::ms_from_us(93_456).text(), "93.4");
        assert_eq!(Fixed::ms_from_us(999).text(), "0.9");
    }

    #[test]
    fn fixed_figures_are_json_numbers_with_the_same_digits() {
        let json = serde_json::to_string(&[
            Fixed::from_permille(357),
            Fixed::from_permille(9_712),
            Fixed::from_permille(1_000),
            Fixed::ms_from_us(22_200),
        ])
        .ok();
        assert_eq!(json.as_deref(), Some("[0.357,9.712,1.0,22.2]"));
    }

    #[test]
    fn decimal_text_is_read_at_a_scale_truncating() {
        assert_eq!(parse_scaled("6.559", 3), Some(6_559));
        assert_eq!(parse_scaled("6.5", 3), Some(6_500));
        assert_eq!(parse_scaled("5181.234983", 0), Some(5_181));
        assert_eq!(parse_scaled("48216.00", 0), Some(48_216));
        assert_eq!(parse_scaled(" 12 ", 3), Some(12_000));
        assert_eq!(parse_scaled(".5", 1), Some(5));
        assert_eq!(parse_scaled("-nan", 3), None);
        assert_eq!(parse_scaled("1e3", 0), None);
        assert_eq!(parse_scaled("", 0), None);
        assert_eq!(parse_scaled("1.2.3", 0), None);
    }
}
