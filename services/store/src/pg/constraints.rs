//! Constraint violations mapped BY NAME to what they mean for the write that expects them.
//!
//! A SQLSTATE alone (`23505` unique, `23503` foreign key) does not say which constraint
//! refused a row: an insert into `redemptions` can hit the order reference's unique key, but
//! also its primary key or any of its five foreign keys, and only the first is "the merchant
//! already used this order reference". So every write names the constraints it expects
//! (`Expected`) and `expected` maps exactly those — by the name PostgreSQL reports and
//! the matching SQLSTATE — to [`StoreError::Conflict`] or [`StoreError::NotFound`]. A
//! violation of any other constraint is a bug or a schema change and surfaces unchanged as
//! [`StoreError::Pg`] (a 500, with its cause in the log), never as a plausible 409 or 404.
//!
//! The names are PostgreSQL's defaults for the constraints the migrations declare without a
//! name (`<table>_pkey`, `<table>_<columns>_key`, `<table>_<column>_fkey`) or with one
//! (`merchants_credit_code_key`). Migrations are never edited, so the names are stable; the
//! system test `store_pg::every_mapped_constraint_exists_in_the_schema` checks them against
//! the migrated schema.

use crate::error::{Conflict, StoreError};

/// SQLSTATE `unique_violation` (also a primary key).
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE `foreign_key_violation`.
const FOREIGN_KEY_VIOLATION: &str = "23503";

/// The unique and primary-key constraints that writes expect, and the conflict each means.
const UNIQUE: &[(&str, Conflict)] = &[
    ("merchants_pkey", Conflict::MerchantId),
    ("merchants_credit_code_key", Conflict::MerchantCreditCode),
    ("terminals_pkey", Conflict::TerminalId),
    ("terminals_key_id_key", Conflict::TerminalKeyId),
    ("redemptions_merchant_id_order_ref_key", Conflict::OrderRef),
    (
        "reversals_redemption_id_reversal_ref_key",
        Conflict::ReversalRef,
    ),
    ("rounds_pkey", Conflict::Round),
];

/// A foreign key whose violation a write reports as [`StoreError::NotFound`]: the row it
/// references does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// `campaigns_program_id_fkey`: a new campaign's program.
    CampaignProgram,
    /// `merchant_programs_program_id_fkey`: the program a merchant is approved for.
    ApprovalProgram,
    /// `terminals_merchant_id_fkey`: a new terminal's merchant.
    TerminalMerchant,
    /// `vouchers_campaign_id_fkey`: the campaign of a voucher inserted from its token.
    VoucherCampaign,
}

impl Missing {
    const ALL: [Missing; 4] = [
        Missing::CampaignProgram,
        Missing::ApprovalProgram,
        Missing::TerminalMerchant,
        Missing::VoucherCampaign,
    ];

    /// The foreign key's name.
    const fn constraint(self) -> &'static str {
        match self {
            Missing::CampaignProgram => "campaigns_program_id_fkey",
            Missing::ApprovalProgram => "merchant_programs_program_id_fkey",
            Missing::TerminalMerchant => "terminals_merchant_id_fkey",
            Missing::VoucherCampaign => "vouchers_campaign_id_fkey",
        }
    }
}

/// A violation a write expects, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    /// The unique constraint of this conflict: [`StoreError::Conflict`].
    Unique(Conflict),
    /// This foreign key: [`StoreError::NotFound`].
    ForeignKey(Missing),
}

/// The name of the unique constraint whose violation is `conflict`, when it is one (the
/// state conflicts such as [`Conflict::ReversalTotals`] have none).
pub fn constraint_of(conflict: Conflict) -> Option<&'static str> {
    UNIQUE
        .iter()
        .find(|(_, c)| *c == conflict)
        .map(|(name, _)| *name)
}

/// Every constraint name this module maps (unique keys and foreign keys).
pub fn mapped_constraints() -> impl Iterator<Item = &'static str> {
    UNIQUE
        .iter()
        .map(|(name, _)| *name)
        .chain(Missing::ALL.iter().map(|m| m.constraint()))
}

/// `e` as the write expects it: a violation of one of the `expected` constraints (name and
/// SQLSTATE both matching) becomes its [`StoreError`]; anything else, a violation of another
/// constraint included, stays the database error it is.
pub(crate) fn expected(e: sqlx::Error, expected: &[Expected]) -> StoreError {
    let mapped = e.as_database_error().and_then(|db| {
        let code = db.code()?;
        let name = db.constraint()?;
        expected.iter().find_map(|x| match *x {
            Expected::Unique(conflict)
                if code == UNIQUE_VIOLATION && constraint_of(conflict) == Some(name) =>
            {
                Some(StoreError::Conflict(conflict))
            }
            Expected::ForeignKey(missing)
                if code == FOREIGN_KEY_VIOLATION && missing.constraint() == name =>
            {
                Some(StoreError::NotFound)
            }
            _ => None,
        })
    });
    mapped.unwrap_or(StoreError::Pg(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    /// A database error as PostgreSQL would report it.
    #[derive(Debug)]
    struct Violation {
        code: &'static str,
        constraint: &'static str,
    }

    impl std::fmt::Display for Violation {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} violates {}", self.code, self.constraint)
        }
    }

    impl std::error::Error for Violation {}

    impl sqlx::error::DatabaseError for Violation {
        fn message(&self) -> &str {
            "violation"
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.code))
        }
        fn constraint(&self) -> Option<&str> {
            Some(self.constraint)
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            match self.code {
                UNIQUE_VIOLATION => sqlx::error::ErrorKind::UniqueViolation,
                FOREIGN_KEY_VIOLATION => sqlx::error::ErrorKind::ForeignKeyViolation,
                _ => sqlx::error::ErrorKind::Other,
            }
        }
    }

    fn violation(code: &'static str, constraint: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Violation { code, constraint }))
    }

    const ORDER: &[Expected] = &[
        Expected::Unique(Conflict::OrderRef),
        Expected::ForeignKey(Missing::VoucherCampaign),
    ];

    #[test]
    fn an_expected_constraint_maps_to_its_meaning() {
        assert!(matches!(
            expected(
                violation("23505", "redemptions_merchant_id_order_ref_key"),
                ORDER
            ),
            StoreError::Conflict(Conflict::OrderRef)
        ));
        assert!(matches!(
            expected(violation("23503", "vouchers_campaign_id_fkey"), ORDER),
            StoreError::NotFound
        ));
    }

    #[test]
    fn another_constraint_or_another_sqlstate_surfaces_as_the_database_error() {
        for e in [
            violation("23505", "redemptions_pkey"),
            violation("23503", "redemptions_terminal_id_fkey"),
            violation("23503", "redemptions_merchant_id_order_ref_key"),
            violation("23514", "redemptions_discount_fen_check"),
            violation("23505", "merchants_pkey"),
        ] {
            let mapped = expected(e, ORDER);
            assert!(matches!(mapped, StoreError::Pg(_)), "{mapped:?}");
        }
        assert!(matches!(
            expected(sqlx::Error::RowNotFound, ORDER),
            StoreError::Pg(sqlx::Error::RowNotFound)
        ));
    }

    #[test]
    fn each_unique_constraint_means_one_conflict() {
        for (name, conflict) in UNIQUE {
            assert_eq!(constraint_of(*conflict), Some(*name));
        }
        assert_eq!(constraint_of(Conflict::ReversalTotals), None);
        let names: std::collections::HashSet<_> = mapped_constraints().collect();
        assert_eq!(names.len(), UNIQUE.len() + Missing::ALL.len());
    }
}
