//! The 納品書's money (issue 28, shipping-day.md §3.1): the インボイス制度's 適格簡易請求書 needs the
//! total and the consumption tax per rate, with the 軽減税率 (8 %) lines marked. Pure: the caller
//! passes the stored order's amounts; nothing here reads or guesses another number.
//!
//! How the amounts are split (the conventions of Shopserve and ネクストエンジン, §3.1):
//! - every amount is tax-included, as Yahoo sends it;
//! - 送料, 決済手数料 and ギフト包装料 go to the 10 % bucket;
//! - price reductions the store gives (Yahoo's `Discount` and the store coupons,
//!   `TotalCouponDiscount`) lower the price, so they are split between the rates in proportion
//!   to each rate's amount (the 8 % share rounded down, the rest to 10 %);
//! - points and gift cards are means of payment (Yahoo pays their value to the store), so they
//!   are shown as reductions of what the buyer pays and do not lower the taxable amounts;
//! - the tax of each rate is computed once per slip from that rate's total, rounded down
//!   (total × rate ÷ (100 + rate)).
//!
//! The sum must come to Yahoo's `TotalPrice`; when it does not, [`summarize`] refuses, and the
//! slip is listed as not printed rather than printed wrong.

/// The reduced rate (軽減税率).
pub const REDUCED_RATE: u8 = 8;
/// The standard rate.
pub const STANDARD_RATE: u8 = 10;

/// One item line's amount and rate. A line whose rate Yahoo did not send counts as 10 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineAmount {
    pub amount: i64,
    pub rate: u8,
}

/// The order-level amounts of the stored order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charges {
    pub ship_charge: i64,
    pub pay_charge: i64,
    pub gift_wrap_charge: i64,
    /// Yahoo's `Discount`.
    pub discount: i64,
    /// Store coupons (`TotalCouponDiscount`).
    pub coupon: i64,
    /// Points used (`UsePoint`).
    pub points: i64,
    /// Gift card (`GiftCardDiscount`).
    pub gift_card: i64,
    /// Yahoo's `TotalPrice`.
    pub total_price: i64,
}

/// One rate's part of the slip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateTotal {
    pub rate: u8,
    /// Tax-included amount of the rate after its share of the price reductions.
    pub total: i64,
    /// The consumption tax in it, rounded down once.
    pub tax: i64,
}

/// The slip's money, as printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaxSummary {
    pub items_total: i64,
    pub fees_total: i64,
    /// Discount + coupon.
    pub reductions: i64,
    /// Per rate, 10 % first; a rate with nothing in it is left out.
    pub rates: Vec<RateTotal>,
    /// Points + gift card.
    pub paid_otherwise: i64,
    /// What the buyer pays: equal to Yahoo's TotalPrice.
    pub billed: i64,
}

/// Why a slip's money cannot be printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    #[error("金額がYahoo!の合計金額と一致しません（明細からの計算 {}、Yahoo!の合計 {}）。注文を再取込してから印刷してください", yen(*.computed), yen(*.yahoo))]
    Total { computed: i64, yahoo: i64 },
    #[error("値引き（{}）が商品代金と手数料の合計（{}）を上回っています", yen(*.reductions), yen(*.base))]
    Reductions { reductions: i64, base: i64 },
    #[error("税率{0}%の明細があります（8%か10%のみ印刷できます）")]
    Rate(u8),
}

/// An amount as the slip and its messages write it: 1,234円.
pub fn yen(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}円", if v < 0 { "-" } else { "" })
}

/// The consumption tax inside a tax-included amount, rounded down.
pub fn tax_in(total: i64, rate: u8) -> i64 {
    let r = i64::from(rate);
    (total * r).div_euclid(100 + r)
}

