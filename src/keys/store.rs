//! Queries on `api_keys`. Every function takes a connection and runs on the
//! caller's (blocking) thread; the rows convert to domain types here.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use super::credentials::{ClientJwks, CredentialType, FederationRule};
use super::{ApiKey, Environment, KeyStatus};
use crate::db::schema::api_keys::{self, dsl};
use crate::db::{DbConnection, DbError};

/// One row of `api_keys`, as stored.
#[derive(Queryable, Selectable, Insertable, Clone)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyRow {
    pub id: String,
    pub api_key: String,
    pub name: String,
    pub subject: String,
    pub scopes: String,
    pub environment: String,
    pub secret_hash: String,
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    pub allowed_ips: String,
    pub rate_limit_per_minute: Option<i64>,
    pub audiences: String,
    pub token_ttl_seconds: Option<i64>,
    pub claims: String,
    pub metadata: String,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub require_dpop: bool,
    pub credential_type: String,
    pub jwks: Option<String>,
    pub federation: String,
}

/// The columns a PATCH may change. `None` writes NULL.
#[derive(AsChangeset, Debug, Clone)]
#[diesel(table_name = api_keys, treat_none_as_null = true)]
pub struct KeyChanges {
    pub name: String,
    pub scopes: String,
    pub allowed_ips: String,
    pub rate_limit_per_minute: Option<i64>,
    pub audiences: String,
    pub token_ttl_seconds: Option<i64>,
    pub claims: String,
    pub metadata: String,
    pub expires_at: Option<NaiveDateTime>,
    pub require_dpop: bool,
    pub jwks: Option<String>,
    pub federation: String,
    pub updated_at: NaiveDateTime,
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

fn corrupt(what: &str, id: &str) -> DbError {
    DbError::Other(format!("api_keys row {id}: bad {what}"))
}

fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

impl ApiKeyRow {
    /// The row that stores `key`.
    pub fn from_key(key: &ApiKey) -> Self {
        Self {
            id: key.id.to_string(),
            api_key: key.api_key.clone(),
            name: key.name.clone(),
            subject: key.subject.clone(),
            scopes: key.scopes.join(" "),
            environment: key.environment.as_str().to_owned(),
            secret_hash: key.secret_hash.clone(),
            previous_secret_hash: key.previous_secret_hash.clone(),
            previous_secret_expires_at: key.previous_secret_expires_at.map(naive),
            allowed_ips: join_ips(&key.allowed_ips),
            rate_limit_per_minute: key.rate_limit_per_minute.map(i64::from),
            audiences: key.audiences.join(" "),
            token_ttl_seconds: key.token_ttl_seconds.map(i64::from),
            claims: serde_json::Value::Object(key.claims.clone()).to_string(),
            metadata: serde_json::Value::Object(key.metadata.clone()).to_string(),
            expires_at: key.expires_at.map(naive),
            created_at: naive(key.created_at),
            updated_at: naive(key.updated_at),
            last_used_at: key.last_used_at.map(naive),
            revoked_at: key.revoked_at.map(naive),
            require_dpop: key.require_dpop,
            credential_type: key.credential_type.as_str().to_owned(),
            jwks: key.jwks.as_ref().map(|j| j.json.to_string()),
            federation: rules_json(&key.federation),
        }
    }

    /// The domain key; a row that does not parse is reported, never guessed.
    pub fn into_key(self) -> Result<ApiKey, DbError> {
        let id = Uuid::parse_str(&self.id).map_err(|_| corrupt("id", &self.id))?;
        let environment = Environment::parse(&self.environment)
            .ok_or_else(|| corrupt("environment", &self.id))?;
        let allowed_ips = words(&self.allowed_ips)
            .iter()
            .map(|c| c.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| corrupt("allowed_ips", &self.id))?;
        let object = |text: &str, what: &str| match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(m)) => Ok(m),
            _ => Err(corrupt(what, &self.id)),
        };
        let small = |v: Option<i64>, what: &str| {
            v.map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt(what, &self.id))
        };
        let credential_type = CredentialType::parse(&self.credential_type)
            .ok_or_else(|| corrupt("credential_type", &self.id))?;
        // Parsed once per read, so exchanges use ready keys.
        let jwks = self
            .jwks
            .as_deref()
            .map(|text| {
                serde_json::from_str(text)
                    .ok()
                    .and_then(|v| ClientJwks::parse(&v).ok())
                    .ok_or_else(|| corrupt("jwks", &self.id))
            })
            .transpose()?;
        let federation: Vec<FederationRule> =
            serde_json::from_str(&self.federation).map_err(|_| corrupt("federation", &self.id))?;
        Ok(ApiKey {
            id,
            credential_type,
            jwks,
            federation,
            claims: object(&self.claims, "claims")?,
            metadata: object(&self.metadata, "metadata")?,
            rate_limit_per_minute: small(self.rate_limit_per_minute, "rate_limit_per_minute")?,
            token_ttl_seconds: small(self.token_ttl_seconds, "token_ttl_seconds")?,
            scopes: words(&self.scopes),
            audiences: words(&self.audiences),
            allowed_ips,
            environment,
            previous_secret_expires_at: self.previous_secret_expires_at.map(utc),
            expires_at: self.expires_at.map(utc),
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
            last_used_at: self.last_used_at.map(utc),
            revoked_at: self.revoked_at.map(utc),
            require_dpop: self.require_dpop,
            api_key: self.api_key,
            name: self.name,
            subject: self.subject,
            secret_hash: self.secret_hash,
            previous_secret_hash: self.previous_secret_hash,
        })
    }
}

