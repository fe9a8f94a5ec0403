//! Diesel table definitions matching `migrations/` (as `diesel print-schema` would write them).

diesel::table! {
    users (id) {
        id -> Text,
        subject -> Text,
        username -> Text,
        email -> Text,
        email_verified -> Bool,
        given_name -> Text,
        family_name -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        is_active -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        username_key -> Text,
        email_key -> Nullable<Text>,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        client_type -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        skip_authorization -> Bool,
        id_token_signed_response_alg -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        can_introspect -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        requires_mfa -> Bool,
    }
}

diesel::table! {
    logout_deliveries (id) {
        id -> Text,
        client_id -> Text,
        uri -> Text,
        subject -> Text,
        sid -> Nullable<Text>,
        token -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_pem -> Text,
        public_jwk -> Text,
        status -> Text,
        created_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        amr -> Text,
        acr -> Text,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        public_id -> Text,
        user_id -> Text,
        auth_time -> BigInt,
        amr -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        client_addr -> Text,
        user_agent -> Text,
        expires_at -> BigInt,
        idle_expires_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        scope -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Text,
        auth_time -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
        amr -> Text,
        acr -> Text,
    }
}

diesel::table! {
    access_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    login_throttle (kind, key) {
        kind -> Text,
        key -> Text,
        attempts -> Integer,
        expires_at -> BigInt,
    }
}

diesel::table! {
    totp_credentials (user_id) {
        user_id -> Text,
        secret -> Text,
        confirmed_at -> Nullable<BigInt>,
        last_used_step -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        used_at -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        passkey -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> BigInt,
        kind -> Text,
        outcome -> Text,
        user_id -> Nullable<Text>,
        username -> Text,
        client_id -> Nullable<Text>,
        client_addr -> Text,
        actor -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::joinable!(grants -> users (user_id));
diesel::joinable!(totp_credentials -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(grants -> clients (client_id));
diesel::joinable!(authorization_codes -> grants (grant_id));
diesel::joinable!(access_tokens -> grants (grant_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(logout_deliveries -> clients (client_id));
diesel::joinable!(consents -> clients (client_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    clients,
    signing_keys,
    grants,
    authorization_codes,
    access_tokens,
    refresh_tokens,
    consents,
    sessions,
    logout_deliveries,
    login_throttle,
    totp_credentials,
    recovery_codes,
    passkeys,
    audit_events,
);
