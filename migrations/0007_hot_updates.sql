-- Performance: room on the pages of the rows every play updates, so the
-- update stays on its page (a HOT update: no new index entries).
--
-- A play updates its player's token balance (twice on a win) and seed
-- nonce. Neither column is indexed, so each update may be HOT, but only
-- when the row's page has room for the new version: at the default
-- fillfactor of 100, one in ten updates of both tables measured non-HOT
-- under the spin benchmark (pg_stat_user_tables), each writing a new entry
-- into every index of its table (three on fairness_seeds); at 50, all of
-- them were HOT. Both tables hold one small row per player (per currency,
-- per seed), so half-empty pages cost little space. Pages written before
-- this migration keep their packing until rewritten (VACUUM FULL).
ALTER TABLE wallet_balances SET (fillfactor = 50);
ALTER TABLE fairness_seeds SET (fillfactor = 50);
