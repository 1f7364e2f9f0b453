//! The token exchange: a client's credential in, a signed access token out.
//! The credential is an `api_key`/`api_secret` pair, a `private_key_jwt`
//! assertion, or an external token matching the key's federation rules.
//! HTTP-free, so it can be tested and benchmarked on its own.
//!
//! Warm path (a key and secret seen recently): no database round trip and no
//! argon2, only an HMAC, a cache lookup and one signature. Cold path: one
//! indexed read and one argon2 verify on the dedicated pool. Assertions and
//! external tokens cost one signature check more than the warm path and no
//! argon2; their keys come from the cached record or the issuer's cached
//! JWKS.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::limits::{Limited, Limits, RateInfo};
use super::{IssuedToken, TokenIssuer};
use crate::db::{Db, DbError};
use crate::keys::cache::KeyCache;
use crate::keys::hash::HashPool;
use crate::keys::scope::{self, ScopeRequestError};
use crate::keys::{ApiKey, KeyStatus, format, store};
use crate::usage::UsageLog;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use tokenmint_verify::dpop::{Expected, ProofChecker, REPLAY_TTL};

use super::assertion;
use super::claims::replay_ttl;
use super::federation::Federation;
use super::replay::{Replay, SeenOnce};
use crate::cluster::Redis;
use crate::cluster::proofs::SharedProofs;
use crate::keys::credentials::CredentialType;
use tokenmint_verify::jws::UnverifiedJwt;

/// How long an address-level `429` (out of failure budget, or holding its
/// whole share of the argon2 pool) takes to answer.
pub const ADDRESS_LIMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(500);

/// How the client proves which key it is.
pub enum Credential {
    /// `api_key` and `api_secret` (client_secret_basic/post, or JSON).
    Secret {
        api_key: String,
        api_secret: SecretString,
    },
    /// A `private_key_jwt` client assertion, with the `client_id` the
    /// client also sent, if any.
    Assertion {
        client_id: Option<String>,
        assertion: String,
    },
    /// An external token to exchange for a token of `client_id`.
    Federated {
        client_id: String,
        subject_token: String,
    },
}

/// Replay scopes of [`SeenOnce`]: assertions by api_key, external tokens
/// by issuer.
const ASSERTION: &str = "assertion";
const SUBJECT: &str = "subject";

/// A `jti` to spend once the exchange is otherwise sure to succeed.
struct Pending {
    kind: &'static str,
    scope: String,
    jti: String,
    ttl: std::time::Duration,
}

/// A request as the transport hands it over.
pub struct ExchangeRequest {
    pub credential: Credential,
    pub scope: Option<String>,
    pub audience: Option<String>,
    pub client_ip: IpAddr,
    /// The `DPoP` header's proof, if one was sent (RFC 9449).
    pub dpop: Option<String>,
}

/// A successful exchange: the token and, if the key has a budget, its state.
#[derive(Debug)]
pub struct Exchanged {
    pub token: IssuedToken,
    pub rate: Option<RateInfo>,
}

/// Why an exchange failed. `InvalidClient` is deliberately one case: unknown
/// key, wrong secret, revoked, expired and address not allowed all look the
/// same to the caller (the reason goes to the audit counts only).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("invalid client")]
    InvalidClient,
    /// A token exchange refused for any reason of RFC 8693 §2.2.2; one
    /// case, like `InvalidClient`.
    #[error("the subject token was not accepted")]
    SubjectTokenRefused,
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    #[error("invalid target")]
    InvalidTarget,
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(&'static str),
    #[error("too many requests")]
    RateLimited(Limited),
    #[error("busy")]
    Busy,
    #[error("database unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl ExchangeError {
    /// The metric label of this outcome.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::InvalidClient => "invalid_client",
            Self::SubjectTokenRefused => "subject_token_refused",
            Self::InvalidScope(_) => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidDpopProof(_) => "invalid_dpop_proof",
            Self::RateLimited(_) => "rate_limited",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Internal => "error",
        }
    }
}

impl From<DbError> for ExchangeError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Unavailable => Self::Unavailable,
            other => {
                tracing::error!(error = %other, "key lookup failed");
                Self::Internal
            }
        }
    }
}

