-- rtp_bands.lua - the RTP band each game's exact return must lie in
-- (CONTRACT.md §9). A reload whose game config computes an exact RTP outside
-- its band is refused and the running generation keeps serving.
--
-- Kept here, in config/, and not in scripts/games/ so the designer who edits
-- a paytable cannot move the band with it; it is not read from the
-- environment either. The host snapshots config/ at every reload as
-- "config/rtp_bands.lua", so scripts load it with `require "config.rtp_bands"`.
-- Bounds are inclusive: {low, high}. Gacha has no band (its item values are
-- display values, never credited).
return {
  slot = { 0.945, 0.955 },
  rps = { 0.95, 1.00 },
  crash = { 0.95, 0.995 },
}
