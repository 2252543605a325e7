//! The shipping day (issue 33): orders become parcels. [`export_labels`] writes a carrier's
//! label file for chosen orders; [`preview_tracking`] reads a carrier's issued-data file and
//! matches its rows; [`apply_tracking`] sets the numbers, which moves the orders to 出荷済み and
//! queues the pushes to Yahoo. The pages, the order list and `bench shipping` all call these.
//!
//! Every path asks `domain::shipping::may_leave` for each order (the fraud-hold rule first):
//! an excluded order is listed with the reason and never reaches a file or a number.

pub mod complete;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::{
    carrier::{self, Carrier, ClickPostSettings, LabelFormat, Parcel, Party, Problem, RowKey, Sender, TimeSlot},
    db::{
        Db,
        orders::{HistoryActor, OrderPk},
        shipping::{self as store, NewExport, Settings, ShipOrder, Shipment, UploadRow},
    },
    domain::{
        StoreId,
        scope::OrderScope,
        shipping::{Exclusion, MappingRow, choose, may_leave},
    },
};

/// An order left out of a shipping action, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Excluded {
    pub pk: OrderPk,
    pub order_id: String,
    pub store_name: String,
    pub reason: String,
    /// The reason is the fraud-hold rule.
    pub held: bool,
}

impl Excluded {
    fn new(o: &ShipOrder, reason: String, held: bool) -> Excluded {
        Excluded { pk: o.pk, order_id: o.order_id.clone(), store_name: o.store_name.clone(), reason, held }
    }
}

/// What a label export asked for.
#[derive(Clone, Debug)]
pub struct LabelRequest {
    pub orders: Vec<OrderPk>,
    pub format: LabelFormat,
    pub ship_date: NaiveDate,
    /// 「出力済み・伝票番号ありも含めて出力する」: the duplicate guard's confirmation.
    pub reexport: bool,
    /// 「入金前でも出力する」.
    pub unpaid_confirmed: bool,
}

/// How a label export ended.
#[derive(Debug)]
pub enum LabelOutcome {
    /// Nothing written: each problem names the order, the column, the value and what to do;
    /// `fine` are the orders that had none (to export without the others).
    Refused {
        problems: Vec<Problem>,
        excluded: Vec<Excluded>,
        fine: Vec<OrderPk>,
    },
    /// No order was left to export.
    Empty {
        excluded: Vec<Excluded>,
        already: Vec<Excluded>,
    },
    Written {
        export_id: i64,
        rows: usize,
        excluded: Vec<Excluded>,
        already: Vec<Excluded>,
    },
}

/// Readers whose personal-data view is masked cannot export label files: the files carry
/// names, addresses and phone numbers.
pub const MASKED_CANNOT_EXPORT: &str = "送り状データにはお届け先の氏名・住所・電話番号が入るため、個人情報が伏せられている利用者は出力できません。アカウントのオーナーに依頼してください";

