// games.js - the slot, rock-paper-scissors and gacha (CONTRACT.md §9).
// Each view reads its game's public config (the live paytable, reel weights
// or odds of the loaded scripts), plays with an Idempotency-Key, shows the
// new balance from the response, and records the play in this browser's
// journal (plays.js) with the config it was played under, for the fairness
// panel.
import {
  html, useState, Field, Select, ErrorBox, Table, useAction, useLoad, fmt, newKey,
} from '../ui.js';
import * as api from '../api.js';
import * as plays from '../plays.js';
import { setTokens } from '../store.js';

/** Fairness fields every play response carries. */
const fairness = (r) => ({
  play_id: r.play_id, nonce: r.nonce, server_seed_hash: r.server_seed_hash, client_seed: r.client_seed,
});

function BetField({ value, onInput, config }) {
  return html`<${Field} label="Bet (tokens)" name="bet_amount" type="number" inputmode="numeric" value=${value}
    onInput=${onInput} min=${config.min_bet} max=${config.max_bet} step="1" required
    hint=${`From ${fmt.n(config.min_bet)} to ${fmt.n(config.max_bet)} tokens.`} />`;
}

function Loading({ state, children }) {
  if (state.error) return html`<${ErrorBox} error=${state.error} />`;
  if (!state.data) return html`<p class="muted">Loading…</p>`;
  return children(state.data);
}

/* ---- slot ---- */

function SlotRules({ config }) {
  const totals = config.reels.map((w) => w.reduce((a, b) => a + b, 0));
  return html`<details class="card rules">
    <summary>Reels and paytable (RTP ${fmt.pct(config.rtp)}, hit frequency ${fmt.pct(config.hit_frequency, 2)})</summary>
    <${Table} caption="Symbol weights per reel and multipliers" head=${['Symbol', 'Reel 1', 'Reel 2', 'Reel 3', 'Three', 'Adjacent pair']}>
      ${config.symbols.map((s, i) => html`<tr>
        <th scope="row" class="glyph">${s}</th>
        ${config.reels.map((w, r) => html`<td>${w[i]} <small class="muted">(${fmt.pct(w[i] / totals[r], 1)})</small></td>`)}
        <td>${fmt.x(config.triple_x100[s] / 100)}</td>
        <td>${fmt.x(config.pair_x100[s] / 100)}</td>
      </tr>`)}
    </${Table}>
    <p class="muted">Three equal symbols pay the "three" multiplier; otherwise reel 1 = reel 2 or reel 2 = reel 3 pays
      the pair's multiplier. Payout = bet × multiplier, rounded down.</p>
  </details>`;
}

export function SlotView({ session }) {
  const cfg = useLoad(() => api.request('GET', '/api/games/slot/config', { auth: false }), []);
  const [bet, setBet] = useState('10');
  const [last, setLast] = useState(null);
  const [history, setHistory] = useState([]);
  const { busy, error, run } = useAction();

  const spin = (e) => {
    e.preventDefault();
    run(async () => {
      const config = cfg.data;
      const r = await api.post('/api/games/slot/spin', { bet_amount: Number(bet) }, { headers: { 'Idempotency-Key': newKey() } });
      setTokens(r.balance);
      setLast(r);
      setHistory((h) => [r, ...h].slice(0, 10));
      plays.add(session.user.id, {
        game: 'slot', ...fairness(r), bet: Number(bet),
        config: { symbols: config.symbols, reels: config.reels },
        result: { reels: r.reels, win_type: r.win_type, win_amount: r.win_amount },
      });
    });
  };

  return html`<section>
    <h1>Slot</h1>
    <${Loading} state=${cfg}>${(config) => html`
      <${SlotRules} config=${config} />
      <form class="card play" onSubmit=${spin}>
        <div class="reels" role="img" aria-label=${last ? `Reels: ${last.reels.join(' ')}` : 'Reels not spun yet'}
          data-testid="reels">
          ${(last ? last.reels : ['?', '?', '?']).map((s) => html`<span class=${`reel ${busy ? 'spinning' : ''}`}>${s}</span>`)}
        </div>
        <${BetField} value=${bet} onInput=${setBet} config=${config} />
        <button type="submit" disabled=${busy} data-testid="spin">${busy ? 'Spinning…' : 'Spin'}</button>
        <${ErrorBox} error=${error} />
        <p class="result" role="status" aria-live="polite" data-testid="slot-result">${last
          ? `${last.win_type === 'none' ? 'No win.' : `${last.win_type === 'triple' ? 'Three of a kind' : 'Pair'}${
            last.is_jackpot ? ' — JACKPOT' : ''}: won ${fmt.n(last.win_amount)} tokens.`} Balance ${fmt.n(last.balance)} (play #${
            last.play_id}, nonce ${last.nonce}).`
          : 'Place a bet and spin.'}</p>
      </form>
      ${history.length > 0 && html`<${Table} caption="Spins on this page" head=${['Play', 'Reels', 'Win', 'Balance']}>
        ${history.map((h) => html`<tr key=${h.play_id}><td>#${h.play_id}</td><td class="glyph">${h.reels.join(' ')}</td>
          <td>${fmt.n(h.win_amount)}</td><td>${fmt.n(h.balance)}</td></tr>`)}
      </${Table}>`}
    `}</${Loading}>
  </section>`;
}

/* ---- rock, paper, scissors ---- */

