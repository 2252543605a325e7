//! ルール (issue 30): owners write the account's rules (conditions and actions, in an order
//! they choose), preview each against the newest orders before saving, and keep the 離島
//! postcode list; anyone who works orders runs the rules on chosen orders from the list.
//! What a rule means lives in `domain::rules`; applying it in `db::rules`.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};

use super::{
    error::{AppError, AppResult},
    input::{self, Form},
    render::{FlashKind, Layout, ok},
    session::{ClientIp, Merchant, Owner},
};
use crate::{
    app::AppState,
    carrier::LabelFormat,
    db::{
        audit,
        orders::HistoryActor,
        rules::{self, PreviewRow, RuleInput},
        stores::Store,
        tags::{self, Tag},
    },
    domain::{
        StoreId,
        rules::{
            Action, CONFIRM_SHARE_PERCENT, CommentIs, Condition, MANY_RULES, PREVIEW_ORDERS, RULE_TARGETS, Rule,
            RuleContext, RuleSpec, postcode,
        },
    },
};

/// A rule as the list shows it.
pub struct RuleLine {
    pub rule: Rule,
    pub stores: String,
    pub conditions: Vec<String>,
    pub actions: Vec<String>,
    pub broken: bool,
}

#[derive(Template)]
#[template(path = "rules/index.html")]
pub struct RulesPage {
    layout: Layout,
    lines: Vec<RuleLine>,
    many: bool,
    many_limit: usize,
    postcodes: String,
    postcode_count: usize,
}

fn store_names(stores: &[Store], ids: &[StoreId]) -> String {
    if ids.is_empty() {
        return "すべてのストア".to_owned();
    }
    ids.iter()
        .map(|id| {
            stores.iter().find(|s| s.id == *id).map_or_else(|| format!("（削除されたストア {id}）"), |s| s.name.clone())
        })
        .collect::<Vec<_>>()
        .join("、")
}

pub async fn index(State(state): State<AppState>, owner: Owner) -> AppResult<Response> {
    let account = owner.account_id();
    let rules = rules::list(&state.db, account).await?;
    let cx = rules::context(&state.db, account).await?;
    let stores = crate::db::stores::list(&state.db, account).await?;
    let many = rules.len() > MANY_RULES;
    let lines = rules
        .into_iter()
        .map(|rule| RuleLine {
            stores: store_names(&stores, &rule.stores),
            conditions: if rule.spec.conditions.is_empty() {
                vec!["すべての注文".to_owned()]
            } else {
                rule.spec.conditions.iter().map(Condition::describe).collect()
            },
            actions: rule.spec.actions.iter().map(|a| a.describe(&cx)).collect(),
            broken: rule.is_broken(&cx),
            rule,
        })
        .collect();
    let mut islands: Vec<String> = cx.islands.into_iter().collect();
    islands.sort();
    let page = RulesPage {
        layout: owner.layout("ルール").await?,
        lines,
        many,
        many_limit: MANY_RULES,
        postcode_count: islands.len(),
        postcodes: islands.iter().map(|p| format!("{}-{}", &p[..3], &p[3..])).collect::<Vec<_>>().join("\n"),
    };
    Ok(ok(&page))
}

/// The rule form's fields, as typed (so a refused form comes back as it was).
#[derive(Clone, Debug, Default)]
pub struct RuleForm {
    pub name: String,
    pub enabled: bool,
    pub stop_after: bool,
    pub match_all: bool,
    pub stores: Vec<i64>,
    pub pay_methods: String,
    pub pay_status: String,
    pub total_min: String,
    pub total_max: String,
    pub prefectures: String,
    pub remote_island: String,
    pub item_codes: String,
    pub options: String,
    pub comment: String,
    pub comment_words: String,
    pub delivery_requested: String,
    pub gift: String,
    pub fraud_hold: Vec<u8>,
    pub ship_methods: String,
    pub repeat_buyer: String,
    pub lines_min: String,
    pub lines_max: String,
    pub add_tags: Vec<i64>,
    pub remove_tags: Vec<i64>,
    pub status: String,
    pub memo: String,
    pub label_format: String,
    pub label_service: String,
    pub clear_delivery_date: bool,
}

