-- rbac.lua - rank levels and the combined rank/segment access rule
-- (CONTRACT.md §6). Pure Lua, no I/O: the authenticator's rank check, the
-- RBAC routes and game scripts share one definition of "rank R or better",
-- and busted checks it without a server.
local M = {}

--- Levels of the stored ranks (users.vip_tier); any other value is 0.
M.LEVELS = { STANDARD = 1, PREMIUM = 2, VIP = 3 }

--- level(rank) -> 1 (STANDARD), 2 (PREMIUM), 3 (VIP), 0 for anything else.
function M.level(rank)
  return M.LEVELS[rank] or 0
end

--- has_rank(rank, required_rank) -> true when rank's level is at least the
--- required one's.
function M.has_rank(rank, required_rank)
  return M.level(rank) >= M.level(required_rank)
end

--- combined_access(rank, segment_level, required_rank, required_segment_level)
--- -> true when the rank check passes AND segment_level >=
--- required_segment_level (absent segment levels count as 0).
function M.combined_access(rank, segment_level, required_rank, required_segment_level)
  return M.has_rank(rank, required_rank) and (segment_level or 0) >= (required_segment_level or 0)
end

return M
