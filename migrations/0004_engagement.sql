-- Engagement: rewards, events, missions and notifications (CONTRACT.md §11,
-- §12, §13.3-§13.5, §14, §18, §19), with the seed missions and events.
--
-- Once-only is the schema's job as much as the code's: a participation is
-- unique per (user, event), a mission row per (user, mission, period), and
-- the ledger's UNIQUE (user_id, currency, reason, reference) refuses a
-- second credit of the same claim whatever the code does.

CREATE TABLE user_rewards (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reward_type        varchar(50) NOT NULL,
    reward_value       varchar(64) NOT NULL,
    amount             bigint NOT NULL CHECK (amount >= 0),
    source_description text,
    awarded_by         bigint REFERENCES users (id) ON DELETE SET NULL,
    awarded_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_rewards_user_time ON user_rewards (user_id, awarded_at);

CREATE TABLE events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title        varchar(200) NOT NULL,
    description  text,
    event_type   varchar(16) NOT NULL CHECK (event_type IN ('daily', 'weekly', 'special')),
    start_date   timestamptz NOT NULL,
    end_date     timestamptz NOT NULL,
    rewards      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rewards) = 'object'),
    requirements jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(requirements) = 'object'),
    image_url    text,
    is_active    boolean NOT NULL DEFAULT true,
    priority     int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz,
    CHECK (start_date < end_date)
);
CREATE INDEX events_live ON events (is_active, start_date, end_date) WHERE deleted_at IS NULL;

CREATE TABLE event_participations (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_id        bigint NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    progress        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(progress) = 'object'),
    completed       boolean NOT NULL DEFAULT false,
    claimed_rewards boolean NOT NULL DEFAULT false,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    claimed_at      timestamptz,
    UNIQUE (user_id, event_id)
);
CREATE INDEX event_participations_event ON event_participations (event_id, joined_at);

CREATE TABLE missions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title        varchar(200) NOT NULL,
    description  text,
    mission_type varchar(16) NOT NULL CHECK (mission_type IN ('daily', 'weekly', 'achievement')),
    category     varchar(50),
    target_value bigint NOT NULL CHECK (target_value >= 1),
    target_type  varchar(50) NOT NULL,
    rewards      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(rewards) = 'object'),
    requirements jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(requirements) = 'object'),
    reset_period varchar(16) CHECK (reset_period IN ('daily', 'weekly', 'never')),
    icon         text,
    is_active    boolean NOT NULL DEFAULT true,
    sort_order   int NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL DEFAULT now(),
    deleted_at   timestamptz
);

-- One row per (user, mission, period). period_start is the period's first
-- instant ('-infinity' for a mission that never resets), reset_at its end
-- (NULL for never).
CREATE TABLE user_missions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mission_id       bigint NOT NULL REFERENCES missions (id) ON DELETE CASCADE,
    period_start     timestamptz NOT NULL,
    current_progress bigint NOT NULL DEFAULT 0 CHECK (current_progress >= 0),
    completed        boolean NOT NULL DEFAULT false,
    claimed          boolean NOT NULL DEFAULT false,
    started_at       timestamptz NOT NULL DEFAULT now(),
    completed_at     timestamptz,
    claimed_at       timestamptz,
    reset_at         timestamptz,
    UNIQUE (user_id, mission_id, period_start)
);
CREATE INDEX user_missions_user_period ON user_missions (user_id, period_start);

CREATE TABLE notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    bigint REFERENCES users (id) ON DELETE CASCADE,
    type       varchar(32) NOT NULL,
    title      varchar(200) NOT NULL,
    body       text NOT NULL DEFAULT '',
    data       jsonb NOT NULL DEFAULT '{}',
    is_read    boolean NOT NULL DEFAULT false,
    read_at    timestamptz,
    created_by bigint REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_user_unread ON notifications (user_id, is_read, created_at);

INSERT INTO missions (title, mission_type, target_type, target_value, rewards, reset_period, requirements, sort_order)
VALUES
    ('일일 로그인', 'daily', 'login', 1, '{"tokens":100}', 'daily', '{}', 1),
    ('슬롯머신 10회', 'daily', 'play_count', 10, '{"tokens":200}', 'daily', '{"game_type":"slot"}', 2),
    ('가챠 3회', 'daily', 'gacha_pull', 3, '{"tokens":300}', 'daily', '{}', 3),
    ('첫 승리', 'achievement', 'win_count', 1, '{"tokens":500}', 'never', '{}', 4),
    ('주간 플레이어', 'weekly', 'play_count', 50, '{"tokens":1000}', 'weekly', '{}', 5);

INSERT INTO events (title, event_type, start_date, end_date, rewards, requirements, priority) VALUES
    ('신규 가입 이벤트', 'special', now(), now() + interval '30 days',
     '{"tokens":1000,"items":["starter_pack"]}', '{"new_user":true}', 100),
    ('주말 특별 이벤트', 'weekly', now(), now() + interval '7 days', '{"multiplier":1.5}', '{"weekend":true}', 50),
    ('일일 접속 이벤트', 'daily', now(), now() + interval '14 days', '{"tokens":50,"exp":100}',
     '{"daily_login":true}', 75);
