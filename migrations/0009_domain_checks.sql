-- Performance: the checks of the tables that plays and claims write move
-- from table CHECK constraints to the columns' types (domains).
--
-- PostgreSQL evaluates every CHECK constraint of a table for each row a
-- statement writes, whichever columns it sets, and prepares each one again
-- for every execution of a statement (it parses the stored expression and
-- plans it). Measured with pg_stat_statements, one client: a play's nonce
-- update (UPDATE fairness_seeds SET next_nonce = next_nonce + 1, one row)
-- took 18.4 µs with the table's four CHECKs, 11.3 µs without the two that
-- are not in CONTRACT.md §18, 6.1 µs with none and 6.4 µs with its checks
-- as domains. A slot spin prepared fifteen of them, about a sixth of its
-- database time.
--
-- A domain's check is part of the column's type: it runs where a value of
-- that column is written, from an expression each session prepares once.
-- The rules are the same ones, enforced by the database for every writer
-- (a balance can never be negative, CONTRACT.md §3), with the same SQLSTATE
-- (23514) when broken. The one check over two columns (a seed is revealed
-- exactly when it has a revealed_at) becomes a trigger on those columns, so
-- the nonce update no longer pays for it. Clients see the base types: the
-- server describes a domain column by its base type.
--
-- Changing a column to a checked domain rewrites its table (every row is
-- checked): on a large ledger this migration holds its tables' locks for
-- the time of a copy of them.
CREATE DOMAIN cc_currency AS varchar(8) CHECK (VALUE IN ('tokens', 'gold', 'gems', 'exp'));
CREATE DOMAIN cc_balance AS bigint CHECK (VALUE >= 0 AND VALUE <= 9007199254740991);
CREATE DOMAIN cc_nonzero AS bigint CHECK (VALUE <> 0);
CREATE DOMAIN cc_non_negative AS bigint CHECK (VALUE >= 0);
CREATE DOMAIN cc_positive AS bigint CHECK (VALUE > 0);
CREATE DOMAIN cc_hex64 AS char(64) CHECK (VALUE ~ '^[0-9a-f]{64}$');
CREATE DOMAIN cc_seed_status AS varchar(16) CHECK (VALUE IN ('active', 'revealed'));
CREATE DOMAIN cc_play_status AS varchar(16) CHECK (VALUE IN ('pending', 'settled'));
CREATE DOMAIN cc_crash_session_status AS varchar(16) CHECK (VALUE IN ('active', 'cashed', 'crashed', 'expired'));
CREATE DOMAIN cc_crash_bet_status AS varchar(16) CHECK (VALUE IN ('placed', 'cashed', 'lost', 'refunded'));
CREATE DOMAIN cc_json_object AS jsonb CHECK (jsonb_typeof(VALUE) = 'object');

ALTER TABLE wallet_balances
    DROP CONSTRAINT wallet_balances_currency_check, DROP CONSTRAINT wallet_balances_balance_check,
    ALTER COLUMN currency TYPE cc_currency, ALTER COLUMN balance TYPE cc_balance;

ALTER TABLE wallet_ledger
    DROP CONSTRAINT wallet_ledger_currency_check, DROP CONSTRAINT wallet_ledger_delta_check,
    DROP CONSTRAINT wallet_ledger_balance_after_check,
    ALTER COLUMN currency TYPE cc_currency, ALTER COLUMN delta TYPE cc_nonzero,
    ALTER COLUMN balance_after TYPE cc_non_negative;

ALTER TABLE fairness_seeds
    DROP CONSTRAINT fairness_seeds_server_seed_check, DROP CONSTRAINT fairness_seeds_next_nonce_check,
    DROP CONSTRAINT fairness_seeds_status_check, DROP CONSTRAINT fairness_seeds_check,
    ALTER COLUMN server_seed TYPE cc_hex64, ALTER COLUMN next_nonce TYPE cc_non_negative,
    ALTER COLUMN status TYPE cc_seed_status;

CREATE FUNCTION fairness_seeds_revealed_when_dated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.status = 'revealed') IS DISTINCT FROM (NEW.revealed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'a seed is revealed exactly when it has a revealed_at'
            USING ERRCODE = 'check_violation', TABLE = 'fairness_seeds';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER fairness_seeds_revealed_when_dated BEFORE INSERT OR UPDATE OF status, revealed_at ON fairness_seeds
    FOR EACH ROW EXECUTE FUNCTION fairness_seeds_revealed_when_dated();

ALTER TABLE game_plays
    DROP CONSTRAINT game_plays_bet_amount_check, DROP CONSTRAINT game_plays_payout_check,
    DROP CONSTRAINT game_plays_status_check, DROP CONSTRAINT game_plays_nonce_check,
    ALTER COLUMN bet_amount TYPE cc_positive, ALTER COLUMN payout TYPE cc_non_negative,
    ALTER COLUMN status TYPE cc_play_status, ALTER COLUMN nonce TYPE cc_non_negative;

ALTER TABLE user_missions
    DROP CONSTRAINT user_missions_current_progress_check,
    ALTER COLUMN current_progress TYPE cc_non_negative;

ALTER TABLE event_participations
    DROP CONSTRAINT event_participations_progress_check,
    ALTER COLUMN progress TYPE cc_json_object;

ALTER TABLE gacha_inventory
    DROP CONSTRAINT gacha_inventory_quantity_check,
    ALTER COLUMN quantity TYPE cc_positive;

ALTER TABLE crash_sessions
    DROP CONSTRAINT crash_sessions_bet_amount_check, DROP CONSTRAINT crash_sessions_payout_amount_check,
    DROP CONSTRAINT crash_sessions_status_check,
    ALTER COLUMN bet_amount TYPE cc_positive, ALTER COLUMN payout_amount TYPE cc_non_negative,
    ALTER COLUMN status TYPE cc_crash_session_status;

ALTER TABLE crash_bets
    DROP CONSTRAINT crash_bets_bet_amount_check, DROP CONSTRAINT crash_bets_payout_amount_check,
    DROP CONSTRAINT crash_bets_status_check,
    ALTER COLUMN bet_amount TYPE cc_positive, ALTER COLUMN payout_amount TYPE cc_non_negative,
    ALTER COLUMN status TYPE cc_crash_bet_status;

ALTER TABLE user_rewards
    DROP CONSTRAINT user_rewards_amount_check,
    ALTER COLUMN amount TYPE cc_non_negative;
