//! The key lifecycle: create, change, rotate and revoke, each with its audit
//! event in the same transaction. Secrets are hashed before the transaction
//! opens, so no connection is held while argon2 runs.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;

use super::credentials::CredentialType;
use super::hash::{HashPool, HasherError, PoolBusy};
use super::request::{FieldError, Invalid, KeyUpdate, NewKey};
use super::rules::{KeyPolicy, Rules};
use super::store::{self, KeyChanges, KeyFilter, Position};
use super::{ApiKey, format, now_micros};
use crate::audit::{self, Actor, action};
use crate::db::{Db, DbError, notify, write_transaction};

/// Why a lifecycle call failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("no such key")]
    NotFound,
    #[error("the key is revoked")]
    Revoked,
    #[error("argon2 pool busy")]
    Busy,
    /// `rotate` on a key that has no secret.
    #[error("the key has no secret to rotate")]
    NoSecret,
    /// A PATCH that does not fit the key's credential type.
    #[error("invalid change")]
    Invalid(Invalid),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Hash(#[from] HasherError),
}

impl From<PoolBusy> for KeyError {
    fn from(_: PoolBusy) -> Self {
        Self::Busy
    }
}

/// Called after every committed change, with the key's id and `api_key`, so
/// caches can drop what they hold.
pub type ChangeHook = std::sync::Arc<dyn Fn(Uuid, &str) + Send + Sync>;

/// Key management over the database.
#[derive(Clone)]
pub struct KeyService {
    db: Db,
    hashes: HashPool,
    policy: KeyPolicy,
    on_change: Option<ChangeHook>,
}

impl KeyService {
    /// Builds the service.
    pub fn new(db: Db, hashes: HashPool, policy: KeyPolicy) -> Self {
        Self {
            db,
            hashes,
            policy,
            on_change: None,
        }
    }

    /// Registers the hook run after every committed change.
    pub fn with_change_hook(mut self, hook: ChangeHook) -> Self {
        self.on_change = Some(hook);
        self
    }

    /// The validation rules of requests made at `now`.
    pub fn rules(&self, now: DateTime<Utc>) -> Rules {
        Rules {
            policy: self.policy.clone(),
            now,
        }
    }

    fn changed(&self, key: &ApiKey) {
        if let Some(hook) = &self.on_change {
            hook(key.id, &key.api_key);
        }
    }

