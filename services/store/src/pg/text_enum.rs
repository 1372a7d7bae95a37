//! Statuses kept in `text` columns (`merchants.status`, `terminals.status`,
//! `redemptions.status`, `vouchers.status`) as Rust enums: [`text_enum!`] gives an enum its
//! stored names (`as_str`, `FromStr`, `Display`) and binds and decodes it as PostgreSQL
//! `text`.
//!
//! Why not `#[derive(sqlx::Type)] #[sqlx(type_name = "text")]`: a derived type is declared
//! by NAME, and sqlx looks a named type's OID up with one extra query on each new connection
//! before it can bind it. Declaring the built-in `text` type directly binds exactly as a
//! `String` did: same statements, same parameter types, no extra round trip.

/// A stored name that is not one of the enum's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownText {
    /// What was parsed (`redemption status`, …).
    pub what: &'static str,
    /// The text found.
    pub text: String,
}

/// Implements the stored names and the `text` binding of a fieldless enum:
/// `text_enum!(RedemptionStatus, "redemption status" { Approved => "approved", … })`.
/// The enum derives `serde::Serialize` with the same names itself (`rename_all =
/// "snake_case"`); each module's tests check that the two agree.
macro_rules! text_enum {
    ($t:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$($t::$variant),+];

            /// The name as stored and as the JSON APIs send it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($t::$variant => $text),+
                }
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::pg::text_enum::UnknownText;
            fn from_str(s: &str) -> Result<$t, Self::Err> {
                match s {
                    $($text => Ok($t::$variant),)+
                    other => Err($crate::pg::text_enum::UnknownText {
                        what: $what,
                        text: other.to_owned(),
                    }),
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sqlx::Type<sqlx::Postgres> for $t {
            fn type_info() -> sqlx::postgres::PgTypeInfo {
                <str as sqlx::Type<sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool {
                <str as sqlx::Type<sqlx::Postgres>>::compatible(ty)
            }
        }

        impl sqlx::Encode<'_, sqlx::Postgres> for $t {
            fn encode_by_ref(
                &self,
                buf: &mut sqlx::postgres::PgArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<'_, sqlx::Postgres>>::encode_by_ref(&self.as_str(), buf)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Postgres> for $t {
            fn decode(
                value: sqlx::postgres::PgValueRef<'r>,
            ) -> Result<$t, sqlx::error::BoxDynError> {
                Ok(<&str as sqlx::Decode<'r, sqlx::Postgres>>::decode(value)?.parse()?)
            }
        }
    };
}

pub(crate) use text_enum;

/// Test helper: every value's serde name is its stored name, and parses back.
#[cfg(test)]
pub(crate) fn assert_names_agree<T>(all: &[T], as_str: impl Fn(&T) -> &'static str)
where
    T: serde::Serialize + std::str::FromStr + PartialEq + std::fmt::Debug,
    T::Err: std::fmt::Debug,
{
    for value in all {
        let text = as_str(value);
        assert_eq!(
            serde_json::to_value(value).ok(),
            Some(serde_json::Value::from(text)),
            "{value:?}"
        );
        assert_eq!(text.parse::<T>().ok().as_ref(), Some(value));
    }
}
