//! The order's lines a terminal may send with a checkout, a hold or a quote (`lines`): each
//! line's product category (for a 以旧换新 per-item voucher), unit price, quantity and the
//! product's certifications (for a program's extra rules on certified attributes, e.g.
//! `green_product`). Lines are optional; a per-item voucher needs them
//! (`ITEMS_REQUIRED` otherwise).
//!
//! Checked before anything is read or written (`INVALID_FIELD` naming the line and field):
//! 1–50 lines; a unit price of 1 fen up to the largest order; a quantity of 1–100; a product
//! category of `[a-z0-9_]` (1–24, starting with a letter); at most 8 certifications a line,
//! each a valid attribute name (`[a-z0-9_]`, 1–32) and certificate number, an attribute at most
//! once a line. Then Σ unit price × quantity must equal `order_amount_fen`, or the request is
//! refused with `422 LINES_TOTAL_MISMATCH` (its details give both sums): a per-item discount
//! or an extra computed on lines that are not the order would pay for something not sold.
//!
//! The lines are part of the signed body, so the request signature and the idempotency hash
//! cover them: a replay with other lines under the same `Idempotency-Key` is
//! `IDEMPOTENCY_KEY_REUSED`.

use super::MAX_ORDER_FEN;
use crate::error::{ApiError, Code};
use serde::Deserialize;
use voucher_core::extra::{Attribute, CertificateNo, Certification, CertifiedLine};
use voucher_core::item_rule::{ItemLine, ProductCategory, MAX_ITEMS};
use voucher_core::Fen;

/// Most lines an order may send.
pub const MAX_LINES: usize = 50;
/// Most certifications one line may carry.
pub const MAX_CERTIFICATIONS: usize = 8;

/// One certification of a line's product, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificationBody {
    /// The certified attribute, e.g. `green_product` (绿色产品) or `new_energy`: 1–32
    /// characters of `a-z 0-9 _`, starting with a letter.
    pub attribute: String,
    /// The certificate number, e.g. `CQC-GP-2024-001234`: 4–64 characters of
    /// `A-Z a-z 0-9 - _ / .`, starting with a letter or digit.
    pub certificate_no: String,
}

/// One order line, as sent.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineBody {
    /// The product category, e.g. `refrigerator`, `air_conditioner`, `phone` (needed by a
    /// per-item voucher): 1–24 characters of `a-z 0-9 _`, starting with a letter.
    #[serde(default)]
    pub product_category: Option<String>,
    /// Price of one unit after every other discount, fen (> 0).
    pub unit_price_fen: i64,
    /// Units, 1–100.
    pub quantity: i64,
    /// The product's certifications (at most 8, an attribute at most once).
    #[serde(default)]
    pub certifications: Vec<CertificationBody>,
}

/// One order line, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// Category, price and quantity.
    pub item: ItemLine,
    /// The product's certifications.
    pub certifications: Vec<Certification>,
}

impl OrderLine {
    /// Unit price × quantity.
    pub fn amount(&self) -> Fen {
        i64::from(self.item.quantity)
            .checked_mul(self.item.unit_price.as_i64())
            .and_then(|v| Fen::try_from(v).ok())
            .unwrap_or(Fen::ZERO)
    }
}

/// The order's lines, checked: 1–50, adding up to the order amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLines(Vec<OrderLine>);

impl OrderLines {
    /// The lines.
    pub fn lines(&self) -> &[OrderLine] {
        &self.0
    }

    /// The lines as the per-item rule reads them.
    pub fn items(&self) -> Vec<ItemLine> {
        self.0.iter().map(|l| l.item.clone()).collect()
    }

    /// The lines as the extra rules read them.
    pub fn certified(&self) -> Vec<CertifiedLine<'_>> {
        self.0
            .iter()
            .map(|l| CertifiedLine {
                amount: l.amount(),
                certifications: &l.certifications,
            })
            .collect()
    }

    /// Every certified attribute on the order, in name order, once.
    pub fn attributes(&self) -> Vec<Attribute> {
        let set: std::collections::BTreeSet<&Attribute> = self
            .0
            .iter()
            .flat_map(|l| l.certifications.iter().map(|c| &c.attribute))
            .collect();
        set.into_iter().cloned().collect()
    }

    /// The certificate numbers of the lines certified for `attribute`, in line order.
    pub fn certificates(&self, attribute: &Attribute) -> Vec<String> {
        self.0
            .iter()
            .flat_map(|l| l.certifications.iter())
            .filter(|c| &c.attribute == attribute)
            .map(|c| c.certificate_no.as_str().to_owned())
            .collect()
    }
}

fn field(i: usize, name: &str) -> String {
    format!("lines[{i}].{name}")
}

