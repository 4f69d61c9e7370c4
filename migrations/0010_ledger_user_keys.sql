-- Performance: wallet_ledger.user_id and game_plays.user_id lose their
-- foreign keys, which CONTRACT.md §18 does not list (it names the ledger's
-- actor_id and the play's fairness_seed_id, which keep theirs).
--
-- A foreign key costs a check per inserted row: a trigger queries the users
-- row with a share lock after the statement. These two were two of a slot
-- spin's four checks, about 10 µs of its database time (interleaved
-- harness rounds: 4 % more spins per second without them). What they
-- guaranteed still holds:
--   * every ledger and play row names a real user: the ledger row is
--     written by the statement that updates the user's wallet row (whose
--     user_id keeps its foreign key) and the play row later in the same
--     transaction, which holds that row's lock;
--   * a user with money history cannot be deleted: the cascade used to
--     reach the append-only ledger and fail there; the trigger below refuses
--     first, and says why.
ALTER TABLE wallet_ledger DROP CONSTRAINT wallet_ledger_user_id_fkey;
ALTER TABLE game_plays DROP CONSTRAINT game_plays_user_id_fkey;

CREATE FUNCTION users_keep_money_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM wallet_ledger WHERE user_id = OLD.id)
        OR EXISTS (SELECT 1 FROM game_plays WHERE user_id = OLD.id) THEN
        RAISE EXCEPTION 'user % has ledger or play rows: a user with money history cannot be deleted', OLD.id
            USING ERRCODE = 'restrict_violation', TABLE = 'users';
    END IF;
    RETURN OLD;
END
$$;
CREATE TRIGGER users_keep_money_history BEFORE DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_keep_money_history();
