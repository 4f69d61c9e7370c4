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
--
-- Listeners must register when their module loads from a routes/ file (every
-- routes/ file loads at each generation; domain modules load on demand).
local M = {}

local listeners = {}

--- on(fn): fn(user_id, event) is called for every emitted event, in
--- registration order, inside the emitter's transaction; an error in it
--- rolls the whole action back.
function M.on(fn)
  assert(type(fn) == "function", "progress.on expects a function")
  listeners[#listeners + 1] = fn
end

--- emit(user_id, event): tells every listener; call it inside the
--- transaction that did the action.
function M.emit(user_id, event)
  for i = 1, #listeners do listeners[i](user_id, event) end
end

return M
