//! 统一社会信用代码 (the unified social credit code of a business, GB 32100-2015): 18
//! characters of `0-9 A-H J-N P-R T-U W-Y` whose last one is a check character computed
//! from the first 17. Merchants register with it; the load generator makes valid ones.

use serde::Serialize;

/// A parsed credit code (upper case, check character verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct CreditCode(String);

const CREDIT_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

impl CreditCode {
    /// The check character for the first 17 characters, if they are all allowed.
    pub fn check_char(first17: &str) -> Option<char> {
        if first17.len() != 17 {
            return None;
        }
        let mut sum = 0u32;
        for (b, w) in first17.bytes().zip(CREDIT_WEIGHTS) {
            let value = CREDIT_CHARS.iter().position(|c| *c == b)?;
            sum += u32::try_from(value).ok()? * w;
        }
        let check = (31 - sum % 31) % 31;
        CREDIT_CHARS
            .get(usize::try_from(check).ok()?)
            .map(|b| char::from(*b))
    }

    /// Parses a code (upper-cased first).
    ///
    /// # Errors
    /// A message saying why.
    pub fn parse(text: &str) -> Result<CreditCode, &'static str> {
        let code = text.trim().to_ascii_uppercase();
        if code.len() != 18 {
            return Err("must be 18 characters");
        }
        let (head, last) = code.split_at(17);
        match CreditCode::check_char(head) {
            None => Err("may only contain 0-9 and A-Z except I, O, S, V, Z"),
            Some(c) if last.starts_with(c) => Ok(CreditCode(code)),
            Some(_) => Err("the check character (the 18th) does not match"),
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::CreditCode;

    #[test]
    fn credit_codes_carry_a_check_character() {
        let head = "91140500MA0K12345";
        let check = CreditCode::check_char(head).unwrap_or('?');
        let code = format!("{head}{check}");
        assert!(CreditCode::parse(&code).is_ok());
        assert!(CreditCode::parse(&code.to_lowercase()).is_ok());
        let wrong = if check == '0' { '1' } else { '0' };
        assert!(CreditCode::parse(&format!("{head}{wrong}")).is_err());
        assert!(CreditCode::parse("short").is_err());
        assert!(
            CreditCode::parse("91140500MA0K1234IX").is_err(),
            "I is not allowed"
        );
    }
}
