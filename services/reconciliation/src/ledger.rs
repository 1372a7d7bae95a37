//! The double-entry ledger of a settlement batch. Amounts are signed fen: > 0 debits,
//! < 0 credits an account. Each batch (one program, one city, one period) posts two legs
//! through the program's clearing account:
//!
//! 1. **funding**: the provincial pool is debited with the province share P, the city's
//!    budget with the city share, each co-funding county's budget with its share, and the
//!    clearing account is credited with their sum S;
//! 2. **payout**: the clearing account is debited with S and each merchant's payable is
//!    credited with what it is owed.
//!
//! Σ postings = 0 per batch, and the clearing account nets to zero per batch, because
//! Σ payables = S = P + city + Σ county (invariant I6). A negative amount (a period with more
//! reversed than granted) simply reverses the direction. Zero amounts are not posted.
//! The pool account's balance is what the province has paid out of the pool so far.

/// The kind of a ledger account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// 省级资金池: the program's provincial pool.
    ProvincialPool,
    /// 市级预算: a city's budget for the program.
    CityBudget,
    /// 县级预算: a county's co-funding budget for the program.
    CountyBudget,
    /// 应付商户: what is owed to a merchant.
    MerchantPayable,
    /// 清算: the program's clearing account.
    Clearing,
}

impl AccountKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::ProvincialPool => "provincial_pool",
            AccountKind::CityBudget => "city_budget",
            AccountKind::CountyBudget => "county_budget",
            AccountKind::MerchantPayable => "merchant_payable",
            AccountKind::Clearing => "clearing",
        }
    }
}

/// A ledger account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Readable, unique code, e.g. `city_budget:p1:140500`.
    pub code: String,
    /// Its kind.
    pub kind: AccountKind,
    /// The program (all but merchant payables).
    pub program_id: Option<i64>,
    /// The place (city or county budgets).
    pub place: Option<u32>,
    /// The merchant (payables).
    pub merchant_id: Option<String>,
}

impl Account {
    /// `provincial_pool:p<program>`.
    pub fn pool(program: i64) -> Account {
        Account {
            code: format!("provincial_pool:p{program}"),
            kind: AccountKind::ProvincialPool,
            program_id: Some(program),
            place: None,
            merchant_id: None,
        }
    }

    /// `city_budget:p<program>:<city>`.
    pub fn city(program: i64, city: u32) -> Account {
        Account {
            code: format!("city_budget:p{program}:{city:06}"),
            kind: AccountKind::CityBudget,
            program_id: Some(program),
            place: Some(city),
            merchant_id: None,
        }
    }

    /// `county_budget:p<program>:<county>`.
    pub fn county(program: i64, county: u32) -> Account {
        Account {
            code: format!("county_budget:p{program}:{county:06}"),
            kind: AccountKind::CountyBudget,
            program_id: Some(program),
            place: Some(county),
            merchant_id: None,
        }
    }

    /// `merchant_payable:<merchant>`.
    pub fn merchant(merchant: &str) -> Account {
        Account {
            code: format!("merchant_payable:{merchant}"),
            kind: AccountKind::MerchantPayable,
            program_id: None,
            place: None,
            merchant_id: Some(merchant.to_owned()),
        }
    }

    /// `clearing:p<program>`.
    pub fn clearing(program: i64) -> Account {
        Account {
            code: format!("clearing:p{program}"),
            kind: AccountKind::Clearing,
            program_id: Some(program),
            place: None,
            merchant_id: None,
        }
    }
}

/// One posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posting {
    /// The account.
    pub account: Account,
    /// > 0 debit, < 0 credit.
    pub amount_fen: i64,
    /// Why.
    pub memo: String,
}

/// What one batch settles, for [`postings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFigures<'a> {
    /// The program.
    pub program_id: i64,
    /// The city.
    pub city: u32,
    /// Province share P.
    pub province_fen: i64,
    /// City share.
    pub city_fen: i64,
    /// County shares.
    pub counties: &'a [(u32, i64)],
    /// Payables per merchant.
    pub payables: &'a [(&'a str, i64)],
}

/// The postings of a batch, in a fixed order (funding, then payout by merchant id).
pub fn postings(b: &BatchFigures<'_>) -> Vec<Posting> {
    let mut out = Vec::new();
    let mut push = |account: Account, amount_fen: i64, memo: String| {
        if amount_fen != 0 {
            out.push(Posting {
                account,
                amount_fen,
                memo,
            });
        }
    };
    let funded: i64 = b.province_fen + b.city_fen + b.counties.iter().map(|c| c.1).sum::<i64>();
    push(
        Account::pool(b.program_id),
        b.province_fen,
        format!("province share of {:06}", b.city),
    );
    push(
        Account::city(b.program_id, b.city),
        b.city_fen,
        "city share".to_owned(),
    );
    for &(county, amount) in b.counties {
        push(
            Account::county(b.program_id, county),
            amount,
            "county co-funding".to_owned(),
        );
    }
    push(
        Account::clearing(b.program_id),
        -funded,
        "funding of the period".to_owned(),
    );
    let paid: i64 = b.payables.iter().map(|p| p.1).sum();
    push(
        Account::clearing(b.program_id),
        paid,
        "payout of the period".to_owned(),
    );
    for &(merchant, amount) in b.payables {
        push(
            Account::merchant(merchant),
            -amount,
            "discounts granted − reversed".to_owned(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_balances_and_skips_zero_lines() {
        let p = postings(&BatchFigures {
            program_id: 1,
            city: 140_500,
            province_fen: 6_172,
            city_fen: 5_007,
            counties: &[(140_522, 1_166)],
            payables: &[("m1", 10_000), ("m2", 2_345), ("m3", 0)],
        });
        assert_eq!(p.iter().map(|x| x.amount_fen).sum::<i64>(), 0);
        assert_eq!(p.len(), 7);
        assert!(p.iter().all(|x| x.amount_fen != 0));
    }
}
