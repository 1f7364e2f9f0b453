//! The audit trail: one row per admin change, written in the same transaction
//! as the change, plus aggregated rows for denied token exchanges.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use crate::db::schema::audit_events::{self, dsl};
use crate::db::{DbConnection, DbError};

/// Who made a change.
#[derive(Clone, Debug)]
pub struct Actor {
    /// The admin key's id, or `cli`.
    pub id: String,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// The command-line tool.
    pub fn cli() -> Self {
        Self {
            id: "cli".to_owned(),
            ip: None,
            request_id: None,
        }
    }
}

/// The actions we record.
pub mod action {
    pub const CREATED: &str = "api_key.created";
    pub const UPDATED: &str = "api_key.updated";
    pub const ROTATED: &str = "api_key.rotated";
    pub const REVOKED: &str = "api_key.revoked";
    /// Denied exchanges, aggregated per key and reason over a window.
    pub const EXCHANGE_DENIED: &str = "token.exchange_denied";
}

/// One stored event.
#[derive(Queryable, Selectable, Insertable, Debug, Clone)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub api_key_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Option<String>,
}

/// An event as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub api_key_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    /// What changed (e.g. the fields of an update), per action.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

impl From<AuditRow> for AuditEvent {
    fn from(r: AuditRow) -> Self {
        Self {
            id: r.id,
            occurred_at: r.occurred_at.and_utc(),
            actor: r.actor,
            action: r.action,
            api_key_id: r.api_key_id,
            ip: r.ip,
            request_id: r.request_id,
            details: r.details.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// Writes one event.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &str,
    api_key_id: Option<Uuid>,
    details: Option<serde_json::Value>,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let row = AuditRow {
        id: Uuid::new_v4().to_string(),
        occurred_at: at.naive_utc(),
        actor: actor.id.clone(),
        action: action.to_owned(),
        api_key_id: api_key_id.map(|i| i.to_string()),
        ip: actor.ip.clone(),
        request_id: actor.request_id.clone(),
        details: details.map(|d| d.to_string()),
    };
    diesel::insert_into(dsl::audit_events)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Filters of the audit listing.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub api_key_id: Option<String>,
    pub action: Option<String>,
}

/// One page of events, newest first, strictly after `(occurred_at, id)`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: i64,
) -> Result<Vec<AuditEvent>, DbError> {
    let mut q = dsl::audit_events.select(AuditRow::as_select()).into_boxed();
    if let Some(k) = &filter.api_key_id {
        q = q.filter(dsl::api_key_id.eq(k.clone()));
    }
    if let Some(a) = &filter.action {
        q = q.filter(dsl::action.eq(a.clone()));
    }
    if let Some((at, id)) = after {
        let at = at.naive_utc();
        q = q.filter(
            dsl::occurred_at
                .lt(at)
                .or(dsl::occurred_at.eq(at).and(dsl::id.lt(id))),
        );
    }
    Ok(q.order((dsl::occurred_at.desc(), dsl::id.desc()))
        .limit(limit)
        .load::<AuditRow>(conn)?
        .into_iter()
        .map(AuditEvent::from)
        .collect())
}
