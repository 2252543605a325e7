//! クリックポスト まとめ申込: the 8-column CSV, at most 40 rows per file (shipping-day.md §1.4,
//! §6.3), handed over as several files in one zip.
//!
//! The header is consistent in public code ([JP3], six codebases); Japan Post's official limits
//! were not found, so the lengths here are **unverified**: 氏名 and each 住所 line 20
//! full-width characters, 内容品 15 (what one public tool cuts to). The sender is not in the
//! file: Click Post takes it from the merchant's account.

use std::io::{Cursor, Write};

use chrono::NaiveDate;

use super::rules::{self, Checker, normalize_zip, pack_lines};
use super::{Cool, Parcel, Problem, Sender};

pub const HEADER: [&str; 8] = [
    "お届け先郵便番号",
    "お届け先氏名",
    "お届け先敬称",
    "お届け先住所1行目",
    "お届け先住所2行目",
    "お届け先住所3行目",
    "お届け先住所4行目",
    "内容品",
];

/// Click Post refuses a まとめ申込 file of more than 40 rows.
pub const MAX_ROWS_PER_FILE: usize = 40;

const NAME_MAX: usize = 40;
const HONORIFIC_MAX: usize = 8;
const LINE_MAX: usize = 40;
const ITEM_MAX: usize = 30;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickPostSettings {
    /// お届け先敬称: default 様.
    pub honorific: String,
    /// File names are `{file_stem}_01.csv`, `{file_stem}_02.csv` …: default "clickpost".
    pub file_stem: String,
}

impl Default for ClickPostSettings {
    fn default() -> Self {
        ClickPostSettings { honorific: "様".to_owned(), file_stem: "clickpost".to_owned() }
    }
}

/// Every problem that stops these parcels from going into Click Post, nothing written. The
/// sender and today are not used (the sender comes from the Click Post account, and the file has
/// no dates); they are taken so all three writers are called alike.
pub fn check(parcels: &[Parcel], _sender: &Sender, settings: &ClickPostSettings, _today: NaiveDate) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut c = Checker::new(&mut problems, "", "");
    c.text(HEADER[2], &settings.honorific, HONORIFIC_MAX, false);
    let stem_ok = !settings.file_stem.is_empty()
        && settings.file_stem.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
    if !stem_ok {
        c.push(
            "ファイル名",
            &settings.file_stem,
            "クリックポストのファイル名は半角英数字と - _ で入力してください。".to_owned(),
            None,
        );
    }
    for p in parcels {
        let mut c = Checker::new(&mut problems, &p.management_no, &p.order_id);
        c.zip(HEADER[0], &p.to.zip);
        c.text(HEADER[1], &p.to.name, NAME_MAX, true);
        let parts = address_parts(p);
        c.lines(HEADER[3], &parts.each_ref().map(String::as_str), LINE_MAX, 4, true);
        c.text(HEADER[7], &p.item_name, ITEM_MAX, true);
        if let Some(amount) = p.cod_amount {
            c.push(
                "代金引換",
                &amount.to_string(),
                "クリックポストは代金引換を扱えません。ヤマト（コレクト）か佐川（代引）で出荷してください。".to_owned(),
                None,
            );
        }
        if p.cool != Cool::Normal {
            c.push(
                "クール",
                p.cool.label(),
                format!(
                    "クリックポストはクール便（{}）を扱えません。ヤマトか佐川のクール便で出荷してください。",
                    p.cool.label()
                ),
                None,
            );
        }
        if let Some(date) = p.delivery_date {
            c.push(
                "お届け日",
                &rules::slashed(date),
                "クリックポストはお届け日を指定できません。日付指定をやめるか、別の配送方法で出荷してください。"
                    .to_owned(),
                None,
            );
        }
        if let Some(slot) = p.delivery_time {
            c.push(
                "時間帯",
                slot.label(),
                "クリックポストは時間帯を指定できません。時間帯指定をやめるか、別の配送方法で出荷してください。"
                    .to_owned(),
                None,
            );
        }
        if p.packages != 1 {
            c.push(
                "個数",
                &p.packages.to_string(),
                format!("クリックポストは1個ずつのラベルです（今は{}個）。1個ずつ出荷を分けてください。", p.packages),
                None,
            );
        }
    }
    problems
}

/// 住所1–4行目: prefecture and city, street, building, company; a long part wraps onto the
/// next line and a blank one takes none.
fn address_parts(p: &Parcel) -> [String; 4] {
    [format!("{}{}", p.to.prefecture, p.to.city), p.to.address1.clone(), p.to.address2.clone(), p.to.company.clone()]
}

/// The まとめ申込 files, 40 rows each: `(name, CP932 bytes)`. Every parcel must have passed
/// [`check`]; no parcels, no files.
pub fn files(parcels: &[Parcel], settings: &ClickPostSettings) -> Vec<(String, Vec<u8>)> {
    parcels
        .chunks(MAX_ROWS_PER_FILE)
        .enumerate()
        .map(|(i, chunk)| {
            let mut bytes = Vec::new();
            // Writing into a Vec cannot fail.
            let _ = write_file(&mut bytes, chunk, settings);
            (format!("{}_{:02}.csv", settings.file_stem, i + 1), bytes)
        })
        .collect()
}

fn write_file(w: &mut Vec<u8>, parcels: &[Parcel], settings: &ClickPostSettings) -> std::io::Result<()> {
    rules::write_record(w, &HEADER)?;
    for p in parcels {
        let zip = normalize_zip(&p.to.zip).unwrap_or_else(|| p.to.zip.clone());
        let parts = address_parts(p);
        let mut lines = pack_lines(&parts.each_ref().map(String::as_str), LINE_MAX).into_iter();
        let mut line = || lines.next().unwrap_or_default();
        let (l1, l2, l3, l4) = (line(), line(), line(), line());
        rules::write_record(w, &[&zip, &p.to.name, &settings.honorific, &l1, &l2, &l3, &l4, &p.item_name])?;
    }
    Ok(())
}