/// Everything an exchange needs.
#[derive(Clone)]
pub struct Exchanger {
    pub(crate) db: Db,
    pub(crate) hashes: HashPool,
    pub(crate) issuer: TokenIssuer,
    pub(crate) prefix: String,
    pub(crate) default_audience: String,
    pub(crate) usage: Arc<UsageLog>,
    pub(crate) cache: Arc<KeyCache>,
    pub(crate) limits: Arc<Limits>,
    pub(crate) dpop: Arc<ProofChecker>,
    /// The URL DPoP proofs must name (`htu`).
    pub(crate) token_endpoint: String,
    /// Shares spent DPoP `jti`s with the other replicas, when configured.
    pub(crate) redis: Option<Arc<Redis>>,
    /// Spent assertion and external-token `jti`s (shared through Redis).
    pub(crate) seen: SeenOnce,
    /// The trusted external issuers.
    pub(crate) federation: Federation,
    /// Verified secrets shared with the other replicas, when configured.
    pub(crate) proofs: Option<Arc<SharedProofs>>,
}

impl Exchanger {
    /// Checks a DPoP proof, spends its `jti` here and, with Redis, for the
    /// whole cluster; returns its key's thumbprint. Redis being down leaves
    /// replay protection per replica rather than failing the exchange.
    async fn spend_proof(
        &self,
        proof: &str,
        expected: &Expected<'_>,
    ) -> Result<String, ExchangeError> {
        let checked = self
            .dpop
            .check(proof, expected)
            .map_err(|e| ExchangeError::InvalidDpopProof(e.0))?;
        if let Some(redis) = &self.redis {
            let key = format!("dpop:{}", B64.encode(checked.replay_id));
            if redis.set_new(&key, REPLAY_TTL).await == Some(false) {
                return Err(ExchangeError::InvalidDpopProof(
                    "the proof's jti was used before",
                ));
            }
        }
        Ok(checked.jkt)
    }

    /// A failure that spends a unit of the address's failure budget.
    async fn deny(&self, ip: IpAddr, key: Option<&ApiKey>, reason: &'static str) -> ExchangeError {
        self.limits.record_failure(ip).await;
        self.denied(ip, key, reason)
    }

    /// A refused token exchange: counted like a failed authentication.
    async fn refuse_subject(
        &self,
        ip: IpAddr,
        key: Option<&ApiKey>,
        reason: &'static str,
    ) -> ExchangeError {
        self.deny(ip, key, reason).await;
        ExchangeError::SubjectTokenRefused
    }

