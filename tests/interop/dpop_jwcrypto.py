#!/usr/bin/env python3
"""DPoP with jwcrypto, a library we did not write: it makes the key and the
proof, tokenmint binds the token, and jwcrypto checks the token's signature
against our JWKS and that `cnf.jkt` is its own RFC 7638 thumbprint of the
proof key.

usage: dpop_jwcrypto.py TOKEN_URL JWKS_URL API_KEY API_SECRET ALG

ALG: ES256, RS256, PS256 or EdDSA. Prints the claims on success; exits
non-zero on any failure.
"""
import json
import sys
import time
import urllib.request
import uuid

from jwcrypto import jwk, jwt

KEYS = {
    "ES256": dict(kty="EC", crv="P-256"),
    "RS256": dict(kty="RSA", size=2048),
    "PS256": dict(kty="RSA", size=2048),
    "EdDSA": dict(kty="OKP", crv="Ed25519"),
}


def fail(msg: str) -> int:
    print(msg, file=sys.stderr)
    return 1


def main() -> int:
    token_url, jwks_url, api_key, api_secret, alg = sys.argv[1:6]
    key = jwk.JWK.generate(**KEYS[alg])
    proof = jwt.JWT(
        header={"typ": "dpop+jwt", "alg": alg, "jwk": key.export_public(as_dict=True)},
        claims={"htm": "POST", "htu": token_url, "iat": int(time.time()), "jti": str(uuid.uuid4())},
    )
    proof.make_signed_token(key)
    req = urllib.request.Request(
        token_url,
        data=json.dumps({"api_key": api_key, "api_secret": api_secret}).encode(),
        headers={"content-type": "application/json", "DPoP": proof.serialize()},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as res:
        body = json.load(res)
    if body.get("token_type") != "DPoP":
        return fail(f"token_type is {body.get('token_type')!r}, expected 'DPoP'")
    with urllib.request.urlopen(jwks_url, timeout=10) as res:
        keys = jwk.JWKSet.from_json(res.read())
    token = jwt.JWT(jwt=body["access_token"], key=keys, expected_type="JWS")
    claims = json.loads(token.claims)
    want = key.thumbprint()
    if claims.get("cnf") != {"jkt": want}:
        return fail(f"cnf is {claims.get('cnf')!r}, expected {{'jkt': {want!r}}}")
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