/// Exports the chosen orders (in the reader's scope) as one label file: the gate for each
/// order, its shipment (made from the store's mapping when it has none), the duplicate guard,
/// then every value checked before anything is written; the file and what it holds are
/// recorded and can be downloaded again.
pub async fn export_labels(
    db: &Db,
    scope: &OrderScope,
    req: &LabelRequest,
    by: &str,
    today: NaiveDate,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<LabelOutcome, &'static str>> {
    if scope.mask_personal {
        return Ok(Err(MASKED_CANNOT_EXPORT));
    }
    let orders = store::orders(db, scope, &req.orders).await?;
    let settings = store::settings_of(db, scope.account, orders.iter().map(|o| o.store_id).collect()).await?;
    let mut excluded = Vec::new();
    let mut leaving: Vec<(&ShipOrder, MappingRow)> = Vec::new();
    for o in &orders {
        let (s, rows) = &settings[&o.store_id];
        match may_leave(&o.leave_facts(&s.prepay_methods), req.unpaid_confirmed) {
            Ok(()) => {
                let fallback = s.fallback();
                let mut row = choose(rows, &fallback, &o.ship_method, &o.pay_method).clone();
                // A rule's carrier for this order stands: another file leaves it out, saying so.
                if let Some(f) = o.label_format.as_deref().and_then(LabelFormat::parse) {
                    if f != req.format {
                        let why = format!(
                            "送り状はルールで「{}」に指定されています（その形式で出力してください）",
                            f.label()
                        );
                        excluded.push(Excluded::new(o, why, false));
                        continue;
                    }
                    row.format = f;
                }
                if let Some(service) = o.label_service.as_ref().filter(|_| row.format == LabelFormat::B2) {
                    row.service = service.clone();
                }
                if row.format != req.format {
                    // The file asked for wins; the mapping's B2 service only applies to B2.
                    row = MappingRow { format: req.format, service: "0".into(), ..row };
                }
                leaving.push((o, row));
            }
            Err(e) => excluded.push(Excluded::new(o, e.to_string(), e == Exclusion::FraudHold)),
        }
    }
    let pairs: Vec<(&ShipOrder, &MappingRow)> = leaving.iter().map(|(o, r)| (*o, r)).collect();
    let shipments = store::ensure_shipments(db, scope.account, &pairs, now).await?;
    let by_order: HashMap<OrderPk, &ShipOrder> = orders.iter().map(|o| (o.pk, o)).collect();
    let row_of: HashMap<OrderPk, &MappingRow> = leaving.iter().map(|(o, r)| (o.pk, r)).collect();
    let mut already = Vec::new();
    let mut parcels: Vec<(Parcel, StoreId, i64)> = Vec::new();
    for sh in &shipments {
        let Some(o) = by_order.get(&sh.order_pk) else { continue };
        if !req.reexport {
            if let Some(n) = &sh.tracking_number {
                already.push(Excluded::new(o, format!("伝票番号（{n}）が登録済みです"), false));
                continue;
            }
            if sh.exported_at.is_some() {
                already.push(Excluded::new(o, "送り状データを出力済みです".into(), false));
                continue;
            }
        }
        let (s, _) = &settings[&o.store_id];
        parcels.push((parcel(o, sh, s, row_of.get(&o.pk).copied(), req.ship_date), o.store_id, sh.id));
    }
    if parcels.is_empty() {
        return Ok(Ok(LabelOutcome::Empty { excluded, already }));
    }
    // Checking and writing thousands of rows is work for the CPU: off the async threads.
    let format = req.format;
    let (rendered, parcels) = tokio::task::spawn_blocking(move || {
        let rendered = render(format, &parcels, &settings, today);
        (rendered, parcels)
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the label file task ended: {e}")))?;
    let (file_name, content_type, body) = match rendered {
        Ok(file) => file,
        Err(problems) => {
            // A problem of a store's own settings (no order named) stops every order of it.
            let fine = if problems.iter().any(|p| p.order_id.is_empty()) {
                Vec::new()
            } else {
                let named: std::collections::HashSet<&str> = problems.iter().map(|p| p.order_id.as_str()).collect();
                let pk_of: HashMap<&str, OrderPk> = orders.iter().map(|o| (o.order_id.as_str(), o.pk)).collect();
                parcels
                    .iter()
                    .filter(|(p, _, _)| !named.contains(p.order_id.as_str()))
                    .filter_map(|(p, _, _)| pk_of.get(p.order_id.as_str()).copied())
                    .collect()
            };
            return Ok(Ok(LabelOutcome::Refused { problems, excluded, fine }));
        }
    };
    let ids: Vec<i64> = parcels.iter().map(|(_, _, id)| *id).collect();
    let export = NewExport {
        format: req.format,
        file_name: &file_name,
        content_type,
        body: &body,
        shipments: &ids,
        reexport: req.reexport,
        by,
        ship_date: req.ship_date,
    };
    let export_id = store::record_export(db, scope.account, &export, now).await?;
    Ok(Ok(LabelOutcome::Written { export_id, rows: ids.len(), excluded, already }))
}

/// One shipment as its label needs it.
fn parcel(o: &ShipOrder, sh: &Shipment, s: &Settings, row: Option<&MappingRow>, ship_date: NaiveDate) -> Parcel {
    let service = row.map_or_else(|| sh.service.clone(), |r| r.service.clone());
    let collect = matches!(service.as_str(), "2" | "9");
    let item_name = if !sh.item_name.is_empty() {
        sh.item_name.clone()
    } else if !s.item_name.is_empty() {
        s.item_name.clone()
    } else {
        o.first_title.clone().unwrap_or_default()
    };
    Parcel {
        management_no: sh.management_no(),
        order_id: o.order_id.clone(),
        service,
        cool: row.map_or(carrier::Cool::Normal, |r| r.cool),
        ship_date,
        // A rule may leave お届け希望日 blank on the label (沖縄宛 and the like).
        delivery_date: o.ship_request_date.filter(|_| o.clear_delivery_date != Some(true)),
        delivery_time: TimeSlot::from_yahoo(&o.ship_request_time),
        to: Party {
            name: o.recipient_name(),
            name_kana: format!("{} {}", o.ship_last_name_kana, o.ship_first_name_kana).trim().to_owned(),
            phone: o.ship_phone.clone(),
            zip: o.ship_zip_code.clone(),
            prefecture: o.ship_prefecture.clone(),
            city: o.ship_city.clone(),
            address1: o.ship_address1.clone(),
            address2: o.ship_address2.clone(),
            company: String::new(),
        },
        item_name,
        handling: [s.handling1.clone(), s.handling2.clone()],
        packages: u32::try_from(sh.packages).unwrap_or(1).max(1),
        // コレクト: the order's total, which includes Yahoo's 代引手数料; the tax part is
        // the 10 % share of it (B2's 内消費税額等).
        cod_amount: collect.then_some(o.total_price),
        cod_tax: collect.then_some(o.total_price * 10 / 110),
    }
}

/// The store's sender block.
pub fn sender(s: &Settings) -> Sender {
    Sender {
        name: s.sender_name.clone(),
        name_kana: s.sender_kana.clone(),
        phone: s.sender_phone.clone(),
        zip: s.sender_zip.clone(),
        address: s.sender_address.clone(),
        building: s.sender_building.clone(),
    }
}

/// A parcel with its store's sender block and settings.
type Row<'a> = (&'a Parcel, Sender, &'a Settings);

/// Work on the `i`th part of a file's rows: its bytes, or the problems found.
type Part<'a> = dyn Fn(usize, &[Row]) -> Result<Vec<u8>, Vec<Problem>> + Sync + 'a;

/// The file for these parcels, or every problem that stops it. The checks and the rows are
/// made in parts, one per core, and the parts joined in order.
fn render(
    format: LabelFormat,
    parcels: &[(Parcel, StoreId, i64)],
    settings: &HashMap<StoreId, (Settings, Vec<MappingRow>)>,
    today: NaiveDate,
) -> Result<(String, &'static str, Vec<u8>), Vec<Problem>> {
    let stamp = today.format("%Y%m%d");
    let rows: Vec<Row> = parcels
        .iter()
        .map(|(p, store, _)| {
            let s = &settings[store].0;
            (p, sender(s), s)
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let part = rows.len().div_ceil(cores).max(1000);
    let in_parts = |work: &Part| {
        std::thread::scope(|scope| {
            let parts: Vec<_> =
                rows.chunks(part).enumerate().map(|(i, chunk)| scope.spawn(move || work(i, chunk))).collect();
            parts.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Vec::new()))).collect::<Vec<_>>()
        })
    };
    let checked = in_parts(&|_, chunk| {
        let problems: Vec<Problem> = chunk
            .iter()
            .flat_map(|(p, sender, s)| {
                let one = std::slice::from_ref(*p);
                match format {
                    LabelFormat::B2 => carrier::b2::check(one, sender, &b2_settings(s), today),
                    LabelFormat::Ehiden => carrier::ehiden::check(one, sender, &ehiden_settings(s), today),
                    LabelFormat::ClickPost => {
                        carrier::clickpost::check(one, sender, &ClickPostSettings::default(), today)
                    }
                }
            })
            .collect();
        if problems.is_empty() { Ok(Vec::new()) } else { Err(problems) }
    });
    let problems: Vec<Problem> = checked.into_iter().filter_map(Result::err).flatten().collect();
    if !problems.is_empty() {
        return Err(dedup(problems));
    }
    let no_sender = Sender::default();
    let file = match format {
        LabelFormat::B2 => {
            let parts = in_parts(&|i, chunk| {
                let settings = carrier::B2Settings::default();
                let mut w = if i == 0 {
                    carrier::B2Writer::new(Vec::new(), &no_sender, &settings)
                } else {
                    carrier::B2Writer::continuing(Vec::new(), &no_sender, &settings)
                }
                .map_err(io_problem)?;
                for (p, sender, s) in chunk {
                    w.set_sender(sender, &b2_settings(s));
                    w.write(p).map_err(io_problem)?;
                }
                w.finish().map_err(io_problem)
            });
            (format!("b2-{stamp}.csv"), "text/csv; charset=Shift_JIS", joined(parts)?)
        }
        LabelFormat::Ehiden => {
            let parts = in_parts(&|i, chunk| {
                let settings = carrier::EhidenSettings::default();
                let mut w = if i == 0 {
                    carrier::EhidenWriter::new(Vec::new(), &no_sender, &settings)
                } else {
                    carrier::EhidenWriter::continuing(Vec::new(), &no_sender, &settings)
                }
                .map_err(io_problem)?;
                for (p, sender, s) in chunk {
                    w.set_sender(sender, &ehiden_settings(s));
                    w.write(p).map_err(io_problem)?;
                }
                w.finish().map_err(io_problem)
            });
            (format!("ehiden-{stamp}.csv"), "text/csv; charset=Shift_JIS", joined(parts)?)
        }
        LabelFormat::ClickPost => {
            let list: Vec<Parcel> = rows.iter().map(|(p, _, _)| (*p).clone()).collect();
            let settings =
                ClickPostSettings { file_stem: format!("clickpost-{stamp}"), ..ClickPostSettings::default() };
            let files = carrier::clickpost::files(&list, &settings);
            (format!("clickpost-{stamp}.zip"), "application/zip", carrier::clickpost::zip(&files))
        }
    };
    Ok(file)
}

/// A file's parts, in order, as one.
fn joined(parts: Vec<Result<Vec<u8>, Vec<Problem>>>) -> Result<Vec<u8>, Vec<Problem>> {
    let mut file = Vec::with_capacity(parts.iter().map(|p| p.as_ref().map_or(0, Vec::len)).sum());
    for part in parts {
        file.extend_from_slice(&part?);
    }
    Ok(file)
}

/// The same problem of the store's own settings is named once, not once per order.
fn dedup(problems: Vec<Problem>) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::with_capacity(problems.len());
    let mut of_store: Vec<Problem> = Vec::new();
    for p in problems {
        // Only a store's own problems (no order named) repeat from one order to the next.
        if !p.order_id.is_empty() {
            out.push(p);
        } else if !of_store.contains(&p) {
            of_store.push(p.clone());
            out.push(p);
        }
    }
    out
}

