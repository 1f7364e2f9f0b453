#!/usr/bin/env python3
"""Verify a tokenmint access token with PyJWT, a library we did not write.

usage: verify_pyjwt.py JWKS_URL TOKEN ISSUER AUDIENCE ALG

Fetches the JWKS over HTTP with PyJWKClient, picks the key by `kid`, and
checks signature, iss, aud, exp, nbf and the RFC 9068 `typ`. Prints the
claims as JSON on success; exits non-zero on any failure.
"""
import json
import sys

import jwt


def main() -> int:
    jwks_url, token, issuer, audience, alg = sys.argv[1:6]
    header = jwt.get_unverified_header(token)
    if header.get("typ") != "at+jwt":
        print(f"typ is {header.get('typ')!r}, expected 'at+jwt'", file=sys.stderr)
        return 1
    if header.get("alg") != alg:
        print(f"alg is {header.get('alg')!r}, expected {alg!r}", file=sys.stderr)
        return 1
    signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing_key.key,
        algorithms=[alg],
        issuer=issuer,
        audience=audience,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
    )
    # A token for another audience must fail.
    try:
        jwt.decode(token, signing_key.key, algorithms=[alg], issuer=issuer, audience="urn:someone-else")
    except jwt.InvalidAudienceError:
        pass
    else:
        print("a wrong audience was accepted", file=sys.stderr)
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