/// Splits the order's money by rate; see the module's notes for each convention.
pub fn summarize(lines: &[LineAmount], c: &Charges) -> Result<TaxSummary, Mismatch> {
    if let Some(bad) = lines.iter().find(|l| !matches!(l.rate, REDUCED_RATE | STANDARD_RATE)) {
        return Err(Mismatch::Rate(bad.rate));
    }
    let reduced: i64 = lines.iter().filter(|l| l.rate == REDUCED_RATE).map(|l| l.amount).sum();
    let standard_items: i64 = lines.iter().filter(|l| l.rate == STANDARD_RATE).map(|l| l.amount).sum();
    let items_total = reduced + standard_items;
    let fees_total = c.ship_charge + c.pay_charge + c.gift_wrap_charge;
    let standard = standard_items + fees_total;
    let reductions = c.discount + c.coupon;
    let paid_otherwise = c.points + c.gift_card;
    let computed = items_total + fees_total - reductions - paid_otherwise;
    if computed != c.total_price {
        return Err(Mismatch::Total { computed, yahoo: c.total_price });
    }
    let base = reduced + standard;
    if reductions > base || reductions < 0 {
        return Err(Mismatch::Reductions { reductions, base });
    }
    // The 8 % share of the reductions, rounded down; the rest lowers the 10 % bucket.
    let reduced_share = if base == 0 { 0 } else { (reductions as i128 * reduced as i128 / base as i128) as i64 };
    let standard_share = reductions - reduced_share;
    let mut rates = Vec::with_capacity(2);
    for (rate, gross, share) in [(STANDARD_RATE, standard, standard_share), (REDUCED_RATE, reduced, reduced_share)] {
        let has_lines = lines.iter().any(|l| l.rate == rate) || (rate == STANDARD_RATE && fees_total != 0);
        if has_lines {
            let total = gross - share;
            rates.push(RateTotal { rate, total, tax: tax_in(total, rate) });
        }
    }
    Ok(TaxSummary { items_total, fees_total, reductions, rates, paid_otherwise, billed: c.total_price })
}

/// Why a 登録番号 is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("登録番号は「T」と13桁の数字です（例: T1234567890123）")]
    Format,
    #[error(
        "登録番号の13桁が法人番号として正しくありません（先頭のチェックデジットが合いません）。番号を確かめるか、個人事業者の番号なら種類を「個人事業者」にしてください"
    )]
    CheckDigit,
}

/// A 登録番号 as printed: `T` and 13 digits (hyphens and spaces dropped, a lower-case `t`
/// accepted). When the 13 digits are a 法人番号 (`corporate`), its check digit (the first) is
/// verified; a sole proprietor's number is not a 法人番号 and has no check digit we can verify.
/// An empty input is allowed (the slip then has no 登録番号 line).
pub fn registration_number(input: &str, corporate: bool) -> Result<String, RegistrationError> {
    let s: String = input.chars().filter(|c| !matches!(c, '-' | ' ' | '　' | '‐' | '－')).collect();
    if s.is_empty() {
        return Ok(String::new());
    }
    let digits = s.strip_prefix(['T', 't']).ok_or(RegistrationError::Format)?;
    if digits.len() != 13 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistrationError::Format);
    }
    if corporate && !corporate_number_ok(digits) {
        return Err(RegistrationError::CheckDigit);
    }
    Ok(format!("T{digits}"))
}

