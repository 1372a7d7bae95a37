//! Formatting signed fen for people: reports show yuan with two decimals (`-1.51`), computed
//! from the integer fen without floating point.

/// `fen` as yuan with two decimals, e.g. `12345` → `123.45`, `-151` → `-1.51`.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let abs = fen.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

#[cfg(test)]
mod tests {
    use super::yuan;

    #[test]
    fn signed_fen_print_as_yuan() {
        assert_eq!(yuan(0), "0.00");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(12_345), "123.45");
        assert_eq!(yuan(-151), "-1.51");
        assert_eq!(yuan(i64::MIN), "-92233720368547758.08");
    }
}
