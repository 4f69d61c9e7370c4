// plays.js - the journal of plays this browser made, per user, in
// localStorage. The API has no play-history route and the fairness panel
// needs none: each record keeps what a later verification needs (game,
// nonce, client seed and commitment as used, the recorded outcome, and the
// game's public config of that moment, whose weights decide the draws).
// The newest MAX records are kept.
const MAX = 200;

const key = (userId) => `cc.console.plays.${userId}`;

export function list(userId) {
  try {
    return JSON.parse(localStorage.getItem(key(userId))) || [];
  } catch {
    return [];
  }
}

/** Adds a play record: {game, play_id, nonce, server_seed_hash,
 * client_seed, config, result, bet, ...}. */
export function add(userId, record) {
  const plays = [{ ...record, at: new Date().toISOString() }, ...list(userId)].slice(0, MAX);
  localStorage.setItem(key(userId), JSON.stringify(plays));
}

/** Updates the record of play_id (a crash round's result comes later). */
export function update(userId, playId, patch) {
  const plays = list(userId).map((p) => (p.play_id === playId ? { ...p, ...patch } : p));
  localStorage.setItem(key(userId), JSON.stringify(plays));
}
