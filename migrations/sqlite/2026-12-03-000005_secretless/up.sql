-- secret, private_key_jwt or federated (SPEC §10); keys without a secret keep
-- an empty secret_hash, which no secret can match.
ALTER TABLE api_keys ADD COLUMN credential_type TEXT NOT NULL DEFAULT 'secret';
-- The registered public JWK set (private_key_jwt keys), as JSON.
ALTER TABLE api_keys ADD COLUMN jwks TEXT;
-- Federation rules (RFC 8693 token exchange), a JSON array.
ALTER TABLE api_keys ADD COLUMN federation TEXT NOT NULL DEFAULT '[]';
