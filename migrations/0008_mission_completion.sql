-- Performance (domain/missions.lua): a completed mission row that stops
-- being completed drops every worker's memory of completed rows.
--
-- A completed user_missions row never changes through the application (every
-- writer skips completed rows), so each worker remembers the completed rows
-- it has seen commit and leaves them out of later plays: most plays of an
-- active player then write no progress at all. An operator may still reset
-- a row by hand (completed back to false, or the row deleted). These
-- triggers bump the engagement catalogue's version (migration 0006) in the
-- transaction of any such change, and a worker drops its memory whenever
-- that version moves, so the next play counts again. Plays never fire them:
-- the row trigger's WHEN is false for every application write.
CREATE TRIGGER user_missions_uncompleted AFTER UPDATE OF completed ON user_missions
    FOR EACH ROW WHEN (OLD.completed AND NOT NEW.completed) EXECUTE FUNCTION engagement_catalogue_bump();
CREATE TRIGGER user_missions_removed AFTER DELETE OR TRUNCATE ON user_missions
    FOR EACH STATEMENT EXECUTE FUNCTION engagement_catalogue_bump();