    /// Creates a key; returns it with its secret (shown once).
    pub async fn create(
        &self,
        req: NewKey,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<(ApiKey, Option<SecretString>), KeyError> {
        let environment = req.environment;
        // Keys that prove themselves otherwise get no secret at all.
        let (secret, secret_hash) = if req.credential_type.has_secret() {
            let secret = format::new_api_secret(&self.policy.prefix, environment);
            let hash = self.hashes.hash(secret.clone()).await??;
            (Some(secret), hash)
        } else {
            (None, String::new())
        };
        let id = Uuid::new_v4();
        let key = ApiKey {
            id,
            api_key: format::new_api_key(&self.policy.prefix, environment),
            name: req.name,
            subject: req.subject.unwrap_or_else(|| id.to_string()),
            scopes: req.scopes,
            environment,
            secret_hash,
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            allowed_ips: req.allowed_ips,
            rate_limit_per_minute: req.rate_limit_per_minute,
            audiences: req.audiences,
            token_ttl_seconds: req.token_ttl_seconds,
            claims: req.claims,
            metadata: req.metadata,
            expires_at: req.expires_at,
            created_at: now,
            updated_at: now,
            last_used_at: None,
            revoked_at: None,
            require_dpop: req.require_dpop,
            credential_type: req.credential_type,
            jwks: req.jwks,
            federation: req.federation,
        };
        let stored = key.clone();
        self.db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    store::insert(conn, &stored)?;
                    notify::key_changed(conn, &stored.api_key)?;
                    audit::record(conn, &actor, action::CREATED, Some(stored.id), None, now)
                })
            })
            .await
            .map_err(KeyError::Db)?;
        // A create can end a cached "no such key" answer.
        self.changed(&key);
        Ok((key, secret))
    }

    /// One key by id.
    pub async fn get(&self, id: Uuid) -> Result<ApiKey, KeyError> {
        self.db
            .run(move |conn| store::find_by_id(conn, id))
            .await?
            .ok_or(KeyError::NotFound)
    }

    /// One page of keys (one more than `limit` is fetched by the caller to
    /// know whether a next page exists).
    pub async fn list(
        &self,
        filter: KeyFilter,
        after: Option<Position>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, KeyError> {
        let now = now_micros();
        Ok(self
            .db
            .run(move |conn| store::list(conn, &filter, after.as_ref(), limit, now))
            .await?)
    }

    /// Applies a validated PATCH.
    pub async fn update(
        &self,
        id: Uuid,
        patch: KeyUpdate,
        actor: Actor,
        now: DateTime<Utc>,
    ) -> Result<ApiKey, KeyError> {
        let key = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    // Lock the row first, so a concurrent PATCH or DELETE waits for
                    // this one instead of acting on what it read before we committed.
                    store::lock_row(conn, id)?;
                    let key = store::find_by_id(conn, id)?.ok_or(KeyError::NotFound)?;
                    if key.revoked_at.is_some() {
                        return Err(KeyError::Revoked);
                    }
                    let fields = patch.fields();
                    check_credentials(&key, &patch)?;
                    let changes = KeyChanges {
                        jwks: match &patch.jwks {
                            Some(j) => Some(j.json.to_string()),
                            None => key.jwks.as_ref().map(|j| j.json.to_string()),
                        },
                        federation: store::rules_json(
                            patch.federation.as_deref().unwrap_or(&key.federation),
                        ),
                        name: patch.name.unwrap_or(key.name),
                        scopes: patch.scopes.unwrap_or(key.scopes).join(" "),
                        allowed_ips: store::join_ips(&patch.allowed_ips.unwrap_or(key.allowed_ips)),
                        rate_limit_per_minute: patch
                            .rate_limit_per_minute
                            .apply(key.rate_limit_per_minute)
                            .map(i64::from),
                        audiences: patch.audiences.unwrap_or(key.audiences).join(" "),
                        token_ttl_seconds: patch
                            .token_ttl_seconds
                            .apply(key.token_ttl_seconds)
                            .map(i64::from),
                        claims: Value::Object(patch.claims.unwrap_or(key.claims)).to_string(),
                        metadata: Value::Object(patch.metadata.unwrap_or(key.metadata)).to_string(),
                        expires_at: patch
                            .expires_at
                            .apply(key.expires_at)
                            .map(|t| t.naive_utc()),
                        require_dpop: patch.require_dpop.unwrap_or(key.require_dpop),
                        updated_at: now.naive_utc(),
                    };
                    store::update(conn, id, &changes)?;
                    notify::key_changed(conn, &key.api_key)?;
                    audit::record(
                        conn,
                        &actor,
                        action::UPDATED,
                        Some(id),
                        Some(json!({ "fields": fields })),
                        now,
                    )?;
                    store::find_by_id(conn, id)?.ok_or(KeyError::NotFound)
                })
            })
            .await?;
        self.changed(&key);
        Ok(key)
    }

    /// Issues a new secret. With a grace period the current secret keeps
    /// working until it ends; any older grace ends at once (at most two
    /// secrets ever work).
    pub async fn rotate(
        &self,
        id: Uuid,
        grace: u32,
        actor: Actor,
    ) -> Result<(ApiKey, SecretString), KeyError> {
        let current = self.get(id).await?;
        if current.revoked_at.is_some() {
            return Err(KeyError::Revoked);
        }
        if !current.credential_type.has_secret() {
            return Err(KeyError::NoSecret);
        }
        let secret = format::new_api_secret(&self.policy.prefix, current.environment);
        let new_hash = self.hashes.hash(secret.clone()).await??;
        // Compare-and-set on the current hash; a concurrent rotation makes us
        // re-read and chain after it, so every returned secret is accounted for.
        for _ in 0..8 {
            let new_hash = new_hash.clone();
            let actor = actor.clone();
            let outcome = self
                .db
                .run(move |conn| {
                    write_transaction(conn, |conn| {
                        let key = store::find_by_id(conn, id)?.ok_or(KeyError::NotFound)?;
                        if key.revoked_at.is_some() {
                            return Err(KeyError::Revoked);
                        }
                        let now = now_micros();
                        let until = now + chrono::Duration::seconds(i64::from(grace));
                        let previous = (grace > 0).then_some((key.secret_hash.as_str(), until));
                        if store::swap_secret(conn, id, &key.secret_hash, &new_hash, previous, now)?
                            == 0
                        {
                            return Ok(None);
                        }
                        notify::key_changed(conn, &key.api_key)?;
                        let details = json!({ "grace_period_seconds": grace });
                        audit::record(conn, &actor, action::ROTATED, Some(id), Some(details), now)?;
                        store::find_by_id(conn, id).map_err(KeyError::from)
                    })
                })
                .await?;
            if let Some(key) = outcome {
                self.changed(&key);
                return Ok((key, secret));
            }
        }
        Err(KeyError::Db(DbError::Unavailable))
    }

    /// Revokes a key. Idempotent: a second call returns the key unchanged and
    /// writes no audit event.
    pub async fn revoke(&self, id: Uuid, actor: Actor) -> Result<ApiKey, KeyError> {
        let key = self
            .db
            .run(move |conn| {
                write_transaction(conn, |conn| {
                    // Lock the row first, so a concurrent PATCH or DELETE waits for
                    // this one instead of acting on what it read before we committed.
                    store::lock_row(conn, id)?;
                    let key = store::find_by_id(conn, id)?.ok_or(KeyError::NotFound)?;
                    if key.revoked_at.is_some() {
                        return Ok(key);
                    }
                    let now = now_micros();
                    store::revoke(conn, id, now)?;
                    notify::key_changed(conn, &key.api_key)?;
                    audit::record(conn, &actor, action::REVOKED, Some(id), None, now)?;
                    store::find_by_id(conn, id)?.ok_or(KeyError::NotFound)
                })
            })
            .await?;
        self.changed(&key);
        Ok(key)
    }
}

/// A PATCH of `jwks` or `federation` must fit the key's (fixed) type.
fn check_credentials(key: &ApiKey, patch: &KeyUpdate) -> Result<(), KeyError> {
    let refuse = |field: &str, message: &str| {
        Err(KeyError::Invalid(Invalid(vec![FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        }])))
    };
    if patch.jwks.is_some() && key.credential_type != CredentialType::PrivateKeyJwt {
        return refuse("jwks", "only private_key_jwt keys have jwks");
    }
    if key.credential_type == CredentialType::Federated
        && patch.federation.as_ref().is_some_and(Vec::is_empty)
    {
        return refuse("federation", "a federated key needs at least one rule");
    }
    Ok(())
}