/// A list typed with commas, 、 or line breaks.
fn words(s: &str) -> Vec<String> {
    s.split([',', '、', '\n', '，']).map(str::trim).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

fn yes_no(s: &str) -> Option<bool> {
    match s {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

fn yes_no_field(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

/// An amount or count typed with or without thousands separators and 円; `Err` names the field.
fn number(s: &str, what: &str, errors: &mut Vec<String>) -> Option<i64> {
    let t = s.trim().trim_end_matches('円').trim_end_matches('行').replace([',', '，'], "");
    if t.is_empty() {
        return None;
    }
    match t.parse::<i64>() {
        Ok(v) if v >= 0 => Some(v),
        _ => {
            errors.push(format!("{what}「{s}」は0以上の数字で入力してください（例: 10000）"));
            None
        }
    }
}

impl RuleForm {
    pub fn parse(pairs: &[(String, String)]) -> RuleForm {
        let field = |name: &str| input::field(pairs, name);
        let all =
            |name: &str| -> Vec<String> { pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect() };
        let ids = |name: &str| -> Vec<i64> { all(name).iter().filter_map(|v| v.parse().ok()).collect() };
        RuleForm {
            name: field("name"),
            enabled: !field("enabled").is_empty(),
            stop_after: !field("stop_after").is_empty(),
            match_all: !field("match_all").is_empty(),
            stores: ids("store"),
            pay_methods: field("pay_methods"),
            pay_status: field("pay_status"),
            total_min: field("total_min"),
            total_max: field("total_max"),
            prefectures: field("prefectures"),
            remote_island: field("remote_island"),
            item_codes: field("item_codes"),
            options: field("options"),
            comment: field("comment"),
            comment_words: field("comment_words"),
            delivery_requested: field("delivery_requested"),
            gift: field("gift"),
            fraud_hold: all("fraud_hold").iter().filter_map(|v| v.parse().ok()).filter(|v| *v <= 3).collect(),
            ship_methods: field("ship_methods"),
            repeat_buyer: field("repeat_buyer"),
            lines_min: field("lines_min"),
            lines_max: field("lines_max"),
            add_tags: ids("add_tag"),
            remove_tags: ids("remove_tag"),
            status: field("status"),
            memo: field("memo"),
            label_format: field("label_format"),
            label_service: field("label_service"),
            clear_delivery_date: !field("clear_delivery_date").is_empty(),
        }
    }

    /// The form a stored rule fills.
    pub fn of(rule: &Rule) -> RuleForm {
        let mut f = RuleForm {
            name: rule.name.clone(),
            enabled: rule.enabled,
            stop_after: rule.stop_after,
            match_all: rule.spec.match_all,
            stores: rule.stores.iter().map(|s| s.0).collect(),
            ..RuleForm::default()
        };
        let join = |l: &[String]| l.join("、");
        let opt = |v: &Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        for c in &rule.spec.conditions {
            match c {
                Condition::PayMethod(l) => f.pay_methods = join(l),
                Condition::PayStatus(l) => f.pay_status = l.first().map(|v| v.to_string()).unwrap_or_default(),
                Condition::Total { min, max } => (f.total_min, f.total_max) = (opt(min), opt(max)),
                Condition::Prefecture(l) => f.prefectures = join(l),
                Condition::RemoteIsland(b) => f.remote_island = yes_no_field(*b),
                Condition::ItemCode(l) => f.item_codes = join(l),
                Condition::ItemOption(l) => f.options = join(l),
                Condition::Comment(CommentIs::Present) => f.comment = "present".into(),
                Condition::Comment(CommentIs::Absent) => f.comment = "absent".into(),
                Condition::Comment(CommentIs::Contains(l)) => {
                    f.comment = "contains".into();
                    f.comment_words = join(l);
                }
                Condition::DeliveryRequested(b) => f.delivery_requested = yes_no_field(*b),
                Condition::Gift(b) => f.gift = yes_no_field(*b),
                Condition::FraudHold(l) => f.fraud_hold = l.clone(),
                Condition::ShipMethod(l) => f.ship_methods = join(l),
                Condition::RepeatBuyer(b) => f.repeat_buyer = yes_no_field(*b),
                Condition::Lines { min, max } => (f.lines_min, f.lines_max) = (opt(min), opt(max)),
            }
        }
        for a in &rule.spec.actions {
            match a {
                Action::AddTag(id) => f.add_tags.push(*id),
                Action::RemoveTag(id) => f.remove_tags.push(*id),
                Action::SetStatus(s) => f.status = s.clone(),
                Action::Memo(m) => f.memo = m.clone(),
                Action::Label { format, service } => {
                    f.label_format = format.clone();
                    f.label_service = service.clone().unwrap_or_default();
                }
                Action::ClearDeliveryDate => f.clear_delivery_date = true,
            }
        }
        f
    }

    /// The rule the form says, or why it cannot be saved (every problem, in Japanese).
    pub fn input(&self, stores: &[Store], tags: &[Tag]) -> Result<RuleInput, Vec<String>> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() {
            errors.push("ルールの名前を入力してください".to_owned());
        } else if name.chars().count() > 50 {
            errors.push("ルールの名前は50文字以内で入力してください".to_owned());
        }
        let mut conditions = Vec::new();
        let list = |s: &str| words(s);
        if !list(&self.pay_methods).is_empty() {
            conditions.push(Condition::PayMethod(list(&self.pay_methods)));
        }
        match self.pay_status.as_str() {
            "0" => conditions.push(Condition::PayStatus(vec![0])),
            "1" => conditions.push(Condition::PayStatus(vec![1])),
            _ => {}
        }
        let (min, max) = (
            number(&self.total_min, "合計金額の下限", &mut errors),
            number(&self.total_max, "合計金額の上限", &mut errors),
        );
        if min.is_some() || max.is_some() {
            conditions.push(Condition::Total { min, max });
        }
        if !list(&self.prefectures).is_empty() {
            conditions.push(Condition::Prefecture(list(&self.prefectures)));
        }
        if let Some(b) = yes_no(&self.remote_island) {
            conditions.push(Condition::RemoteIsland(b));
        }
        if !list(&self.item_codes).is_empty() {
            conditions.push(Condition::ItemCode(list(&self.item_codes)));
        }
        if !list(&self.options).is_empty() {
            conditions.push(Condition::ItemOption(list(&self.options)));
        }
        match self.comment.as_str() {
            "present" => conditions.push(Condition::Comment(CommentIs::Present)),
            "absent" => conditions.push(Condition::Comment(CommentIs::Absent)),
            "contains" if list(&self.comment_words).is_empty() => {
                errors.push("「ご要望欄に含む」の言葉を入力してください".to_owned())
            }
            "contains" => conditions.push(Condition::Comment(CommentIs::Contains(list(&self.comment_words)))),
            _ => {}
        }
        if let Some(b) = yes_no(&self.delivery_requested) {
            conditions.push(Condition::DeliveryRequested(b));
        }
        if let Some(b) = yes_no(&self.gift) {
            conditions.push(Condition::Gift(b));
        }
        if !self.fraud_hold.is_empty() {
            conditions.push(Condition::FraudHold(self.fraud_hold.clone()));
        }
        if !list(&self.ship_methods).is_empty() {
            conditions.push(Condition::ShipMethod(list(&self.ship_methods)));
        }
        if let Some(b) = yes_no(&self.repeat_buyer) {
            conditions.push(Condition::RepeatBuyer(b));
        }
        let (lmin, lmax) = (
            number(&self.lines_min, "商品行数の下限", &mut errors),
            number(&self.lines_max, "商品行数の上限", &mut errors),
        );
        if lmin.is_some() || lmax.is_some() {
            conditions.push(Condition::Lines { min: lmin, max: lmax });
        }
        let mut actions = Vec::new();
        for id in &self.add_tags {
            if tags.iter().any(|t| t.id == *id) {
                actions.push(Action::AddTag(*id));
            } else {
                errors.push("付けるタグが見つかりません（削除された可能性があります）".to_owned());
            }
        }
        for id in &self.remove_tags {
            if tags.iter().any(|t| t.id == *id) {
                actions.push(Action::RemoveTag(*id));
            } else {
                errors.push("外すタグが見つかりません（削除された可能性があります）".to_owned());
            }
        }
        if !self.status.is_empty() {
            match RULE_TARGETS.iter().find(|t| t.as_str() == self.status) {
                Some(t) => actions.push(Action::SetStatus(t.as_str().to_owned())),
                None => errors.push("ルールで変えられるステータスを選んでください".to_owned()),
            }
        }
        let memo = self.memo.trim();
        if memo.chars().count() > 200 {
            errors.push("社内メモに追記する文は200文字以内で入力してください".to_owned());
        } else if !memo.is_empty() {
            actions.push(Action::Memo(memo.to_owned()));
        }
        if !self.label_format.is_empty() {
            match LabelFormat::parse(&self.label_format) {
                Some(f) => {
                    let service = self.label_service.trim();
                    if !service.is_empty()
                        && (f != LabelFormat::B2
                            || !crate::carrier::b2::service_types().iter().any(|(c, _)| *c == service))
                    {
                        errors.push(format!("送り状種類「{service}」はB2クラウドの種類にありません（ヤマト B2クラウドのときだけ選べます）"));
                    }
                    actions.push(Action::Label {
                        format: f.as_str().to_owned(),
                        service: (!service.is_empty()).then(|| service.to_owned()),
                    });
                }
                None => errors.push("送り状の種類を選んでください".to_owned()),
            }
        }
        if self.clear_delivery_date {
            actions.push(Action::ClearDeliveryDate);
        }
        let chosen: Vec<StoreId> = self.stores.iter().map(|s| StoreId(*s)).collect();
        if chosen.iter().any(|s| !stores.iter().any(|x| x.id == *s)) {
            errors.push("選んだストアが見つかりません".to_owned());
        }
        let spec = RuleSpec { conditions, actions, match_all: self.match_all };
        errors.extend(spec.refusals());
        if !errors.is_empty() {
            errors.dedup();
            return Err(errors);
        }
        Ok(RuleInput { name, enabled: self.enabled, stores: chosen, spec, stop_after: self.stop_after })
    }
}

#[derive(Template)]
#[template(path = "rules/edit.html")]
pub struct EditPage {
    layout: Layout,
    /// `None`: a new rule.
    id: Option<i64>,
    form: RuleForm,
    stores: Vec<Store>,
    tags: Vec<Tag>,
    targets: Vec<(&'static str, &'static str)>,
    formats: Vec<(&'static str, &'static str)>,
    services: &'static [(&'static str, &'static str)],
    errors: Vec<String>,
    warnings: Vec<String>,
    preview: Option<Preview>,
    /// The preview touches more than the share: saving needs the box ticked.
    needs_confirm: bool,
    confirm_share: usize,
}

/// A preview's figures and rows.
pub struct Preview {
    pub rows: Vec<PreviewRow>,
    pub looked_at: usize,
    pub percent: usize,
}

impl EditPage {
    fn checked(list: &[i64], id: &i64) -> bool {
        list.contains(id)
    }

    pub fn store_checked(&self, id: &StoreId) -> bool {
        Self::checked(&self.form.stores, &id.0)
    }

    pub fn add_checked(&self, id: &i64) -> bool {
        Self::checked(&self.form.add_tags, id)
    }

    pub fn remove_checked(&self, id: &i64) -> bool {
        Self::checked(&self.form.remove_tags, id)
    }

    pub fn hold_checked(&self, code: &u8) -> bool {
        self.form.fraud_hold.contains(code)
    }
}

/// What the form page says besides the form: why it was not saved, what to mind, the preview
/// and whether saving needs the confirmation.
#[derive(Default)]
struct Said {
    errors: Vec<String>,
    warnings: Vec<String>,
    preview: Option<Preview>,
    needs_confirm: bool,
}

async fn edit_page(
    state: &AppState,
    owner: &Owner,
    id: Option<i64>,
    form: RuleForm,
    said: Said,
) -> AppResult<EditPage> {
    let account = owner.account_id();
    let Said { errors, warnings, preview, needs_confirm } = said;
    Ok(EditPage {
        layout: owner.layout(if id.is_some() { "ルールの編集" } else { "新しいルール" }).await?,
        id,
        form,
        stores: crate::db::stores::list(&state.db, account).await?,
        tags: tags::list(&state.db, account).await?,
        targets: RULE_TARGETS.iter().map(|t| (t.as_str(), t.label())).collect(),
        formats: LabelFormat::ALL.iter().map(|f| (f.as_str(), f.label())).collect(),
        services: crate::carrier::b2::service_types(),
        errors,
        warnings,
        preview,
        needs_confirm,
        confirm_share: CONFIRM_SHARE_PERCENT,
    })
}

pub async fn new(State(state): State<AppState>, owner: Owner) -> AppResult<Response> {
    let form = RuleForm { enabled: true, ..RuleForm::default() };
    Ok(ok(&edit_page(&state, &owner, None, form, Said::default()).await?))
}

pub async fn edit(State(state): State<AppState>, owner: Owner, Path(rule_id): Path<i64>) -> AppResult<Response> {
    let rule = rules::get(&state.db, owner.account_id(), rule_id).await?.ok_or(AppError::NotFound)?;
    let cx = rules::context(&state.db, owner.account_id()).await?;
    let mut errors = Vec::new();
    if rule.is_broken(&cx) {
        errors.push(broken_message(&rule));
    }
    let warnings = rule.spec.warnings();
    Ok(ok(&edit_page(&state, &owner, Some(rule_id), RuleForm::of(&rule), Said { errors, warnings, ..Said::default() })
        .await?))
}

fn broken_message(rule: &Rule) -> String {
    format!(
        "ルール「{}」は削除されたタグを使っているため実行されていません。動作のタグを選び直して保存してください",
        rule.name
    )
}

pub async fn create(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    submit(state, owner, ip, None, pairs).await
}

pub async fn update(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(rule_id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    // Another account's rule is not found, before anything typed is read.
    rules::get(&state.db, owner.account_id(), rule_id).await?.ok_or(AppError::NotFound)?;
    submit(state, owner, ip, Some(rule_id), pairs).await
}

/// 「プレビュー」 runs the rule as typed against the newest orders; 「保存」 previews too, and
/// asks for confirmation when the rule would touch more than the share of them.
async fn submit(
    state: AppState,
    owner: Owner,
    ip: String,
    id: Option<i64>,
    pairs: Vec<(String, String)>,
) -> AppResult<Response> {
    let account = owner.account_id();
    let form = RuleForm::parse(&pairs);
    let saving = input::field(&pairs, "intent") == "save";
    let confirmed = !input::field(&pairs, "confirm").is_empty();
    let stores = crate::db::stores::list(&state.db, account).await?;
    let tag_list = tags::list(&state.db, account).await?;
    let refused = |errors: Vec<String>, form: RuleForm| async {
        let page = edit_page(&state, &owner, id, form, Said { errors, ..Said::default() }).await?;
        Ok::<_, AppError>((StatusCode::UNPROCESSABLE_ENTITY, ok(&page)).into_response())
    };
    let input = match form.input(&stores, &tag_list) {
        Ok(input) => input,
        Err(errors) => return refused(errors, form).await,
    };
    let warnings = input.spec.warnings();
    let rule = Rule {
        id: id.unwrap_or(0),
        name: input.name.clone(),
        position: 0,
        enabled: true,
        stores: input.stores.clone(),
        spec: input.spec.clone(),
        stop_after: input.stop_after,
    };
    let scope = owner.scope().await?;
    let (rows, looked_at) = rules::preview(&state.db, &scope, &rule, PREVIEW_ORDERS).await?;
    let percent = (rows.len() * 100).checked_div(looked_at).unwrap_or(0);
    let over = looked_at > 0 && rows.len() * 100 > looked_at * CONFIRM_SHARE_PERCENT;
    let preview = Preview { rows, looked_at, percent };
    if !saving || (over && !confirmed) {
        let page = edit_page(
            &state,
            &owner,
            id,
            form,
            Said { warnings, preview: Some(preview), needs_confirm: over, ..Said::default() },
        )
        .await?;
        return Ok(ok(&page));
    }
    if rules::save(&state.db, account, id, &input, crate::db::now()).await?.is_none() {
        return Err(AppError::NotFound);
    }
    let verb = if id.is_some() { "変更" } else { "作成" };
    owner.audit(audit::Action::RulesChanged, &format!("ルール「{}」を{verb}", input.name), &ip).await?;
    let mut message = format!("ルール「{}」を保存しました（次に取り込む注文から適用されます）", input.name);
    if !warnings.is_empty() {
        message.push_str(&format!("。注意: {}", warnings.join("。")));
    }
    owner.flash(FlashKind::Success, message).await?;
    Ok(Redirect::to("/rules").into_response())
}

pub async fn delete(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(rule_id): Path<i64>,
) -> AppResult<Response> {
    let rule = rules::get(&state.db, owner.account_id(), rule_id).await?.ok_or(AppError::NotFound)?;
    if !rules::delete(&state.db, owner.account_id(), rule_id).await? {
        return Err(AppError::NotFound);
    }
    owner.audit(audit::Action::RulesChanged, &format!("ルール「{}」を削除", rule.name), &ip).await?;
    owner.flash(FlashKind::Success, format!("ルール「{}」を削除しました", rule.name)).await?;
    Ok(Redirect::to("/rules").into_response())
}

/// 「上へ」「下へ」: `dir` is `up` or `down`.
pub async fn move_rule(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Path(rule_id): Path<i64>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let rule = rules::get(&state.db, owner.account_id(), rule_id).await?.ok_or(AppError::NotFound)?;
    let up = input::field(&pairs, "dir") == "up";
    if rules::move_rule(&state.db, owner.account_id(), rule_id, up).await? {
        let dir = if up { "上" } else { "下" };
        owner.audit(audit::Action::RulesChanged, &format!("ルール「{}」を{dir}へ移動", rule.name), &ip).await?;
    }
    Ok(Redirect::to(&format!("/rules#rule-{rule_id}")).into_response())
}

/// The 離島 postcode list: seven digits per line (hyphens and full-width digits accepted).
pub async fn set_islands(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let text = input::field(&pairs, "postcodes");
    let mut codes = Vec::new();
    let mut bad = Vec::new();
    for w in words(&text) {
        match postcode(&w) {
            Some(c) => codes.push(c),
            None => bad.push(w),
        }
    }
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(5).map(|b| format!("「{b}」")).collect();
        owner
            .flash(
                FlashKind::Error,
                format!("郵便番号は7桁の数字で入力してください: {}（変えていません）", shown.join("、")),
            )
            .await?;
        return Ok(Redirect::to("/rules#islands").into_response());
    }
    codes.sort();
    codes.dedup();
    rules::set_islands(&state.db, owner.account_id(), &codes).await?;
    owner.audit(audit::Action::RulesChanged, &format!("離島の郵便番号を{}件に更新", codes.len()), &ip).await?;
    owner.flash(FlashKind::Success, format!("離島の郵便番号を{}件保存しました", codes.len())).await?;
    Ok(Redirect::to("/rules#islands").into_response())
}

/// The order list's 「ルールを適用」: the account's rules (or the one chosen) on the ticked
/// orders of the reader's scope, as one run by hand.
pub async fn run_on_orders(
    State(state): State<AppState>,
    me: Merchant,
    Form(pairs): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let pks = input::ticked_orders(&pairs, 1000);
    let back = input::field(&pairs, "back");
    let back = if back.starts_with("/orders") { back } else { "/orders".to_owned() };
    if pks.is_empty() {
        me.flash(FlashKind::Error, "注文を選んでください（変えていません）").await?;
        return Ok(Redirect::to(&back).into_response());
    }
    let scope = me.scope().await?;
    let only = match input::field(&pairs, "rule").as_str() {
        "" | "all" => None,
        id => match id.parse::<i64>().ok() {
            Some(id) if rules::get(&state.db, scope.account, id).await?.is_some() => Some(id),
            _ => {
                me.flash(FlashKind::Error, "そのルールはありません（変えていません）").await?;
                return Ok(Redirect::to(&back).into_response());
            }
        },
    };
    let actor = HistoryActor::User(me.user.email.clone());
    let out = rules::run_on_orders(&state.db, &scope, &pks, only, &actor, crate::db::now()).await?;
    let message = if out.applied == 0 {
        format!("選んだ{}件の注文に当てはまるルールはありませんでした", pks.len())
    } else {
        format!("{}件の注文にルールを適用しました（のべ{}件。各注文の履歴に内容があります）", out.orders, out.applied)
    };
    me.flash(FlashKind::Success, message).await?;
    Ok(Redirect::to(&back).into_response())
}

/// The rules a person may choose to run (the order list's menu).
pub async fn runnable(state: &AppState, me: &Merchant) -> AppResult<Vec<(i64, String)>> {
    let cx: RuleContext = rules::context(&state.db, me.account_id()).await?;
    Ok(rules::list(&state.db, me.account_id())
        .await?
        .into_iter()
        .filter(|r| r.enabled && !r.is_broken(&cx))
        .map(|r| (r.id, r.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn a_typed_rule_becomes_its_conditions_and_back() {
        let tags = vec![Tag { id: 7, name: "離島確認".into(), color: "red".into(), stops_shipping: true }];
        let form = RuleForm::parse(&pairs(&[
            ("name", "沖縄"),
            ("prefectures", "沖縄県、鹿児島県"),
            ("total_min", "10,000円"),
            ("comment", "contains"),
            ("comment_words", "急ぎ, 至急"),
            ("fraud_hold", "1"),
            ("add_tag", "7"),
            ("status", "on_hold"),
            ("label_format", "b2"),
            ("label_service", "0"),
            ("clear_delivery_date", "on"),
        ]));
        let input = form.input(&[], &tags).unwrap();
        assert_eq!(input.spec.conditions.len(), 4);
        assert!(input.spec.conditions.contains(&Condition::Total { min: Some(10_000), max: None }));
        assert_eq!(input.spec.actions.len(), 4);
        let rule = Rule {
            id: 1,
            name: input.name.clone(),
            position: 1,
            enabled: true,
            stores: vec![],
            spec: input.spec.clone(),
            stop_after: false,
        };
        let again = RuleForm::of(&rule).input(&[], &tags).unwrap();
        assert_eq!(again.spec, input.spec);
    }

    #[test]
    fn bad_input_is_refused_with_every_reason() {
        let form = RuleForm::parse(&pairs(&[
            ("name", ""),
            ("total_min", "abc"),
            ("prefectures", "オキナワ"),
            ("add_tag", "99"),
            ("label_format", "b2"),
            ("label_service", "Z"),
        ]));
        let errors = form.input(&[], &[]).unwrap_err();
        for want in
            ["名前を入力", "合計金額の下限「abc」", "都道府県「オキナワ」", "タグが見つかりません", "送り状種類「Z」"]
        {
            assert!(errors.iter().any(|e| e.contains(want)), "{want}: {errors:?}");
        }
        // No condition and no 「すべての注文」.
        let errors = RuleForm::parse(&pairs(&[("name", "x"), ("memo", "確認")])).input(&[], &[]).unwrap_err();
        assert!(errors.iter().any(|e| e.contains("条件がありません")), "{errors:?}");
    }
}
