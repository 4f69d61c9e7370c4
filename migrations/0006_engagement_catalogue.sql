-- Performance (domain/catalogue.lua): the version of the mission and event
-- definitions, so a worker may keep them in memory and still never count a
-- play against definitions older than its own transaction sees.
--
-- Every play counts for missions and events (CONTRACT.md §12.3). Asking the
-- database which of them a play advances took two statements and a round
-- trip of every play; the definitions change only when an admin (or a
-- migration, or a hand-written UPDATE) edits them. A statement trigger bumps
-- the version in the transaction of any such change, whoever makes it; a
-- play reads the version with its first statements and reloads the
-- definitions only when it moved.
CREATE TABLE engagement_catalogue (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL DEFAULT 1
);
INSERT INTO engagement_catalogue DEFAULT VALUES;

CREATE FUNCTION engagement_catalogue_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE engagement_catalogue SET version = version + 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER missions_catalogue AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON missions
    FOR EACH STATEMENT EXECUTE FUNCTION engagement_catalogue_bump();
CREATE TRIGGER events_catalogue AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION engagement_catalogue_bump();
