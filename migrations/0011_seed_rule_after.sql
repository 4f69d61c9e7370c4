-- Performance: the seed rule of migration 0009 (a seed is revealed exactly
-- when it has a revealed_at) runs after the row is written, not before.
--
-- A table with any BEFORE UPDATE row trigger makes every UPDATE of it lock
-- each row before writing it (PostgreSQL fetches the row for the trigger
-- with a tuple lock, and WAL-logs that lock), whatever the trigger's column
-- list says: the trigger is filtered out only afterwards. Every play's nonce
-- update (SET next_nonce = next_nonce + 1) paid that lock and its WAL record.
-- An AFTER trigger is queued only when status or revealed_at is in the
-- statement's SET list, so the nonce update touches the row once. The rule
-- is the same, with the same SQLSTATE (23514): an AFTER row trigger that
-- raises still rolls the statement back.
DROP TRIGGER fairness_seeds_revealed_when_dated ON fairness_seeds;
CREATE TRIGGER fairness_seeds_revealed_when_dated AFTER INSERT OR UPDATE OF status, revealed_at ON fairness_seeds
    FOR EACH ROW EXECUTE FUNCTION fairness_seeds_revealed_when_dated();
