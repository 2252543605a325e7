//! Which orders a signed-in person may see and change: their account's, limited to the stores
//! an owner chose for a staff member, with buyers' personal data masked when their switch says
//! so (product.md §1, §6). Every order query and export takes an [`OrderScope`].

use super::{AccountId, StoreId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderScope {
    pub account: AccountId,
    /// `None`: every store of the account. `Some`: only these (possibly none).
    pub stores: Option<Vec<StoreId>>,
    /// Buyers' names, addresses, phone numbers and emails are shown as 「***」.
    pub mask_personal: bool,
}

impl OrderScope {
    /// The whole account, unmasked (owners, jobs).
    pub fn account(account: AccountId) -> OrderScope {
        OrderScope { account, stores: None, mask_personal: false }
    }

    pub fn allows(&self, store: StoreId) -> bool {
        self.stores.as_ref().is_none_or(|s| s.contains(&store))
    }
}

pub const MASK: &str = "＊＊＊";

impl OrderScope {
    /// Replaces each of these fields with [`MASK`] (an empty one stays empty) when the scope
    /// masks buyers' personal data.
    pub fn mask_fields<const N: usize>(&self, fields: [&mut String; N]) {
        if !self.mask_personal {
            return;
        }
        for field in fields {
            if !field.is_empty() {
                MASK.clone_into(field);
            }
        }
    }

    /// A history line as this reader may read it: a change of buyers' personal data at Yahoo
    /// keeps which fields changed and loses their values. The text shown is built from the
    /// labels alone, never from the stored message, so nothing of a value can come through.
    pub fn history_message(&self, kind: &str, message: &str) -> String {
        if !self.mask_personal || !CHANGE_KINDS.contains(&kind) {
            return message.to_owned();
        }
        let found: Vec<&str> =
            PERSONAL_LABELS.iter().copied().filter(|l| message.contains(&format!("{l}: "))).collect();
        if found.is_empty() {
            return message.to_owned();
        }
        if kind == PERSONAL_CHANGE_KIND {
            let each: Vec<String> = found.iter().map(|l| format!("{l}: {MASK} → {MASK}")).collect();
            format!("Yahoo!で変更されました。{}", each.join("、"))
        } else {
            // A line written before personal changes had a line of their own: its other values
            // cannot be told apart from the personal ones, so all of it is withheld.
            format!("Yahoo!で変更されました（{}を含むため、内容は伏せています）", found.join("・"))
        }
    }
}

/// The history kind of a change at Yahoo to buyers' personal data (its own line, so that the
/// other changes of the same import stay readable for a masked reader).
pub const PERSONAL_CHANGE_KIND: &str = "import_changed_personal";

/// The history kinds that carry values of changed fields.
const CHANGE_KINDS: [&str; 2] = ["import_changed", PERSONAL_CHANGE_KIND];

/// The labels under which buyers' personal data is shown and compared field by field (the
/// re-import's differences and the history of changes at Yahoo).
pub const PERSONAL_LABELS: [&str; 11] = [
    "請求先氏名",
    "請求先氏名カナ",
    "請求先郵便番号",
    "請求先住所",
    "請求先電話番号",
    "メールアドレス",
    "お届け先氏名",
    "お届け先氏名カナ",
    "お届け先郵便番号",
    "お届け先住所",
    "お届け先電話番号",
];

/// Every field of an order that is a buyer's personal data (names, kana, postcodes, addresses,
/// phone numbers, email), listed once: the columns of `yahoo_order` and the fields of each row
/// type that reads them all share these names. `OrderScope::mask_fields(personal_fields!(row))`
/// masks a row; a row type that reads only some of them masks those by name.
#[macro_export]
macro_rules! personal_fields {
    ($row:expr) => {
        [
            &mut $row.bill_last_name,
            &mut $row.bill_first_name,
            &mut $row.bill_last_name_kana,
            &mut $row.bill_first_name_kana,
            &mut $row.bill_zip_code,
            &mut $row.bill_prefecture,
            &mut $row.bill_city,
            &mut $row.bill_address1,
            &mut $row.bill_address2,
            &mut $row.bill_phone,
            &mut $row.bill_mail,
            &mut $row.ship_last_name,
            &mut $row.ship_first_name,
            &mut $row.ship_last_name_kana,
            &mut $row.ship_first_name_kana,
            &mut $row.ship_zip_code,
            &mut $row.ship_prefecture,
            &mut $row.ship_city,
            &mut $row.ship_address1,
            &mut $row.ship_address2,
            &mut $row.ship_phone,
        ]
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::AccountId;

    fn masked() -> OrderScope {
        OrderScope { account: AccountId(1), stores: None, mask_personal: true }
    }

    #[test]
    fn personal_changes_keep_their_labels_and_lose_their_values() {
        let line = "Yahoo!で変更されました。お届け先住所: 東京都港区1-1 → 沖縄県那覇市2-2、お届け先電話番号: 0311112222 → 0988889999";
        let shown = masked().history_message(PERSONAL_CHANGE_KIND, line);
        assert_eq!(shown, "Yahoo!で変更されました。お届け先住所: ＊＊＊ → ＊＊＊、お届け先電話番号: ＊＊＊ → ＊＊＊");
        assert_eq!(OrderScope::account(AccountId(1)).history_message(PERSONAL_CHANGE_KIND, line), line);
    }

    #[test]
    fn an_older_mixed_line_is_withheld_whole_and_other_lines_pass() {
        let line = "Yahoo!で変更されました。合計金額: 100 → 200、請求先電話番号: 0311112222 → 0988889999";
        let shown = masked().history_message("import_changed", line);
        assert!(!shown.contains("0311") && !shown.contains("100") && shown.contains("請求先電話番号"), "{shown}");
        let plain = "Yahoo!で変更されました。合計金額: 100 → 200";
        assert_eq!(masked().history_message("import_changed", plain), plain);
        assert_eq!(masked().history_message("status", "請求先氏名: x"), "請求先氏名: x");
    }

    #[test]
    fn mask_fields_keeps_empty_fields_empty() {
        let (mut a, mut b) = ("山田".to_string(), String::new());
        masked().mask_fields([&mut a, &mut b]);
        assert_eq!((a.as_str(), b.as_str()), (MASK, ""));
    }
}
