-- Crash: the sweeper looks for unsettled crash plays every second to settle
-- rounds whose Redis state was lost (CONTRACT.md §10.3); this partial index
-- keeps that lookup proportional to the rounds in flight, not to all plays.
CREATE INDEX game_plays_crash_pending ON game_plays (id) WHERE game_type = 'crash' AND status = 'pending';
