ALTER TABLE api_keys DROP COLUMN federation;
ALTER TABLE api_keys DROP COLUMN jwks;
ALTER TABLE api_keys DROP COLUMN credential_type;
