DROP INDEX api_keys_updated;
