// fair.js - provably-fair verification in the browser (CONTRACT.md §8), a
// port of scripts/lib/fair.lua and of the draws of scripts/games/*.lua.
//
// For (server seed S, client seed C, nonce N) the random stream is
// block_0 ‖ block_1 ‖ … with block_k = HMAC-SHA256(key = ASCII(S),
// msg = C + ":" + N + ":" + k), read as 32-bit big-endian words:
//   int(n)      limit = 2^32 − (2^32 mod n); words until u < limit; u mod n
//   float53()   words u1, u2 → u1·2^21 + ⌊u2 / 2^11⌋ (float() = that / 2^53)
//   weighted(w) r = int(Σw); the first j with w1+…+wj > r
// A play is verified when SHA-256(S) is the commitment the play carried
// (server_seed_hash) and the outcome re-derived from S, C, N equals the
// recorded one. Nothing here trusts the server's own verify.
//
// HMAC and SHA-256 come from WebCrypto, which browsers offer only in
// secure contexts (https, localhost); elsewhere (plain http behind a load
// balancer) from @noble/hashes, loaded only then. setEngine('noble') forces
// the fallback (the fairness panel offers it, and the browser tests use it).
// This module has no DOM code, so Node can run it too.

const TWO32 = 4294967296;
const TWO21 = 2097152;
const TWO11 = 2048;
const enc = new TextEncoder();

let forced = null;
let noble = null;

/** Chooses the engine: 'webcrypto', 'noble' or null (automatic). */
export function setEngine(name) {
  forced = name || null;
}

/** The engine the next computation will use. */
export function engine() {
  if (forced) return forced;
  return globalThis.crypto && globalThis.crypto.subtle && globalThis.isSecureContext !== false ? 'webcrypto' : 'noble';
}

async function loadNoble() {
  if (!noble) {
    const base = new URL('../vendor/noble-hashes-2.4.0/', import.meta.url).href;
    const [{ hmac }, { sha256 }] = await Promise.all([import(`${base}hmac.js`), import(`${base}sha2.js`)]);
    noble = { hmac, sha256 };
  }
  return noble;
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/** Lowercase hex SHA-256 of the UTF-8 text. */
export async function sha256Hex(text) {
  if (engine() === 'webcrypto') return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(text))));
  const { sha256 } = await loadNoble();
  return hex(sha256(enc.encode(text)));
}