fn io_problem(e: std::io::Error) -> Vec<Problem> {
    vec![Problem {
        management_no: String::new(),
        order_id: String::new(),
        field: "ファイル",
        value: String::new(),
        message: format!("ファイルを書けませんでした: {e}"),
        replacement: None,
    }]
}

pub fn b2_settings(s: &Settings) -> carrier::B2Settings {
    carrier::B2Settings {
        customer_code: s.b2_customer_code.clone(),
        class_code: s.b2_class_code.clone(),
        freight_no: s.b2_freight_no.clone(),
    }
}

pub fn ehiden_settings(s: &Settings) -> carrier::EhidenSettings {
    let mut e = carrier::EhidenSettings { customer_code: s.ehiden_customer_code.clone(), ..Default::default() };
    let codes: Vec<&str> = s.ehiden_cool_codes.split(',').map(str::trim).collect();
    if let [normal, chilled, frozen] = codes[..] {
        e.cool_codes = [normal.to_owned(), chilled.to_owned(), frozen.to_owned()];
    }
    if s.ehiden_date_format == "slashed" {
        e.date_format = carrier::DateFormat::Slashed;
    }
    e
}

/// How a tracking upload's preview went.
#[derive(Debug)]
pub enum TrackingPreview {
    /// Recorded: open it with `db::shipping::upload`.
    Saved(i64),
    /// The same file was uploaded before.
    Again(i64),
    /// The file cannot be read: nothing recorded.
    Unreadable(String),
}

