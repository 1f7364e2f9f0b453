// The schema shared by both backends (see migrations/postgres and migrations/sqlite).

diesel::table! {
    api_keys (id) {
        id -> Text,
        api_key -> Text,
        name -> Text,
        subject -> Text,
        scopes -> Text,
        environment -> Text,
        secret_hash -> Text,
        previous_secret_hash -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamp>,
        allowed_ips -> Text,
        rate_limit_per_minute -> Nullable<BigInt>,
        audiences -> Text,
        token_ttl_seconds -> Nullable<BigInt>,
        claims -> Text,
        metadata -> Text,
        expires_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        require_dpop -> Bool,
        credential_type -> Text,
        jwks -> Nullable<Text>,
        federation -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> Timestamp,
        actor -> Text,
        action -> Text,
        api_key_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        details -> Nullable<Text>,
    }
}

diesel::table! {
    key_usage (api_key_id, hour, outcome) {
        api_key_id -> Text,
        hour -> Timestamp,
        outcome -> Text,
        count -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(api_keys, audit_events, key_usage);
