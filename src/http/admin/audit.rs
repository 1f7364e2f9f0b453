//! `/v1/audit-events`: the audit trail, newest first.

use actix_web::{HttpRequest, HttpResponse, web};
use uuid::Uuid;

use super::{AuditPage, Paging, page};
use crate::AppState;
use crate::audit::{self, AuditFilter};
use crate::error::ApiError;
use crate::http::auth::AdminRead;
use crate::http::docs::{AuthErrors, QueryErrors};
use crate::http::extract::StrictQuery;

/// List audit events, newest first, one page at a time.
#[utoipa::path(
    get, path = "/v1/audit-events", tag = "audit",
    security(("bearer" = [])),
    params(
        ("api_key_id" = Option<String>, Query, format = Uuid, description = "Only events of this key"),
        ("action" = Option<String>, Query, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", description = "Only events of this action, e.g. api_key.created (empty: any)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "Page size [50]"),
        ("cursor" = Option<String>, Query, pattern = r"^[0-9]{1,16}\.[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description = "`next_cursor` of the previous page"),
    ),
    responses((status = 200, description = "One page of events", body = AuditPage), AuthErrors, QueryErrors)
)]
pub async fn list_audit_events(
    _: AdminRead,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let mut q = StrictQuery::parse(&req, &["api_key_id", "action", "limit", "cursor"])?;
    let api_key_id = q.get("api_key_id");
    if api_key_id
        .as_deref()
        .is_some_and(|id| Uuid::parse_str(id).is_err())
    {
        q.invalid("api_key_id", "must be a key id (uuid)");
    }
    let filter = AuditFilter {
        api_key_id,
        action: q.text("action"),
    };
    let paging = Paging::read(&mut q);
    q.finish()?;
    let (limit, after) = (paging.limit, paging.after);
    let events = state
        .db
        .run(move |conn| audit::list(conn, &filter, after, limit + 1))
        .await?;
    let rows = page(events, limit, |e| (e.occurred_at, e.id.clone()));
    Ok(HttpResponse::Ok().json(AuditPage {
        data: rows.data,
        next_cursor: rows.next_cursor,
    }))
}