    /// The key `api_key` names, if it exists and may be used from `ip` at
    /// `now` (and whether its record was served stale); else the reason.
    async fn usable_key(
        &self,
        api_key: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Result<(Arc<ApiKey>, bool), (Option<Arc<ApiKey>>, &'static str)>, ExchangeError>
    {
        if !format::api_key_is_well_formed(&self.prefix, api_key) {
            return Ok(Err((None, "malformed_credentials")));
        }
        let (found, stale) = self.fetch(api_key).await?;
        let Some(key) = found else {
            return Ok(Err((None, "unknown_key")));
        };
        let reason = match key.status(now) {
            KeyStatus::Revoked => "revoked",
            KeyStatus::Expired => "expired",
            KeyStatus::Active if !key.ip_allowed(ip) => "ip_not_allowed",
            KeyStatus::Active => return Ok(Ok((key, stale))),
        };
        Ok(Err((Some(key), reason)))
    }

    /// A failure whose unit was already spent.
    fn denied(&self, ip: IpAddr, key: Option<&ApiKey>, reason: &'static str) -> ExchangeError {
        self.usage.denied(key.map(|k| k.id), reason, ip);
        tracing::debug!(reason, key_id = ?key.map(|k| k.id), "exchange denied");
        ExchangeError::InvalidClient
    }

    /// A 429, counted with the denials so a flood leaves a trace of its
    /// sources.
    fn limited(
        &self,
        ip: IpAddr,
        key: Option<&ApiKey>,
        reason: &'static str,
        l: Limited,
    ) -> ExchangeError {
        self.usage.denied(key.map(|k| k.id), reason, ip);
        ExchangeError::RateLimited(l)
    }

    /// The key record, from memory or (once) from the database. Every change
    /// to a key invalidates it, so callers may trust its status.
    pub async fn lookup(&self, api_key: &str) -> Result<Option<Arc<ApiKey>>, DbError> {
        Ok(self.fetch(api_key).await?.0)
    }

    /// [`Self::lookup`], and whether the record was served stale because
    /// the database could not be reached (SPEC §9.4).
    async fn fetch(&self, api_key: &str) -> Result<(Option<Arc<ApiKey>>, bool), DbError> {
        if let Some(hit) = self.cache.record(api_key) {
            return Ok((hit, false));
        }
        let generation = self.cache.generation();
        let wanted = api_key.to_owned();
        let found = match self
            .db
            .run(move |conn| store::find_by_api_key(conn, &wanted))
            .await
        {
            Ok(found) => found,
            // Out of reach: what this replica read before still serves, for
            // a bounded time after it last reached the database.
            Err(DbError::Unavailable) => {
                let stale = (self.db.since_reached() <= self.cache.stale_if_error())
                    .then(|| self.cache.stale_record(api_key))
                    .flatten();
                return match stale {
                    Some(record) => {
                        crate::telemetry::stale_record_served();
                        Ok((record, true))
                    }
                    None => Err(DbError::Unavailable),
                };
            }
            Err(e) => return Err(e),
        };
        let found = found.map(Arc::new);
        self.cache
            .put_record(api_key.to_owned(), found.clone(), generation);
        Ok((found, false))
    }

    /// Refuses an address that is out of failure budget. Transports call it
    /// as early as they can (before reading a body): a blocked flood should
    /// cost as little as possible.
    pub async fn admit(&self, ip: IpAddr) -> Result<(), ExchangeError> {
        match self.limits.check_address(ip) {
            Ok(()) => Ok(()),
            Err(l) => Err(self.slowed(ip, None, "address_rate_limited", l).await),
        }
    }

    /// An address-level `429`, answered after [`ADDRESS_LIMIT_DELAY`]: a
    /// client that keeps sending regardless (a flood in a closed loop) then
    /// gets one cheap answer per connection per delay instead of tens of
    /// thousands a second, so it cannot starve argon2 for everyone else.
    async fn slowed(
        &self,
        ip: IpAddr,
        key: Option<&ApiKey>,
        reason: &'static str,
        l: Limited,
    ) -> ExchangeError {
        tokio::time::sleep(ADDRESS_LIMIT_DELAY).await;
        self.limited(ip, key, reason, l)
    }

    /// Authenticates the pair and issues a token.
    pub async fn exchange(
        &self,
        req: ExchangeRequest,
        now: DateTime<Utc>,
    ) -> Result<Exchanged, ExchangeError> {
        let ip = req.client_ip;
        // An address out of failure budget is stopped before any real work.
        self.admit(ip).await?;
        // A proof costs one signature check, no database: checked (and its
        // jti spent) before the credentials.
        let expected = Expected {
            method: "POST",
            url: &self.token_endpoint,
            now: now.timestamp(),
            access_token: None,
            jkt: None,
        };
        let jkt = match req.dpop.as_deref() {
            Some(proof) => Some(self.spend_proof(proof, &expected).await?),
            None => None,
        };
        let ExchangeRequest {
            credential,
            scope,
            audience,
            ..
        } = req;
        let (key, pending) = match credential {
            Credential::Secret {
                api_key,
                api_secret,
            } => (self.by_secret(&api_key, &api_secret, ip, now).await?, None),
            Credential::Assertion {
                client_id,
                assertion,
            } => {
                self.by_assertion(client_id.as_deref(), &assertion, ip, now)
                    .await?
            }
            Credential::Federated {
                client_id,
                subject_token,
            } => {
                self.by_subject_token(&client_id, &subject_token, ip, now)
                    .await?
            }
        };
        // Told only to a caller that proved who it is.
        if key.require_dpop && jkt.is_none() {
            return Err(ExchangeError::InvalidDpopProof(
                "this key requires a DPoP proof",
            ));
        }
        let (scopes, audience) = self.granted(&key, scope.as_deref(), audience.as_deref())?;
        let rate = self
            .limits
            .spend_key(&key)
            .await
            .map_err(|l| self.limited(ip, Some(&key), "key_rate_limited", l))?;
        // Last, so that a refusal above (a 429 to retry after, a wrong
        // scope) leaves the assertion or external token usable for the retry.
        if let Some(pending) = pending {
            self.spend_jti(pending, ip, &key).await?;
        }
        let token = self
            .issuer
            .issue(&key, &scopes, &audience, jkt, now)
            .map_err(|e| {
                tracing::error!(error = %e, "signing failed");
                ExchangeError::Internal
            })?;
        self.usage.used(key.id, now);
        Ok(Exchanged { token, rate })
    }

    /// Spends the `jti` of an accepted assertion or external token.
    async fn spend_jti(&self, p: Pending, ip: IpAddr, key: &ApiKey) -> Result<(), ExchangeError> {
        match self.seen.spend(p.kind, &p.scope, &p.jti, p.ttl).await {
            Ok(()) => Ok(()),
            Err(Replay::Full) => Err(ExchangeError::Busy),
            Err(Replay::Seen) if p.kind == SUBJECT => Err(self
                .refuse_subject(ip, Some(key), "replayed_subject_token")
                .await),
            Err(Replay::Seen) => Err(self.deny(ip, Some(key), "replayed_assertion").await),
        }
    }

    /// `api_key` and `api_secret`: from memory when recently verified, else
    /// one argon2 verify.
    async fn by_secret(
        &self,
        api_key: &str,
        api_secret: &SecretString,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Arc<ApiKey>, ExchangeError> {
        // Shape and checksum first: a typo costs neither a query nor argon2.
        if !format::secret_is_well_formed(&self.prefix, api_secret) {
            return Err(self.deny(ip, None, "malformed_credentials").await);
        }
        // The api_key is public, so an unknown one costs no argon2 work: doing
        // it anyway would hand attackers a CPU amplifier (docs/SECURITY.md).
        let (key, stale) = match self.usable_key(api_key, ip, now).await? {
            Ok(usable) => usable,
            Err((key, reason)) => return Err(self.deny(ip, key.as_deref(), reason).await),
        };
        // A key that has no secret never runs argon2 on its empty hash.
        if !key.credential_type.has_secret() {
            return Err(self.deny(ip, Some(&key), "wrong_credential_type").await);
        }
        let mut hashes: Vec<&str> = vec![&key.secret_hash];
        if let Some(previous) = key.previous_secret_live(now) {
            hashes.push(previous);
        }
        let mut cached = self.cache.verified_index(key.id, &hashes, api_secret);
        if cached.is_none()
            && let Some(proofs) = &self.proofs
        {
            // Verified at another replica: remembered here too.
            cached = proofs.verified_index(key.id, &hashes, api_secret).await;
            if let Some(i) = cached {
                self.cache.mark_verified(key.id, hashes[i], api_secret);
            }
        }
        crate::telemetry::verify_cache(cached.is_some());
        if cached.is_none() && stale {
            // A record served stale vouches only for secrets verified
            // before: argon2 against it could accept a rotated-out secret.
            return Err(ExchangeError::Unavailable);
        }
        if cached.is_none() {
            self.verify_cold(&key, &hashes, api_secret, ip, now).await?;
        }
        Ok(key)
    }

    /// A `private_key_jwt` assertion: one signature check against the keys
    /// in the (cached) record, and its `jti` spent.
    async fn by_assertion(
        &self,
        client_id: Option<&str>,
        assertion: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(Arc<ApiKey>, Option<Pending>), ExchangeError> {
        let Ok(jwt) = UnverifiedJwt::parse(assertion) else {
            return Err(self.deny(ip, None, "malformed_assertion").await);
        };
        let Some(api_key) = assertion::claimed_client(&jwt).map(str::to_owned) else {
            return Err(self.deny(ip, None, "malformed_assertion").await);
        };
        if client_id.is_some_and(|c| c != api_key) {
            return Err(self.deny(ip, None, "client_id_mismatch").await);
        }
        let key = match self.usable_key(&api_key, ip, now).await? {
            Ok((key, _)) => key,
            Err((key, reason)) => return Err(self.deny(ip, key.as_deref(), reason).await),
        };
        if key.credential_type != CredentialType::PrivateKeyJwt {
            return Err(self.deny(ip, Some(&key), "wrong_credential_type").await);
        }
        let audiences = [self.issuer.issuer(), self.token_endpoint.as_str()];
        let accepted = match assertion::check(jwt, &key, &audiences, now.timestamp()) {
            Ok(a) => a,
            Err(why) => {
                tracing::debug!(why, key_id = %key.id, "assertion refused");
                return Err(self.deny(ip, Some(&key), "bad_assertion").await);
            }
        };
        let pending = Pending {
            kind: ASSERTION,
            scope: key.api_key.clone(),
            jti: accepted.jti,
            ttl: replay_ttl(accepted.exp, now.timestamp()),
        };
        Ok((key, Some(pending)))
    }

    /// An external token of a trusted issuer that matches one of the key's
    /// federation rules, its `jti` (if any) spent.
    async fn by_subject_token(
        &self,
        client_id: &str,
        subject_token: &str,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(Arc<ApiKey>, Option<Pending>), ExchangeError> {
        let key = match self.usable_key(client_id, ip, now).await? {
            Ok((key, _)) => key,
            Err((key, reason)) => {
                return Err(self.refuse_subject(ip, key.as_deref(), reason).await);
            }
        };
        if key.federation.is_empty() {
            return Err(self
                .refuse_subject(ip, Some(&key), "no_federation_rules")
                .await);
        }
        let now_s = now.timestamp();
        let matched = match self
            .federation
            .check(subject_token, &key, self.issuer.issuer(), now_s)
            .await
        {
            Ok(m) => m,
            Err(why) => {
                tracing::debug!(why, key_id = %key.id, "subject token refused");
                return Err(self
                    .refuse_subject(ip, Some(&key), "bad_subject_token")
                    .await);
            }
        };
        // Older Kubernetes tokens carry no jti: those cannot be tracked.
        let pending = matched.jti.map(|jti| Pending {
            kind: SUBJECT,
            scope: matched.issuer,
            jti,
            ttl: replay_ttl(matched.exp, now_s),
        });
        Ok((key, pending))
    }

    /// The argon2 verify of a secret not seen recently. Its failure unit is
    /// reserved first (and given back on success) and the address may hold
    /// only its share of the pool. Afterwards the key is looked up again: a
    /// revocation or rotation that landed while argon2 ran wins.
    async fn verify_cold(
        &self,
        key: &ApiKey,
        hashes: &[&str],
        api_secret: &SecretString,
        ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(), ExchangeError> {
        let _slot = match self.limits.argon2_slot(ip) {
            Ok(slot) => slot,
            Err(l) => return Err(self.slowed(ip, Some(key), "address_busy", l).await),
        };
        let reservation = match self.limits.reserve_failure(ip).await {
            Ok(r) => r,
            Err(l) => return Err(self.slowed(ip, Some(key), "address_rate_limited", l).await),
        };
        let owned: Vec<String> = hashes.iter().map(|h| (*h).to_owned()).collect();
        let matched = match self.hashes.verify_any(api_secret.clone(), owned).await {
            Ok(m) => m,
            Err(_) => {
                reservation.refund().await;
                return Err(ExchangeError::Busy);
            }
        };
        let Some(i) = matched else {
            // The reserved unit is this failure's.
            drop(reservation);
            return Err(self.denied(ip, Some(key), "wrong_secret"));
        };
        reservation.refund().await;
        let still_valid = self.lookup(&key.api_key).await?.is_some_and(|current| {
            current.status(now) == KeyStatus::Active
                && (current.secret_hash == hashes[i]
                    || current.previous_secret_live(now) == Some(hashes[i]))
        });
        if !still_valid {
            return Err(self.deny(ip, Some(key), "revoked").await);
        }
        self.cache.mark_verified(key.id, hashes[i], api_secret);
        if let Some(proofs) = &self.proofs {
            proofs.mark(key.id, hashes[i], api_secret).await;
        }
        Ok(())
    }

    /// What the key may be given: the requested scopes (all of the key's
    /// by default) and audience (the default one unless the key lists it).
    fn granted(
        &self,
        key: &ApiKey,
        scope: Option<&str>,
        audience: Option<&str>,
    ) -> Result<(Vec<String>, String), ExchangeError> {
        let scopes = scope::narrow(&key.scopes, scope).map_err(|e| match e {
            ScopeRequestError::Malformed => {
                ExchangeError::InvalidScope("the scope parameter is malformed".into())
            }
            ScopeRequestError::NotGranted(s) => {
                ExchangeError::InvalidScope(format!("scope {s:?} is not granted to this key"))
            }
        })?;
        let audience = match audience.filter(|a| !a.is_empty()) {
            None => self.default_audience.as_str(),
            Some(a) if key.audiences.iter().any(|k| k == a) => a,
            Some(a) if key.audiences.is_empty() && a == self.default_audience => a,
            Some(_) => return Err(ExchangeError::InvalidTarget),
        };
        Ok((scopes, audience.to_owned()))
    }
}