/// The stored form of federation rules.
pub fn rules_json(rules: &[FederationRule]) -> String {
    serde_json::to_string(rules).unwrap_or_else(|_| "[]".into())
}

/// Space-separated CIDRs.
pub fn join_ips(ips: &[ipnet::IpNet]) -> String {
    ips.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Inserts a new key.
pub fn insert(conn: &mut DbConnection, key: &ApiKey) -> Result<(), DbError> {
    diesel::insert_into(dsl::api_keys)
        .values(ApiKeyRow::from_key(key))
        .execute(conn)?;
    Ok(())
}

/// Finds a key by its id.
pub fn find_by_id(conn: &mut DbConnection, id: Uuid) -> Result<Option<ApiKey>, DbError> {
    dsl::api_keys
        .find(id.to_string())
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?
        .map(ApiKeyRow::into_key)
        .transpose()
}

/// Finds a key by its public `api_key`.
pub fn find_by_api_key(conn: &mut DbConnection, api_key: &str) -> Result<Option<ApiKey>, DbError> {
    dsl::api_keys
        .filter(dsl::api_key.eq(api_key))
        .select(ApiKeyRow::as_select())
        .first(conn)
        .optional()?
        .map(ApiKeyRow::into_key)
        .transpose()
}

/// Filters of the key listing.
#[derive(Debug, Default, Clone)]
pub struct KeyFilter {
    pub status: Option<KeyStatus>,
    pub environment: Option<Environment>,
    pub subject: Option<String>,
    /// Part of the name, any case (ASCII letters only on SQLite, whose
    /// `lower()` knows no others).
    pub name: Option<String>,
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// A `LIKE` pattern matching `part` anywhere, its wildcards escaped with `\`.
fn contains_pattern(part: &str) -> String {
    let mut pattern = String::with_capacity(part.len() + 2);
    pattern.push('%');
    for c in part.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Keyset position: list rows strictly after this one, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// One page of keys, newest first (`created_at`, then `id`, descending).
pub fn list(
    conn: &mut DbConnection,
    filter: &KeyFilter,
    after: Option<&Position>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<ApiKey>, DbError> {
    let mut q = dsl::api_keys.select(ApiKeyRow::as_select()).into_boxed();
    let now = naive(now);
    q = match filter.status {
        None => q,
        Some(KeyStatus::Revoked) => q.filter(dsl::revoked_at.is_not_null()),
        Some(KeyStatus::Expired) => q
            .filter(dsl::revoked_at.is_null())
            .filter(dsl::expires_at.le(now)),
        Some(KeyStatus::Active) => q
            .filter(dsl::revoked_at.is_null())
            .filter(dsl::expires_at.is_null().or(dsl::expires_at.gt(now))),
    };
    if let Some(env) = filter.environment {
        q = q.filter(dsl::environment.eq(env.as_str()));
    }
    if let Some(subject) = &filter.subject {
        q = q.filter(dsl::subject.eq(subject.clone()));
    }
    if let Some(name) = &filter.name {
        q = q.filter(lower(dsl::name).like(contains_pattern(name)).escape('\\'));
    }
    if let Some(pos) = after {
        let at = naive(pos.created_at);
        q = q.filter(
            dsl::created_at
                .lt(at)
                .or(dsl::created_at.eq(at).and(dsl::id.lt(pos.id.clone()))),
        );
    }
    q.order((dsl::created_at.desc(), dsl::id.desc()))
        .limit(limit)
        .load::<ApiKeyRow>(conn)?
        .into_iter()
        .map(ApiKeyRow::into_key)
        .collect()
}

/// Takes the row's write lock for the rest of the transaction (a no-op
/// update: `FOR UPDATE` does not compile through the two-backend connection,
/// and on SQLite the transaction already holds the database's write lock).
pub fn lock_row(conn: &mut DbConnection, id: Uuid) -> Result<usize, DbError> {
    Ok(diesel::update(dsl::api_keys.find(id.to_string()))
        .set(dsl::updated_at.eq(dsl::updated_at))
        .execute(conn)?)
}

/// Writes the patchable columns.
pub fn update(conn: &mut DbConnection, id: Uuid, changes: &KeyChanges) -> Result<usize, DbError> {
    Ok(diesel::update(dsl::api_keys.find(id.to_string()))
        .set(changes)
        .execute(conn)?)
}

/// Replaces the secret only if it is still `expected_hash` (compare-and-set),
/// so two concurrent rotations cannot both win and leave a secret that works
/// but was never returned. Returns the rows changed (0 = lost the race).
pub fn swap_secret(
    conn: &mut DbConnection,
    id: Uuid,
    expected_hash: &str,
    new_hash: &str,
    previous: Option<(&str, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let (prev_hash, prev_until) = match previous {
        Some((h, until)) => (Some(h.to_owned()), Some(naive(until))),
        None => (None, None),
    };
    Ok(diesel::update(
        dsl::api_keys
            .filter(dsl::id.eq(id.to_string()))
            .filter(dsl::secret_hash.eq(expected_hash))
            .filter(dsl::revoked_at.is_null()),
    )
    .set((
        dsl::secret_hash.eq(new_hash),
        dsl::previous_secret_hash.eq(prev_hash),
        dsl::previous_secret_expires_at.eq(prev_until),
        dsl::updated_at.eq(naive(now)),
    ))
    .execute(conn)?)
}

/// Marks a key revoked unless it already is. Returns the rows changed.
pub fn revoke(conn: &mut DbConnection, id: Uuid, now: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(diesel::update(
        dsl::api_keys
            .filter(dsl::id.eq(id.to_string()))
            .filter(dsl::revoked_at.is_null()),
    )
    .set((
        dsl::revoked_at.eq(Some(naive(now))),
        dsl::updated_at.eq(naive(now)),
        dsl::previous_secret_hash.eq(None::<String>),
        dsl::previous_secret_expires_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?)
}

/// Moves `last_used_at` forward (never back).
pub fn touch_last_used(
    conn: &mut DbConnection,
    id: Uuid,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let at = naive(at);
    diesel::update(
        dsl::api_keys
            .filter(dsl::id.eq(id.to_string()))
            .filter(dsl::last_used_at.is_null().or(dsl::last_used_at.lt(at))),
    )
    .set(dsl::last_used_at.eq(Some(at)))
    .execute(conn)?;
    Ok(())
}

/// Moves `last_used_at` forward for many keys: on PostgreSQL in one statement
/// (one round trip however many keys), on SQLite row by row in the caller's
/// transaction (in-process, so just as cheap).
pub fn touch_last_used_many(
    conn: &mut DbConnection,
    used: &[(Uuid, DateTime<Utc>)],
) -> Result<(), DbError> {
    if used.is_empty() {
        return Ok(());
    }
    match conn {
        DbConnection::Postgres(pg) => {
            use diesel::sql_types::{Array, Text, Timestamp};
            let ids: Vec<String> = used.iter().map(|(id, _)| id.to_string()).collect();
            let times: Vec<NaiveDateTime> = used.iter().map(|(_, t)| naive(*t)).collect();
            diesel::sql_query(
                "UPDATE api_keys AS k SET last_used_at = v.t \
                 FROM unnest($1::text[], $2::timestamp[]) AS v(id, t) \
                 WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)",
            )
            .bind::<Array<Text>, _>(ids)
            .bind::<Array<Timestamp>, _>(times)
            .execute(pg)?;
        }
        DbConnection::Sqlite(_) => {
            for (id, at) in used {
                touch_last_used(conn, *id, *at)?;
            }
        }
    }
    Ok(())
}

/// `(api_key, revoked_at)` of keys revoked at or after `since`.
pub fn revoked_since(
    conn: &mut DbConnection,
    since: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>)>, DbError> {
    let rows: Vec<(String, Option<NaiveDateTime>)> = dsl::api_keys
        .filter(dsl::revoked_at.ge(naive(since)))
        .order(dsl::revoked_at.desc())
        .select((dsl::api_key, dsl::revoked_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(k, at)| at.map(|t| (k, utc(t))))
        .collect())
}

/// `(api_key, updated_at)` of keys changed after `since`.
pub fn changed_since(
    conn: &mut DbConnection,
    since: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>)>, DbError> {
    let rows: Vec<(String, NaiveDateTime)> = dsl::api_keys
        .filter(dsl::updated_at.gt(naive(since)))
        .select((dsl::api_key, dsl::updated_at))
        .load(conn)?;
    Ok(rows.into_iter().map(|(k, t)| (k, utc(t))).collect())
}