/// Reads an issued-data file, matches each row with a shipment of the reader's scope, and
/// records the preview. Nothing changes until [`apply_tracking`].
pub async fn preview_tracking(
    db: &Db,
    scope: &OrderScope,
    file_name: &str,
    bytes: &[u8],
    by: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<TrackingPreview> {
    let file = match carrier::tracking::read(bytes) {
        Ok(f) => f,
        Err(e) => return Ok(TrackingPreview::Unreadable(e.to_string())),
    };
    let rows = match_rows(db, scope, &file).await?;
    let hash = {
        use sha2::Digest;
        store::hex(&sha2::Sha256::digest(bytes))
    };
    let upload = store::NewUpload { hash: &hash, file_name, format: store::format_of(file.carrier), rows: &rows, by };
    Ok(match store::save_upload(db, scope.account, &upload, now).await? {
        Ok(id) => TrackingPreview::Saved(id),
        Err(id) => TrackingPreview::Again(id),
    })
}

/// Each row of the file, matched: by お客様管理番号 (B2, e飛伝), or for クリックポスト by the
/// recipient's name, postcode and address among shipments exported as クリックポスト without a
/// number. A row that matches nothing, or several, is unknown: never guessed.
async fn match_rows(db: &Db, scope: &OrderScope, file: &carrier::tracking::IssuedFile) -> sqlx::Result<Vec<UploadRow>> {
    let format = store::format_of(file.carrier);
    let management_no = |r: &carrier::IssuedRow| match &r.key {
        RowKey::ManagementNo(n) => n.clone(),
        RowKey::Recipient { .. } => String::new(),
    };
    let ids: Vec<i64> = file.rows.iter().filter_map(|r| store::shipment_of(&management_no(r))).collect();
    let shipments: HashMap<i64, Shipment> =
        store::shipments(db, scope, &ids).await?.into_iter().map(|s| (s.id, s)).collect();
    let clickpost = if format == LabelFormat::ClickPost { open_clickpost(db, scope).await? } else { Vec::new() };
    let pks: Vec<OrderPk> =
        shipments.values().map(|s| s.order_pk).chain(clickpost.iter().map(|(s, _)| s.order_pk)).collect();
    let orders: HashMap<OrderPk, ShipOrder> =
        store::orders(db, scope, &pks).await?.into_iter().map(|o| (o.pk, o)).collect();
    let settings = store::settings_of(db, scope.account, orders.values().map(|o| o.store_id).collect()).await?;
    let mut out = Vec::with_capacity(file.rows.len());
    for r in &file.rows {
        let mut row = UploadRow {
            line_no: r.line as i64,
            management_no: management_no(r),
            tracking_number: r.number.clone(),
            shipment_id: None,
            order_pk: None,
            outcome: "unknown".into(),
            message: String::new(),
            applied: false,
        };
        if let Some(problem) = &r.problem {
            row.outcome = "invalid".into();
            row.message = problem.clone();
            out.push(row);
            continue;
        }
        let found: Option<&Shipment> = if let RowKey::Recipient { zip, name, address } = &r.key {
            let wanted = recipient_key(name, zip, address);
            let hits: Vec<&Shipment> = clickpost.iter().filter(|(_, key)| *key == wanted).map(|(s, _)| s).collect();
            match hits[..] {
                [one] => Some(one),
                [] => None,
                _ => {
                    row.message =
                        "お届け先が同じ注文が複数あるため、どの注文か決められません。手入力で登録してください".into();
                    out.push(row);
                    continue;
                }
            }
        } else {
            store::shipment_of(&management_no(r)).and_then(|id| shipments.get(&id))
        };
        let Some(sh) = found else {
            if row.message.is_empty() {
                row.message = "このお客様管理番号の出荷が見つかりません（このアカウントで出力した送り状データの行ではありません）".into();
            }
            out.push(row);
            continue;
        };
        row.shipment_id = Some(sh.id);
        row.order_pk = Some(sh.order_pk);
        let Some(o) = orders.get(&sh.order_pk) else {
            row.message = "注文が見つかりません".into();
            out.push(row);
            continue;
        };
        match &sh.tracking_number {
            Some(n) if *n == r.number => {
                row.outcome = "same".into();
                row.message = "この伝票番号は登録済みです".into();
            }
            Some(n) => {
                row.outcome = "conflict".into();
                row.message =
                    format!("別の伝票番号（{n}）が登録されています。変えるときは注文のページで直してください");
            }
            None => match may_leave(&o.leave_facts(&settings[&o.store_id].0.prepay_methods), false) {
                Ok(()) => row.outcome = "matched".into(),
                Err(e @ Exclusion::Unpaid(_)) => {
                    row.outcome = "unpaid".into();
                    row.message = e.to_string();
                }
                Err(e) => {
                    row.outcome = if e == Exclusion::FraudHold { "held" } else { "refused" }.into();
                    row.message = e.to_string();
                }
            },
        }
        out.push(row);
    }
    Ok(out)
}

/// A recipient as Click Post's file and our order both name them: the postcode's digits, and the
/// name and address without spaces, NFKC-folded (full-width digits and letters as ASCII).
fn recipient_key(name: &str, zip: &str, address: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let fold =
        |s: &str| s.nfkc().filter(|c| !c.is_whitespace() && !matches!(c, '-' | '−' | 'ー' | '‐')).collect::<String>();
    let zip: String = zip.nfkc().filter(char::is_ascii_digit).collect();
    format!("{zip}|{}|{}", fold(name), fold(address))
}

/// Shipments exported as クリックポスト that have no number yet, with their recipient key.
async fn open_clickpost(db: &Db, scope: &OrderScope) -> sqlx::Result<Vec<(Shipment, String)>> {
    let open = store::open_shipments(db, scope, LabelFormat::ClickPost).await?;
    let pks: Vec<OrderPk> = open.iter().map(|s| s.order_pk).collect();
    let orders: HashMap<OrderPk, ShipOrder> =
        store::orders(db, scope, &pks).await?.into_iter().map(|o| (o.pk, o)).collect();
    Ok(open
        .into_iter()
        .filter_map(|s| {
            let o = orders.get(&s.order_pk)?;
            let key = recipient_key(
                &o.recipient_name(),
                &o.ship_zip_code,
                &format!("{}{}{}{}", o.ship_prefecture, o.ship_city, o.ship_address1, o.ship_address2),
            );
            Some((s, key))
        })
        .collect())
}

/// Applies a previewed upload: see [`store::apply_upload`].
pub async fn apply_tracking(
    db: &Db,
    scope: &OrderScope,
    upload_id: i64,
    ship_date: NaiveDate,
    confirm_unpaid: bool,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<store::Applied>> {
    let Some((head, _)) = store::upload(db, scope.account, upload_id).await? else { return Ok(None) };
    let carrier = LabelFormat::parse(&head.format).map_or(Carrier::Yamato, |f| f.carrier());
    let how = store::ApplyHow { carrier, ship_date, confirm_unpaid };
    store::apply_upload(db, scope, upload_id, &how, actor, now).await
}
