-- update.sql - pgbench script: the statement of POST /bench/db/update (one
-- autocommit UPDATE … RETURNING), and the one-statement transaction that is
-- the slot spin's floor. Rows rotate per client as the wrk requests do.
-- Needs -D seq=0 -D nrows=<rows of bench_rows> -D stride=<rows / clients>.
\set seq :seq + 1
\set id 1 + (:client_id * :stride + :seq) % :nrows
UPDATE bench_rows SET n = n + 1 WHERE id = :id RETURNING n;
