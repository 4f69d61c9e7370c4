-- progress.lua - the seam between things players do and what counts them
-- (CONTRACT.md §12.3). Game plays, logins and the like emit an event inside
-- their own transaction; listeners (mission and event progress) register
-- with on() and write their rows in that same transaction, so progress
-- commits or rolls back with the action that earned it. With no listener
-- registered, emit does nothing.
--
-- Events emitted by the games (all inside the play's transaction):
--   {kind = "play", game_type = "slot"|"rps"|"gacha"|"crash", bet = n,
--    payout = n, win = bool, play_id = id}
--       one play request that debited `bet` tokens (play_count +1,
--       spend_tokens +bet, win_count +1 when win: payout > bet). A crash bet
--       emits it with payout 0 and win false;
--   {kind = "win", game_type = "crash", bet = n, payout = n, play_id = id}
--       a play whose win was decided after its "play" event (crash cashed
--       with payout > bet): win_count +1;
--   {kind = "gacha_pull", count = n, play_id = id}
--       a gacha request of n pulls (gacha_pull +n).
-- and by accounts and auth:
--   {kind = "login"}
--       a signup, login or admin login (login +1).
--
-- Listeners must register when their module loads from a routes/ file (every
-- routes/ file loads at each generation; domain modules load on demand).
-- Mission and event progress subscribe with on_counts and get each event
-- mapped once to the §12.3 keys.
local clock = require "domain.clock"

local M = {}

local listeners, counters = {}, {}

--- The progress keys the server counts itself (§12.3): clients may not
--- report them (events drop them from progress input, missions of these
--- target types refuse client progress).
M.SERVER_KEYS = { play_count = true, win_count = true, gacha_pull = true, login = true, spend_tokens = true }

--- on(fn): fn(user_id, event) is called for every emitted event, in
--- registration order, inside the emitter's transaction; an error in it
--- rolls the whole action back.
function M.on(fn)
  assert(type(fn) == "function", "progress.on expects a function")
  listeners[#listeners + 1] = fn
end

--- counts(event) -> {key = n}, game_type: what one event counts for the
--- progress keys of §12.3 (play_count, win_count, gacha_pull, login,
--- spend_tokens), and the game it came from (nil for a login). The one
--- mapping from actions to progress: missions and events share it.
function M.counts(event)
  local kind = event.kind
  if kind == "play" then
    return { play_count = 1, spend_tokens = event.bet, win_count = event.win and 1 or nil }, event.game_type
  elseif kind == "win" then
    return { win_count = 1 }, event.game_type
  elseif kind == "gacha_pull" then
    return { gacha_pull = event.count }, "gacha"
  elseif kind == "login" then
    return { login = 1 }, nil
  end
  return {}, nil
end

--- on_counts(fn): fn(user_id, counts, game_type, now) is called, inside
--- the emitter's transaction, with what each event counts (M.counts) when
--- it counts for anything, and the instant it counts at (clock.now(), read
--- once for every listener): how mission and event progress subscribe.
function M.on_counts(fn)
  assert(type(fn) == "function", "progress.on_counts expects a function")
  counters[#counters + 1] = fn
end

--- emit(user_id, event): tells every listener; call it inside the
--- transaction that did the action.
function M.emit(user_id, event)
  for i = 1, #listeners do listeners[i](user_id, event) end
  if #counters == 0 then return end
  local counts, game_type = M.counts(event)
  if next(counts) == nil then return end
  local now = clock.now()
  for i = 1, #counters do counters[i](user_id, counts, game_type, now) end
end

return M
