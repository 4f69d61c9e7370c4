-- Admin console (CONTRACT.md §13.1): the users search and listing stay fast
-- at 100 000 users and more.
--
-- The search is a case-insensitive substring match on nickname, site_id or
-- phone_number (ILIKE '%text%'). A b-tree cannot serve a leading wildcard;
-- pg_trgm's GIN indexes can, for texts of three characters or more (shorter
-- ones have no trigram to look up and scan the table: see the README's
-- benchmark figures). pg_trgm ships with PostgreSQL and is a trusted
-- extension, so the database owner may create it. The listing's order
-- (created_at desc, id desc) has its own index so a page never sorts the
-- whole table.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX users_nickname_trgm ON users USING gin (nickname gin_trgm_ops);
CREATE INDEX users_site_id_trgm ON users USING gin (site_id gin_trgm_ops);
CREATE INDEX users_phone_number_trgm ON users USING gin (phone_number gin_trgm_ops);
CREATE INDEX users_created_order ON users (created_at DESC, id DESC);
CREATE INDEX admin_audit_action ON admin_audit (action, created_at);
