//! The audit log page for owners: newest first, paged by entry ID, filtered by actor kind
//! (user / job / support), kind of entry, store and period; and its CSV export (UTF-8 with BOM).

use super::input::Query;
use askama::Template;
use axum::{
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Deserialize;

use super::{
    csv,
    error::{AppError, AppResult},
    render::{Layout, ok},
    session::{ClientIp, Owner},
};
use crate::{
    app::AppState,
    db::{
        audit::{self, Action, ActorKind, Entry, Filter},
        stores::{self, StoreLink},
    },
    domain::{StoreId, jst},
};

const PAGE_SIZE: i64 = 50;
/// Rows read at a time by the export.
const EXPORT_BATCH: i64 = 1000;

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

fn day_start(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(jst::offset()).single())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

impl AuditQuery {
    fn filter(&self, stores: &[StoreLink]) -> AppResult<Filter> {
        let date = |s: &str| -> AppResult<Option<NaiveDate>> {
            match s.trim() {
                "" => Ok(None),
                s => jst::parse_date(s).map(Some).ok_or(AppError::BadRequest("audit date")),
            }
        };
        // Entries are matched by the store they were written about, not by its name; a store
        // that is not one of the account's (another account's, or deleted) is 404.
        let store = match self.store.trim() {
            "" => None,
            s => {
                let id = StoreId(s.parse().map_err(|_| AppError::BadRequest("audit store"))?);
                Some(stores.iter().find(|l| l.id == id).ok_or(AppError::NotFound)?.id)
            }
        };
        Ok(Filter {
            actor: ActorKind::parse(self.actor.trim()),
            action: Action::ALL.into_iter().find(|a| a.code() == self.action.trim()),
            store,
            from: date(&self.from)?.map(day_start),
            until: date(&self.to)?.map(|d| day_start(d) + Duration::days(1)),
        })
    }

    /// The query string of these filters (for the next page and the export).
    pub fn params(&self) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("store", &self.store),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.trim().is_empty() {
                url.append_pair(k, v.trim());
            }
        }
        url.finish()
    }
}

#[derive(Template)]
#[template(path = "audit/index.html")]
pub struct AuditPage {
    layout: Layout,
    entries: Vec<Entry>,
    next_before: Option<i64>,
    q: AuditQuery,
    stores: Vec<StoreLink>,
    kinds: Vec<(&'static str, &'static str)>,
    actors: [ActorKind; 3],
}

impl AuditPage {
    pub fn next_link(&self, before: i64) -> String {
        let params = self.q.params();
        if params.is_empty() { format!("/audit?before={before}") } else { format!("/audit?{params}&before={before}") }
    }

    pub fn csv_link(&self) -> String {
        let params = self.q.params();
        if params.is_empty() { "/audit.csv".into() } else { format!("/audit.csv?{params}") }
    }
}

pub async fn index(State(state): State<AppState>, owner: Owner, Query(q): Query<AuditQuery>) -> AppResult<Response> {
    let stores = stores::links(&state.db, owner.account_id()).await?;
    let filter = q.filter(&stores)?;
    let scope = owner.scope().await?;
    let mut entries = audit::search(&state.db, &scope, &filter, q.before, PAGE_SIZE + 1).await?;
    let next_before = if entries.len() as i64 > PAGE_SIZE {
        entries.truncate(PAGE_SIZE as usize);
        entries.last().map(|e| e.id)
    } else {
        None
    };
    let kinds = Action::ALL.into_iter().map(|a| (a.code(), Action::label_for_code(a.code()))).collect();
    let layout = owner.layout("監査ログ").await?;
    Ok(ok(&AuditPage { layout, entries, next_before, q, stores, kinds, actors: ActorKind::ALL }))
}

/// The filtered log as CSV (UTF-8 with BOM, for Excel), newest first. The export itself is
/// recorded.
pub async fn download(
    State(state): State<AppState>,
    owner: Owner,
    ClientIp(ip): ClientIp,
    Query(q): Query<AuditQuery>,
) -> AppResult<Response> {
    let stores = stores::links(&state.db, owner.account_id()).await?;
    let filter = q.filter(&stores)?;
    let scope = owner.scope().await?;
    let mut out = String::new();
    csv::record(&mut out, ["日時", "操作者の種類", "操作者", "操作", "内容", "IPアドレス"]);
    let mut before = None;
    loop {
        let batch = audit::search(&state.db, &scope, &filter, before, EXPORT_BATCH).await?;
        for e in &batch {
            let at = crate::web::render::jst(e.created_at);
            csv::record(
                &mut out,
                [
                    at.as_str(),
                    e.actor_kind().label(),
                    &e.actor,
                    e.action_label(),
                    &e.detail,
                    e.ip.as_deref().unwrap_or(""),
                ],
            );
        }
        if (batch.len() as i64) < EXPORT_BATCH {
            break;
        }
        before = batch.last().map(|e| e.id);
    }
    owner.audit(Action::AuditExported, &format!("CSV出力: {}", q.params()), &ip).await?;
    let encoding = csv::Encoding::Utf8Bom;
    let name = format!("audit-{}.csv", Utc::now().with_timezone(&jst::offset()).format("%Y%m%d-%H%M"));
    Ok((
        [
            (header::CONTENT_TYPE, encoding.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from([b"\xEF\xBB\xBF".as_slice(), &encoding.encode(&out)].concat()),
    )
        .into_response())
}
