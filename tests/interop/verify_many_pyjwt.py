#!/usr/bin/env python3
"""Verify many tokenmint access tokens with PyJWT against one JWKS URL.

usage: verify_many_pyjwt.py JWKS_URL ISSUER AUDIENCE < tokens (one a line)

One PyJWKClient for all tokens, as a downstream service would hold: it
refetches the JWKS when it meets a `kid` it has not seen. Prints
{"verified": N, "kids": {kid: count}}; exits non-zero at the first token
that does not verify, naming its kid.
"""
import json
import sys

import jwt


def main() -> int:
    jwks_url, issuer, audience = sys.argv[1:4]
    client = jwt.PyJWKClient(jwks_url, cache_keys=True)
    kids = {}
    for line in sys.stdin:
        token = line.strip()
        if not token:
            continue
        header = jwt.get_unverified_header(token)
        try:
            key = client.get_signing_key_from_jwt(token)
            jwt.decode(
                token,
                key.key,
                algorithms=[header["alg"]],
                issuer=issuer,
                audience=audience,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]},
            )
        except Exception as e:  # noqa: BLE001 - report any failure with its kid
            print(f"kid {header.get('kid')}: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        kids[header["kid"]] = kids.get(header["kid"], 0) + 1
    print(json.dumps({"verified": sum(kids.values()), "kids": kids}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
