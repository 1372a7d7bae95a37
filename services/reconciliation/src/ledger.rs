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
//!
//! Payees are merchants (discounts, ticket subsidies, top-ups) and residents (car trade-in).
//!
//! **Advances** (预拨资金): an advance to a merchant is posted when it is made, on its own
//! (debit `merchant_advance:<merchant>:p<program>`, credit the program's
//! `advance_disbursement:p<program>`). A batch then **draws it down**: the merchant's payable
//! is debited with the drawdown and the advance account credited, so the cash still to pay is
//! the payable less the drawdown. At any time the advance account's balance is what the
//! merchant holds and has not yet earned (owed back if the program ends), and the payable
//! account's credit balance what is owed to the merchant: the balance in either direction,
//! to the fen.

pub use crate::aggregate::Payee;

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
    /// 应付居民: what is owed to a resident (car trade-in).
    ResidentPayable,
    /// 预拨资金: what a merchant was advanced by a program and has not yet earned.
    MerchantAdvance,
    /// 预拨支出: what a program paid out as advances.
    AdvanceDisbursement,
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
            AccountKind::ResidentPayable => "resident_payable",
            AccountKind::MerchantAdvance => "merchant_advance",
            AccountKind::AdvanceDisbursement => "advance_disbursement",
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
    /// The merchant (payables, advances).
    pub merchant_id: Option<String>,
    /// The resident (payables).
    pub person_id: Option<String>,
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
            person_id: None,
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
            person_id: None,
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
            person_id: None,
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
            person_id: None,
        }
    }

    /// `resident_payable:<person>`.
    pub fn resident(person: &str) -> Account {
        Account {
            code: format!("resident_payable:{person}"),
            kind: AccountKind::ResidentPayable,
            program_id: None,
            place: None,
            merchant_id: None,
            person_id: Some(person.to_owned()),
        }
    }

    /// The account a payee is paid through.
    pub fn payee(payee: &Payee) -> Account {
        match payee {
            Payee::Merchant(m) => Account::merchant(m),
            Payee::Resident(p) => Account::resident(p),
        }
    }

    /// `merchant_advance:<merchant>:p<program>`.
    pub fn advance(program: i64, merchant: &str) -> Account {
        Account {
            code: format!("merchant_advance:{merchant}:p{program}"),
            kind: AccountKind::MerchantAdvance,
            program_id: Some(program),
            place: None,
            merchant_id: Some(merchant.to_owned()),
            person_id: None,
        }
    }

    /// `advance_disbursement:p<program>`.
    pub fn disbursement(program: i64) -> Account {
        Account {
            code: format!("advance_disbursement:p{program}"),
            kind: AccountKind::AdvanceDisbursement,
            program_id: Some(program),
            place: None,
            merchant_id: None,
            person_id: None,
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
            person_id: None,
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
    /// Payables per payee, with what they are for.
    pub payables: &'a [(Payee, i64, &'a str)],
    /// Advances drawn down per merchant.
    pub drawdowns: &'a [(&'a str, i64)],
}

/// The postings of an advance of `amount_fen` by `program` to `merchant`.
pub fn advance_postings(program: i64, merchant: &str, amount_fen: i64) -> Vec<Posting> {
    vec![
        Posting {
            account: Account::advance(program, merchant),
            amount_fen,
            memo: "advance paid to the merchant".to_owned(),
        },
        Posting {
            account: Account::disbursement(program),
            amount_fen: -amount_fen,
            memo: "advance paid out of the program".to_owned(),
        },
    ]
}

/// The postings of a batch, in a fixed order (funding, payout by payee, then drawdowns).
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
    for (payee, amount, what) in b.payables {
        push(Account::payee(payee), -amount, (*what).to_owned());
    }
    for &(merchant, amount) in b.drawdowns {
        push(
            Account::merchant(merchant),
            amount,
            "advance drawn down against the payable".to_owned(),
        );
        push(
            Account::advance(b.program_id, merchant),
            -amount,
            "advance drawn down".to_owned(),
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
            payables: &[
                (Payee::Merchant("m1".into()), 10_000, "discounts"),
                (Payee::Merchant("m2".into()), 2_345, "discounts"),
                (Payee::Merchant("m3".into()), 0, "discounts"),
            ],
            drawdowns: &[],
        });
        assert_eq!(p.iter().map(|x| x.amount_fen).sum::<i64>(), 0);
        assert_eq!(p.len(), 7);
        assert!(p.iter().all(|x| x.amount_fen != 0));
    }

    #[test]
    fn a_drawdown_moves_the_payable_against_the_advance_and_balances() {
        let advance = advance_postings(1, "m1", 50_000);
        assert_eq!(advance.iter().map(|x| x.amount_fen).sum::<i64>(), 0);
        let p = postings(&BatchFigures {
            program_id: 1,
            city: 140_500,
            province_fen: 5_000,
            city_fen: 5_000,
            counties: &[],
            payables: &[
                (Payee::Merchant("m1".into()), 8_000, "discounts"),
                (Payee::Resident("p1".into()), 2_000, "trade_in"),
            ],
            drawdowns: &[("m1", 8_000)],
        });
        assert_eq!(p.iter().map(|x| x.amount_fen).sum::<i64>(), 0);
        let balance = |code: &str| -> i64 {
            advance
                .iter()
                .chain(&p)
                .filter(|x| x.account.code == code)
                .map(|x| x.amount_fen)
                .sum()
        };
        assert_eq!(
            balance("merchant_payable:m1"),
            0,
            "all earned against the advance"
        );
        assert_eq!(
            balance("merchant_advance:m1:p1"),
            42_000,
            "still held by the merchant"
        );
        assert_eq!(
            balance("resident_payable:p1"),
            -2_000,
            "owed to the resident"
        );
    }
}