/// The 法人番号's check digit (国税庁: 9 − (Σ Pn × Qn mod 9), Pn the n-th digit of the 12-digit
/// base counted from the right, Qn 1 for odd n and 2 for even n).
pub fn corporate_number_ok(digits: &str) -> bool {
    let d: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
    if d.len() != 13 {
        return false;
    }
    let sum: u32 = d[1..].iter().rev().enumerate().map(|(i, p)| p * if i % 2 == 0 { 1 } else { 2 }).sum();
    d[0] == 9 - sum % 9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount: i64, rate: u8) -> LineAmount {
        LineAmount { amount, rate }
    }

    #[test]
    fn a_mix_of_rates_with_fees_coupon_and_points() {
        // 8 %: 1,080 × 2 = 2,160; 10 %: 3,300; 送料 660 and 代引 330 go to 10 %.
        // Coupon 500 is split 2,160 : 4,290 → 8 % share ⌊500 × 2160 / 6450⌋ = 167, 10 % 333.
        // Points 300 are a payment: they do not lower the taxable amounts.
        let lines = [line(2160, 8), line(3300, 10)];
        let c = Charges {
            ship_charge: 660,
            pay_charge: 330,
            coupon: 500,
            points: 300,
            total_price: 2160 + 3300 + 660 + 330 - 500 - 300,
            ..Charges::default()
        };
        let s = summarize(&lines, &c).unwrap();
        assert_eq!(s.items_total, 5460);
        assert_eq!(s.fees_total, 990);
        assert_eq!(s.reductions, 500);
        assert_eq!(
            s.rates,
            vec![
                RateTotal { rate: 10, total: 4290 - 333, tax: 359 },
                RateTotal { rate: 8, total: 2160 - 167, tax: 147 }
            ]
        );
        // 3,957 × 10 / 110 = 359.7 → 359; 1,993 × 8 / 108 = 147.6 → 147.
        assert_eq!(s.paid_otherwise, 300);
        assert_eq!(s.billed, 5650);
        assert_eq!(s.rates.iter().map(|r| r.total).sum::<i64>() - s.paid_otherwise, s.billed);
    }

    #[test]
    fn tax_is_rounded_once_per_rate_not_per_line() {
        // Three 8 % lines of 105 yen: per line ⌊7.77⌋ = 7 each (21); once per rate ⌊315 × 8 / 108⌋ = 23.
        let lines = [line(105, 8), line(105, 8), line(105, 8)];
        let s = summarize(&lines, &Charges { total_price: 315, ..Charges::default() }).unwrap();
        assert_eq!(s.rates, vec![RateTotal { rate: 8, total: 315, tax: 23 }]);
        assert_eq!(tax_in(1100, 10), 100);
        assert_eq!(tax_in(1080, 8), 80);
        assert_eq!(tax_in(0, 10), 0);
    }

    #[test]
    fn fees_alone_make_a_ten_percent_bucket() {
        let lines = [line(1080, 8)];
        let s = summarize(&lines, &Charges { ship_charge: 550, total_price: 1630, ..Charges::default() }).unwrap();
        assert_eq!(
            s.rates,
            vec![RateTotal { rate: 10, total: 550, tax: 50 }, RateTotal { rate: 8, total: 1080, tax: 80 }]
        );
        // Zero-price lines are fine and keep their rate's line.
        let s = summarize(&[line(0, 10)], &Charges::default()).unwrap();
        assert_eq!(s.rates, vec![RateTotal { rate: 10, total: 0, tax: 0 }]);
    }

    #[test]
    fn a_total_that_is_not_yahoos_is_refused() {
        let err = summarize(&[line(1000, 10)], &Charges { total_price: 900, ..Charges::default() }).unwrap_err();
        assert_eq!(err, Mismatch::Total { computed: 1000, yahoo: 900 });
        assert!(err.to_string().contains("1,000円") && err.to_string().contains("900円"));
        let err = summarize(&[line(1000, 5)], &Charges { total_price: 1000, ..Charges::default() }).unwrap_err();
        assert_eq!(err, Mismatch::Rate(5));
        let c = Charges { discount: 2000, points: -1000, total_price: 0, ..Charges::default() };
        assert!(matches!(summarize(&[line(1000, 10)], &c), Err(Mismatch::Reductions { .. })));
    }

    #[test]
    fn gift_card_and_discount() {
        let lines = [line(5000, 10)];
        let c = Charges { discount: 500, gift_card: 1000, total_price: 3500, ..Charges::default() };
        let s = summarize(&lines, &c).unwrap();
        assert_eq!(s.rates, vec![RateTotal { rate: 10, total: 4500, tax: 409 }]);
        assert_eq!(s.paid_otherwise, 1000);
    }

    #[test]
    fn registration_numbers() {
        // 国税庁's own 法人番号 is 7000012050002.
        assert!(corporate_number_ok("7000012050002"));
        assert!(!corporate_number_ok("8000012050002"));
        assert_eq!(registration_number("T7000012050002", true).unwrap(), "T7000012050002");
        assert_eq!(registration_number("t7000-0120-50002", true).unwrap(), "T7000012050002");
        assert_eq!(registration_number("T8000012050002", true), Err(RegistrationError::CheckDigit));
        // A sole proprietor's number is not a 法人番号: only the format is checked.
        assert_eq!(registration_number("T8000012050002", false).unwrap(), "T8000012050002");
        assert_eq!(registration_number("7000012050002", true), Err(RegistrationError::Format));
        assert_eq!(registration_number("T700001205000", true), Err(RegistrationError::Format));
        assert_eq!(registration_number("T70000120500O2", false), Err(RegistrationError::Format));
        assert_eq!(registration_number("", true).unwrap(), "");
    }
}
