"""schemathesis hooks for tests/schema/run.

Four rules the server enforces that JSON Schema cannot state, applied to
generated requests so that a schema-valid request is also a valid one
(nothing here hides a failure: every check still runs on every request):

1. The run's own admin key is off limits (below).
2. `expires_at` must lie in the future: a well-formed RFC 3339 time in the
   past is moved a day ahead. Malformed ones are left for the server to refuse.
3. At the token endpoint a client authenticates once (RFC 6749 §2.3, SPEC §8:
   Basic and body credentials together are a 400). schemathesis sends the
   configured Basic credentials (the run's admin key), so generated body
   credentials are dropped; the body-credential forms are covered by
   tests/integration. What a key may ask for depends on the key: a `scope`
   outside the admin key's scopes is replaced by them, and `audience` /
   `resource` are dropped (the key has none, so only the default applies).

4. A key's `jwks` must hold real public keys (a point on P-256, an RSA
   modulus of 2048 bits or more) and its `federation` rules must name an
   issuer of the server's TOKENMINT_FEDERATION_ISSUERS, and the credential
   type decides which of the two a key needs. So schema-valid `jwks` and
   `federation` members are dropped and a valid `credential_type` becomes
   `secret`; malformed ones (wrong types, unknown values) are left for the
   server to refuse. These fields are tested with real keys and a real
   issuer in tests/integration/secretless.rs and federation.rs.

On rule 1: keep the fuzzer from sawing off the branch it sits on. schemathesis
reuses ids it saw in earlier responses (GET /v1/api-keys lists the bootstrap
admin key, and early on it is the only key there), so left alone it DELETEs or
PATCHes (scopes, expires_at) the very key whose token authenticates the run;
from then on every admin call is a 401 and the rest of the run tests nothing.

So every request whose `{id}` names the admin key is sent to a stand-in key
instead: an ordinary key the script bootstraps next to the admin one. The
request still reaches a real, existing key (so PATCH, rotate and DELETE are
exercised exactly as they would be on the admin key, and every check applies),
only not the one holding the run's credentials. No check is disabled by this.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime, timedelta, timezone

import schemathesis


def _uuid_env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    return str(uuid.UUID(value)) if value else ""


_ADMIN_ID = _uuid_env("TOKENMINT_SCHEMA_ADMIN_ID")
# The scopes of the admin key whose pair schemathesis sends as Basic.
_RUN_SCOPES = {"tokenmint:admin"}
_STANDIN_ID = _uuid_env("TOKENMINT_SCHEMA_STANDIN_ID")


def _is_admin_id(value: object) -> bool:
    if not _ADMIN_ID or not isinstance(value, str):
        return False
    try:
        # Any spelling the server would accept for the same uuid.
        return str(uuid.UUID(value.strip())) == _ADMIN_ID
    except ValueError:
        return False


_CREDENTIAL_TYPES = ("secret", "private_key_jwt", "federated")


def _plain_credentials(body: object) -> None:
    if not isinstance(body, dict):
        return
    if isinstance(body.get("jwks"), dict):
        del body["jwks"]
    rules = body.get("federation")
    if isinstance(rules, list) and all(isinstance(r, dict) for r in rules):
        del body["federation"]
    if body.get("credential_type") in _CREDENTIAL_TYPES:
        body["credential_type"] = "secret"


def _future_expiry(body: object) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("expires_at"), str):
        return
    try:
        at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    except ValueError:
        return
    now = datetime.now(timezone.utc)
    if at.tzinfo is not None and at <= now + timedelta(minutes=1):
        body["expires_at"] = (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


@schemathesis.hook
def before_call(context, case, kwargs):  # noqa: ARG001 (hook signature)
    params = case.path_parameters
    if params and _STANDIN_ID and _is_admin_id(params.get("id")):
        params["id"] = _STANDIN_ID
    method = case.method.upper()
    if case.path.startswith("/v1/api-keys") and method in ("POST", "PATCH"):
        _future_expiry(case.body)
        _plain_credentials(case.body)
    if case.path == "/auth/token" and method == "POST" and isinstance(case.body, dict):
        for member in ("client_id", "client_secret", "api_key", "api_secret", "audience", "resource"):
            case.body.pop(member, None)
        scope = case.body.get("scope")
        if isinstance(scope, str) and not set(scope.split(" ")) - {""} <= _RUN_SCOPES:
            case.body["scope"] = " ".join(sorted(_RUN_SCOPES))
