-- Lets SQLite servers find keys changed by another process (see src/background.rs).
CREATE INDEX api_keys_updated ON api_keys (updated_at);
