ALTER TABLE api_keys DROP COLUMN require_dpop;