/// Checks the lines of a request against its order amount.
///
/// # Errors
/// `INVALID_FIELD` naming the line and field; `LINES_TOTAL_MISMATCH`.
pub fn parse(lines: Option<&[OrderLineBody]>, order: Fen) -> Result<Option<OrderLines>, ApiError> {
    let Some(lines) = lines else { return Ok(None) };
    if lines.is_empty() || lines.len() > MAX_LINES {
        return Err(ApiError::invalid_field(
            "lines",
            format!("must hold 1-{MAX_LINES} lines when sent"),
        ));
    }
    let mut out = Vec::with_capacity(lines.len());
    let mut total: i128 = 0;
    for (i, l) in lines.iter().enumerate() {
        if l.unit_price_fen <= 0 || l.unit_price_fen > MAX_ORDER_FEN {
            return Err(ApiError::invalid_field(
                field(i, "unit_price_fen"),
                format!("must be 1..={MAX_ORDER_FEN} fen"),
            ));
        }
        let quantity = u32::try_from(l.quantity)
            .ok()
            .filter(|q| (1..=MAX_ITEMS).contains(q))
            .ok_or_else(|| {
                ApiError::invalid_field(field(i, "quantity"), format!("must be 1-{MAX_ITEMS}"))
            })?;
        let product_category = l
            .product_category
            .as_deref()
            .map(ProductCategory::parse)
            .transpose()
            .map_err(|e| ApiError::invalid_field(field(i, "product_category"), e))?;
        if l.certifications.len() > MAX_CERTIFICATIONS {
            return Err(ApiError::invalid_field(
                field(i, "certifications"),
                format!("at most {MAX_CERTIFICATIONS} a line"),
            ));
        }
        let mut certifications: Vec<Certification> = Vec::with_capacity(l.certifications.len());
        for (j, c) in l.certifications.iter().enumerate() {
            let at = |name: &str| format!("lines[{i}].certifications[{j}].{name}");
            let attribute = Attribute::parse(&c.attribute)
                .map_err(|e| ApiError::invalid_field(at("attribute"), e))?;
            let certificate_no = CertificateNo::parse(&c.certificate_no)
                .map_err(|e| ApiError::invalid_field(at("certificate_no"), e))?;
            if certifications.iter().any(|x| x.attribute == attribute) {
                return Err(ApiError::invalid_field(
                    at("attribute"),
                    "an attribute is certified at most once a line",
                ));
            }
            certifications.push(Certification {
                attribute,
                certificate_no,
            });
        }
        let unit_price = Fen::try_from(l.unit_price_fen)
            .map_err(|e| ApiError::invalid_field(field(i, "unit_price_fen"), e))?;
        total += i128::from(l.unit_price_fen) * i128::from(quantity);
        out.push(OrderLine {
            item: ItemLine {
                product_category,
                unit_price,
                quantity,
            },
            certifications,
        });
    }
    if total != i128::from(order.as_i64()) {
        return Err(ApiError::new(Code::LinesTotalMismatch)
            .with_message(format!(
                "the lines add up to {total} fen, the order is {} fen",
                order.as_i64()
            ))
            .with_details(serde_json::json!({
                "lines_total_fen": i64::try_from(total).unwrap_or(i64::MAX),
                "order_amount_fen": order.as_i64(),
            })));
    }
    Ok(Some(OrderLines(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(category: Option<&str>, price: i64, quantity: i64) -> OrderLineBody {
        OrderLineBody {
            product_category: category.map(str::to_owned),
            unit_price_fen: price,
            quantity,
            certifications: Vec::new(),
        }
    }

    fn fen(v: i64) -> Fen {
        Fen::try_from(v).unwrap()
    }

    #[test]
    fn lines_must_add_up_to_the_order() {
        let lines = [line(Some("refrigerator"), 499_900, 1), line(None, 100, 3)];
        let parsed = parse(Some(&lines), fen(500_200)).unwrap().unwrap();
        assert_eq!(parsed.lines().len(), 2);
        assert_eq!(parsed.lines()[1].amount(), fen(300));
        let e = parse(Some(&lines), fen(500_201)).unwrap_err();
        assert_eq!(e.code(), "LINES_TOTAL_MISMATCH");
        assert_eq!(parse(None, fen(1)).unwrap(), None);
    }

    #[test]
    fn bad_lines_name_the_field() {
        let cases: Vec<(Vec<OrderLineBody>, &str)> = vec![
            (vec![], "lines"),
            (vec![line(None, 0, 1)], "lines[0].unit_price_fen"),
            (vec![line(None, 100, 0)], "lines[0].quantity"),
            (vec![line(None, 100, 101)], "lines[0].quantity"),
            (
                vec![line(Some("Fridge"), 100, 1)],
                "lines[0].product_category",
            ),
        ];
        for (lines, name) in cases {
            let e = parse(Some(&lines), fen(100)).unwrap_err();
            assert_eq!(e.code(), "INVALID_FIELD", "{name}");
            assert_eq!(e.details().unwrap()["field"], name);
        }
        let mut bad = line(None, 100, 1);
        bad.certifications.push(CertificationBody {
            attribute: "Green-Product".into(),
            certificate_no: "CQC-1234".into(),
        });
        let e = parse(Some(&[bad]), fen(100)).unwrap_err();
        assert_eq!(e.code(), "INVALID_FIELD");
    }
}
