-- Exchanges per key, hour and outcome (`issued` or a denial reason), added
-- to in batches by the usage flush (src/usage/store.rs).
CREATE TABLE key_usage (
    api_key_id TEXT NOT NULL,
    hour TIMESTAMP NOT NULL,
    outcome TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (api_key_id, hour, outcome)
);
-- The retention delete goes by age alone.
CREATE INDEX key_usage_hour ON key_usage (hour);