/// The files in one zip, stored uncompressed (a few kilobytes of CSV) and dated 1980-01-01 so
/// the same files always give the same bytes.
pub fn zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::DEFAULT);
    let mut archive = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let written: zip::result::ZipResult<Cursor<Vec<u8>>> = (|| {
        for (name, bytes) in files {
            archive.start_file(name.as_str(), options)?;
            archive.write_all(bytes)?;
        }
        archive.finish()
    })();
    // In memory, and far below zip's 4 GiB limits: nothing can fail.
    written.map(Cursor::into_inner).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::rules::testing::{cell_counts, cp932, fields, parcels, sender, today};
    use super::super::{Party, TimeSlot};
    use super::*;

    /// The golden set without what Click Post cannot do (COD, cool, dates, time).
    fn postable() -> Vec<Parcel> {
        parcels()
            .into_iter()
            .map(|mut p| {
                p.cod_amount = None;
                p.cod_tax = None;
                p.cool = Cool::Normal;
                p.delivery_date = None;
                p.delivery_time = None;
                p
            })
            .collect()
    }

    fn problems_of(p: Parcel) -> Vec<Problem> {
        check(&[p], &sender(), &ClickPostSettings::default(), today())
    }

    #[test]
    fn golden_file() {
        let lines = vec![
            "お届け先郵便番号,お届け先氏名,お届け先敬称,お届け先住所1行目,お届け先住所2行目,お届け先住所3行目,お届け先住所4行目,内容品".to_owned(),
            "530-0001,山田 太郎,様,大阪府大阪市北区,梅田1-1-1,,,雑貨".to_owned(),
            "060-0001,佐藤 花子,様,北海道札幌市中央区,北1条西2-3,株式会社サンプル,,食品".to_owned(),
            "812-0011,鈴木 一郎,様,福岡県福岡市博多区,博多駅前2-2-2,\"博多ハイツ101号,南棟\",,衣類".to_owned(),
        ];
        let parcels = postable();
        assert_eq!(check(&parcels, &sender(), &ClickPostSettings::default(), today()), vec![]);
        let files = files(&parcels, &ClickPostSettings::default());
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, "clickpost_01.csv");
        assert_eq!(files[0].1, cp932(&lines));
        assert_eq!(cell_counts(&files[0].1), vec![8; 4]);
    }

    #[test]
    fn forty_rows_per_file() {
        let one = postable().remove(0);
        let many: Vec<Parcel> = (0..81).map(|_| one.clone()).collect();
        let files = files(&many, &ClickPostSettings::default());
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["clickpost_01.csv", "clickpost_02.csv", "clickpost_03.csv"]);
        let rows: Vec<usize> = files.iter().map(|(_, b)| cell_counts(b).len() - 1).collect();
        assert_eq!(rows, [40, 40, 1]);
        assert!(files.iter().all(|(_, b)| cell_counts(b).iter().all(|&n| n == 8)));
        assert_eq!(super::files(&[], &ClickPostSettings::default()), vec![]);
    }

    #[test]
    fn zip_holds_the_files_stored() {
        let files = vec![("a_01.csv".to_owned(), b"x,y\r\n".to_vec()), ("a_02.csv".to_owned(), b"z\r\n".to_vec())];
        let archive = zip(&files);
        assert_eq!(&archive[..4], b"PK\x03\x04");
        let mut read = ::zip::ZipArchive::new(Cursor::new(&archive)).unwrap();
        assert_eq!(read.len(), 2);
        let mut first = read.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "a_01.csv");
        assert_eq!(first.compression(), ::zip::CompressionMethod::Stored);
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut first, &mut content).unwrap();
        assert_eq!(content, b"x,y\r\n");
        drop(first);
        assert_eq!(zip(&files), archive, "the same files give the same bytes");
    }

    #[test]
    fn what_click_post_cannot_carry_is_refused() {
        let p = parcels().remove(0);
        assert_eq!(fields(&problems_of(p)), [("S0001", "代金引換")]);
        let mut p = postable().remove(1);
        p.cool = Cool::Frozen;
        p.delivery_date = Some(today());
        p.delivery_time = Some(TimeSlot::Morning);
        p.packages = 2;
        assert_eq!(
            fields(&problems_of(p)),
            [("S0002", "クール"), ("S0002", "お届け日"), ("S0002", "時間帯"), ("S0002", "個数")]
        );
    }

    #[test]
    fn name_address_and_item_limits() {
        let mut p = postable().remove(0);
        p.to = Party { name: "山".repeat(21), address1: "町".repeat(61), ..p.to.clone() };
        p.item_name = "品".repeat(16);
        assert_eq!(
            fields(&problems_of(p)),
            [("S0001", "お届け先氏名"), ("S0001", "お届け先住所1行目"), ("S0001", "内容品")]
        );
    }

    #[test]
    fn zip_and_required_fields() {
        let mut p = postable().remove(0);
        p.to.zip = String::new();
        p.to.name = String::new();
        p.item_name = "𠮷".to_owned();
        let problems = problems_of(p);
        assert_eq!(fields(&problems), [("S0001", "お届け先郵便番号"), ("S0001", "お届け先氏名"), ("S0001", "内容品")]);
        assert_eq!(problems[2].replacement.as_deref(), Some("吉"));
    }
}
