-- Accounts: users, wallet (balances + append-only ledger), idempotency keys,
-- invite codes, login attempts, sessions and refresh tokens, user actions,
-- admin audit and the outbox (CONTRACT.md §3, §4, §5, §18).

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id       varchar(50) NOT NULL UNIQUE,
    nickname      varchar(50) NOT NULL UNIQUE,
    phone_number  varchar(20) NOT NULL UNIQUE,
    password_hash text NOT NULL,
    invite_code   varchar(16),
    vip_tier      varchar(16) NOT NULL DEFAULT 'STANDARD' CHECK (vip_tier IN ('STANDARD', 'PREMIUM', 'VIP')),
    is_admin      boolean NOT NULL DEFAULT false,
    is_active     boolean NOT NULL DEFAULT true,
    banned_until  timestamptz,
    ban_reason    text,
    risk_profile  varchar(32),
    segment       varchar(32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_login    timestamptz
);

CREATE TABLE wallet_balances (
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    currency   varchar(8) NOT NULL CHECK (currency IN ('tokens', 'gold', 'gems', 'exp')),
    balance    bigint NOT NULL DEFAULT 0 CHECK (balance >= 0 AND balance <= 9007199254740991),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, currency)
);

CREATE TABLE wallet_ledger (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    currency        varchar(8) NOT NULL CHECK (currency IN ('tokens', 'gold', 'gems', 'exp')),
    delta           bigint NOT NULL CHECK (delta <> 0),
    balance_after   bigint NOT NULL CHECK (balance_after >= 0),
    reason          varchar(32) NOT NULL,
    reference       varchar(100),
    idempotency_key varchar(128),
    actor_id        bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX wallet_ledger_once ON wallet_ledger (user_id, currency, reason, reference)
    WHERE reference IS NOT NULL;
CREATE INDEX wallet_ledger_user_time ON wallet_ledger (user_id, created_at);

-- The ledger is append-only: balance == sum(delta) must always hold.
CREATE FUNCTION wallet_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'wallet_ledger is append-only';
END;
$$;
CREATE TRIGGER wallet_ledger_no_update BEFORE UPDATE OR DELETE ON wallet_ledger
    FOR EACH ROW EXECUTE FUNCTION wallet_ledger_append_only();

CREATE TABLE idempotency_keys (
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key           varchar(128) NOT NULL,
    method        varchar(8) NOT NULL,
    path          text NOT NULL,
    query         text NOT NULL DEFAULT '',
    request_hash  char(64) NOT NULL,
    status_code   int NOT NULL,
    response_body jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at);

CREATE TABLE invite_codes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code       varchar(16) NOT NULL UNIQUE CHECK (code = upper(code)),
    max_uses   int CHECK (max_uses > 0),
    used_count int NOT NULL DEFAULT 0 CHECK (used_count >= 0 AND (max_uses IS NULL OR used_count <= max_uses)),
    is_active  boolean NOT NULL DEFAULT true,
    expires_at timestamptz,
    created_by bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO invite_codes (code, max_uses, is_active, expires_at, created_by) VALUES ('5858', NULL, true, NULL, NULL);

CREATE TABLE login_attempts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id        varchar(64) NOT NULL,
    user_id        bigint REFERENCES users (id) ON DELETE SET NULL,
    success        boolean NOT NULL,
    failure_reason varchar(32) CHECK (failure_reason IN ('invalid_credentials', 'locked_out', 'inactive')),
    ip_address     varchar(45),
    user_agent     text,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_site_time ON login_attempts (site_id, created_at);
CREATE INDEX login_attempts_ip_time ON login_attempts (ip_address, created_at);

CREATE TABLE sessions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_jti     uuid NOT NULL UNIQUE,
    is_active      boolean NOT NULL DEFAULT true,
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason varchar(32) CHECK (revoked_reason IN
        ('logout', 'logout_all', 'superseded', 'reuse_detected', 'banned', 'password_changed')),
    user_agent     text,
    ip_address     varchar(45),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sessions_active_user ON sessions (user_id) WHERE is_active;

CREATE TABLE refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    session_id  bigint NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  char(64) NOT NULL UNIQUE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    replaced_by bigint REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE user_actions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action_type varchar(50) NOT NULL,
    action_data jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_actions_user_time ON user_actions (user_id, created_at);

CREATE TABLE admin_audit (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    admin_id    bigint REFERENCES users (id) ON DELETE SET NULL,
    action      varchar(64) NOT NULL,
    target_type varchar(32),
    target_id   varchar(64),
    payload     jsonb NOT NULL DEFAULT '{}',
    ip_address  varchar(45),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_audit_time ON admin_audit (created_at);
CREATE INDEX admin_audit_target ON admin_audit (target_id);

CREATE TABLE outbox_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      varchar(32) NOT NULL,
    event_type varchar(64) NOT NULL,
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    relayed_at timestamptz,
    attempts   int NOT NULL DEFAULT 0
);
CREATE INDEX outbox_events_pending ON outbox_events (id) WHERE relayed_at IS NULL;