/** A function (message) -> Promise<Uint8Array(32)> = HMAC-SHA256(key, message). */
async function hmacFor(key) {
  if (engine() === 'webcrypto') {
    const k = await crypto.subtle.importKey('raw', enc.encode(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return async (msg) => new Uint8Array(await crypto.subtle.sign('HMAC', k, enc.encode(msg)));
  }
  const { hmac, sha256 } = await loadNoble();
  const kb = enc.encode(key);
  return async (msg) => hmac(sha256, kb, enc.encode(msg));
}

/** The §8 stream of (serverSeed, clientSeed, nonce): an object with async
 * word(), int(n), float53() and weighted(weights). */
export async function stream(serverSeed, clientSeed, nonce) {
  const mac = await hmacFor(serverSeed);
  const prefix = `${clientSeed}:${nonce}:`;
  let k = 0;
  let words = [];
  let pos = 8;
  const src = {
    async word() {
      if (pos >= 8) {
        const b = await mac(prefix + k);
        k++;
        words = [];
        for (let i = 0; i < 8; i++) {
          words.push(((b[4 * i] * 256 + b[4 * i + 1]) * 256 + b[4 * i + 2]) * 256 + b[4 * i + 3]);
        }
        pos = 0;
      }
      return words[pos++];
    },
    async int(n) {
      const limit = TWO32 - (TWO32 % n);
      let u = await src.word();
      while (u >= limit) u = await src.word();
      return u % n;
    },
    async float53() {
      const u1 = await src.word();
      const u2 = await src.word();
      return u1 * TWO21 + Math.floor(u2 / TWO11);
    },
    async weighted(weights) {
      const total = weights.reduce((a, b) => a + b, 0);
      const r = await src.int(total);
      let acc = 0;
      for (let j = 0; j < weights.length; j++) {
        acc += weights[j];
        if (acc > r) return j;
      }
      throw new Error('weighted() needs positive weights');
    },
  };
  return src;
}

/** Crash point in hundredths from F = float53(), exactly as
 * scripts/games/crash.lua: ⌊K·2^53 / ((2^53 − F)·10^4)⌋ with
 * K = 10^6·(1 − house_edge), at least 100, at most max_multiplier·100. */
export function crashPointX100(config, F) {
  const two53 = 2n ** 53n;
  const keep = 1000000n - BigInt(Math.floor(config.house_edge * 1000000 + 0.5));
  const q = (keep * two53) / ((two53 - BigInt(F)) * 10000n);
  const cap = BigInt(Math.round(config.max_multiplier * 100));
  let x = q < cap ? q : cap;
  if (x < 100n) x = 100n;
  return Number(x);
}

const RPS = ['rock', 'paper', 'scissors'];

/** Re-derives a play's outcome. play: a record of plays.js ({game, nonce,
 * client_seed, config, ...}). Returns the outcome in the record's terms. */
export async function derive(play, serverSeed, clientSeed = play.client_seed, nonce = play.nonce) {
  const src = await stream(serverSeed, clientSeed, nonce);
  const c = play.config;
  switch (play.game) {
    case 'slot': {
      const reels = [];
      for (let r = 0; r < 3; r++) reels.push(c.symbols[await src.weighted(c.reels[r])]);
      return { reels };
    }
    case 'rps':
      return { computer_choice: RPS[await src.int(3)] };
    case 'gacha': {
      const weights = c.rarities.map((r) => r.weight);
      const items = [];
      for (let i = 0; i < play.pull_count; i++) {
        const rarity = c.rarities[await src.weighted(weights)];
        const item = rarity.items.length > 1 ? rarity.items[await src.int(rarity.items.length)] : rarity.items[0];
        items.push(item.item_key);
      }
      return { items };
    }
    case 'crash':
      return { crash_point: crashPointX100(c, await src.float53()) / 100 };
    default:
      throw new Error(`unknown game ${play.game}`);
  }
}

/** What the play recorded, in the terms of derive(). */
export function recorded(play) {
  switch (play.game) {
    case 'slot': return { reels: play.result.reels };
    case 'rps': return { computer_choice: play.result.computer_choice };
    case 'gacha': return { items: play.result.items.map((i) => i.item_key) };
    case 'crash': return play.result;
    default: return {};
  }
}

/** A readable form of an outcome. */
export function show(game, o) {
  if (!o) return '–';
  if (game === 'slot') return o.reels.join(' ');
  if (game === 'rps') return `computer: ${o.computer_choice}`;
  if (game === 'gacha') return o.items.join(', ');
  if (game === 'crash') {
    if (o.crash_point !== undefined) return `crash point ${o.crash_point.toFixed(2)}×`;
    if (o.cashed_at !== undefined) return `cashed out at ${o.cashed_at.toFixed(2)}×`;
  }
  return JSON.stringify(o);
}

function matches(play, got) {
  const want = recorded(play);
  if (play.game === 'crash') {
    // A crashed round reports its crash point; a cashed one only that the
    // crash point was at least the cash-out multiplier.
    if (want.crash_point !== undefined) return got.crash_point === want.crash_point;
    if (want.cashed_at !== undefined) return got.crash_point >= want.cashed_at;
    return true;
  }
  return JSON.stringify(got) === JSON.stringify(want);
}

/** Verifies a play against a server seed: {ok, commitment, derived,
 * recorded, reason}. commitment: SHA-256(seed) equals the play's
 * server_seed_hash. ok needs both the commitment and the outcome. */
export async function verify(play, serverSeed, clientSeed = play.client_seed, nonce = play.nonce) {
  const digest = await sha256Hex(serverSeed);
  const commitment = digest === play.server_seed_hash;
  const got = await derive(play, serverSeed, clientSeed, Number(nonce));
  const same = matches(play, got);
  const reasons = [];
  if (!commitment) reasons.push(`SHA-256 of the seed is ${digest.slice(0, 16)}…, not the committed ${play.server_seed_hash.slice(0, 16)}…`);
  if (!same) reasons.push(`re-derived ${show(play.game, got)}, recorded ${show(play.game, recorded(play))}`);
  return { ok: commitment && same, commitment, outcome: same, derived: got, engine: engine(), reason: reasons.join('; ') };
}