const GLYPH = { rock: '✊', paper: '✋', scissors: '✌️' };

export function RpsView({ session }) {
  const cfg = useLoad(() => api.request('GET', '/api/games/rps/config', { auth: false }), []);
  const [bet, setBet] = useState('10');
  const [last, setLast] = useState(null);
  const { busy, error, run } = useAction();

  const play = (choice) => run(async () => {
    const r = await api.post('/api/games/rps/play', { choice, bet_amount: Number(bet) }, { headers: { 'Idempotency-Key': newKey() } });
    setTokens(r.balance);
    setLast(r);
    plays.add(session.user.id, {
      game: 'rps', ...fairness(r), bet: Number(bet), config: {},
      result: { player_choice: r.player_choice, computer_choice: r.computer_choice, result: r.result, win_amount: r.win_amount },
    });
  });

  return html`<section>
    <h1>Rock, paper, scissors</h1>
    <${Loading} state=${cfg}>${(config) => html`
      <p class="muted">A win pays ${fmt.x(config.win_x100 / 100)}, a draw ${fmt.x(config.draw_x100 / 100)} the stake;
        RTP ${fmt.pct(config.rtp)}.</p>
      <form class="card play" onSubmit=${(e) => e.preventDefault()}>
        <${BetField} value=${bet} onInput=${setBet} config=${config} />
        <fieldset class="choices"><legend>Your choice</legend>
          ${['rock', 'paper', 'scissors'].map((c) => html`<button type="button" disabled=${busy} onClick=${() => play(c)}>
            <span aria-hidden="true">${GLYPH[c]}</span> ${c[0].toUpperCase() + c.slice(1)}</button>`)}
        </fieldset>
        <${ErrorBox} error=${error} />
        <p class="result" role="status" aria-live="polite">${last ? `You: ${GLYPH[last.player_choice]} ${last.player_choice}, computer: ${
          GLYPH[last.computer_choice]} ${last.computer_choice}. ${last.message} Paid ${fmt.n(last.win_amount)}; balance ${
          fmt.n(last.balance)}.` : 'Choose to play.'}</p>
      </form>
    `}</${Loading}>
  </section>`;
}

/* ---- gacha ---- */

function Inventory({ version }) {
  const inv = useLoad(() => api.get('/api/games/gacha/inventory'), [version]);
  return html`<${Loading} state=${inv}>${(d) => html`
    <${Table} caption=${`Inventory: ${fmt.n(d.total_items)} items, display value ${fmt.n(d.total_value)}`}
      head=${['Item', 'Rarity', 'Value', 'Quantity']}>
      ${d.items.length === 0 && html`<tr><td colspan="4" class="muted">No items yet.</td></tr>`}
      ${d.items.map((i) => html`<tr key=${i.item_key}><td>${i.name}</td><td>${i.rarity}</td><td>${fmt.n(i.value)}</td>
        <td>${fmt.n(i.quantity)}</td></tr>`)}
    </${Table}>`}</${Loading}>`;
}

export function GachaView({ session }) {
  const cfg = useLoad(() => api.request('GET', '/api/games/gacha/config', { auth: false }), []);
  const [count, setCount] = useState('1');
  const [last, setLast] = useState(null);
  const [version, setVersion] = useState(0);
  const { busy, error, run } = useAction();

  const pull = (e) => {
    e.preventDefault();
    run(async () => {
      const config = cfg.data;
      const n = Number(count);
      const r = await api.post('/api/games/gacha/pull', { pull_count: n }, { headers: { 'Idempotency-Key': newKey() } });
      setTokens(r.balance);
      setLast(r);
      setVersion((v) => v + 1);
      plays.add(session.user.id, {
        game: 'gacha', ...fairness(r), bet: config.cost_per_pull * n, pull_count: n,
        config: { rarities: config.rarities.map((x) => ({ rarity: x.rarity, weight: x.weight, items: x.items })) },
        result: { items: r.items },
      });
    });
  };

  return html`<section>
    <h1>Gacha</h1>
    <${Loading} state=${cfg}>${(config) => html`
      <${Table} caption=${`Odds (disclosed): ${fmt.n(config.cost_per_pull)} ${config.currency} per pull`}
        head=${['Rarity', 'Weight', 'Probability', 'Items (display value, never credited)']}>
        ${config.rarities.map((r) => html`<tr key=${r.rarity}><th scope="row">${r.rarity}</th><td>${r.weight}</td>
          <td>${fmt.pct(r.probability, 2)}</td><td>${r.items.map((i) => `${i.name} (${fmt.n(i.value)})`).join(', ')}</td></tr>`)}
      </${Table}>
      <form class="card play" onSubmit=${pull}>
        <${Select} label="Pulls" name="pull_count" value=${count} onChange=${setCount}
          options=${Array.from({ length: config.max_pull_count }, (_, i) => [String(i + 1), `${i + 1} (${fmt.n((i + 1) * config.cost_per_pull)} tokens)`])} />
        <button type="submit" disabled=${busy}>${busy ? 'Pulling…' : 'Pull'}</button>
        <${ErrorBox} error=${error} />
        <p class="result" role="status" aria-live="polite">${last ? `${last.message}: ${
          last.items.map((i) => `${i.name} (${i.rarity})`).join(', ')}. Balance ${fmt.n(last.balance)}.` : ''}</p>
      </form>
      <${Inventory} version=${version} />
    `}</${Loading}>
  </section>`;
}
