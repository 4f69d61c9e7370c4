// crash.js - the crash game (CONTRACT.md §10).
//
// The live multiplier is drawn from the round's own numbers, never guessed:
// m(t) = ⌊100·e^(growth_rate·t)⌋ / 100 with t the ms since placed_at, both
// from the bet response (placed_at is the server's Redis clock). This
// browser's clock may differ from the server's, so the offset between them
// is taken from the bet request itself: the server stamped placed_at while
// the request was in flight, so it is matched with the request's midpoint.
// GET /api/games/crash/current is polled once a second: it applies the
// server's rule at the server's now, so it tells when the round crashed (or
// reached the auto cash-out target); the view then reports the round with
// POST /api/games/crash/cashout, which settles it. The cash-out button sends
// the same request; only one settlement is ever in flight.
import { html, useState, useEffect, useRef, Field, ErrorBox, useAction, useLoad, fmt, newKey } from '../ui.js';
import * as api from '../api.js';
import * as plays from '../plays.js';
import { setTokens } from '../store.js';

const POLL_MS = 1000;

/** m(t) in hundredths, as scripts/games/crash.lua computes it. */
const multiplierX100 = (rate, t) => Math.floor(100 * Math.exp(rate * Math.max(0, t)));

export function CrashView({ session }) {
  const cfg = useLoad(() => api.request('GET', '/api/games/crash/config', { auth: false }), []);
  const [bet, setBet] = useState('10');
  const [auto, setAuto] = useState('');
  const [round, setRound] = useState(null); // {game_id, play_id, bet_amount, placed_ms, rate, auto, start_local}
  const [shown, setShown] = useState(100); // multiplier on screen, hundredths
  const [outcome, setOutcome] = useState(null);
  const { busy, error, setError, run } = useAction();
  const settling = useRef(false);
  const settled = useRef(new Set());
  const roundRef = useRef(null);
  roundRef.current = round;

  // Resume a round left running (page reload): the current route has no
  // growth rate, so the one of the public config is used.
  useEffect(() => {
    if (!cfg.data) return;
    api.get('/api/games/crash/current').then((cur) => {
      if (cur.active && cur.round && !roundRef.current) {
        const placed = Date.parse(cur.round.placed_at);
        const elapsed = Math.log(cur.round.multiplier) / cfg.data.growth_rate;
        setRound({
          game_id: cur.round.game_id, bet_amount: cur.round.bet_amount, rate: cfg.data.growth_rate,
          auto: cur.round.auto_cashout_multiplier, placed_ms: placed, start_local: performance.now() - elapsed,
        });
      } else if (cur.round && !cur.active) {
        settle(cur.round.game_id); // an unreported result
      }
    }).catch(setError);
  }, [cfg.data]);

  // Animation: redraw the multiplier every frame while a round runs.
  useEffect(() => {
    if (!round) return undefined;
    let raf = 0;
    const frame = () => {
      setShown(multiplierX100(round.rate, performance.now() - round.start_local));
      raf = requestAnimationFrame(frame);
    };
    raf = requestAnimationFrame(frame);
    return () => cancelAnimationFrame(raf);
  }, [round]);

  // Polling: the server says when the round crashed or auto-cashed.
  useEffect(() => {
    if (!round) return undefined;
    const timer = setInterval(async () => {
      try {
        const cur = await api.get('/api/games/crash/current');
        const r = roundRef.current;
        if (!r) return;
        if (!cur.round || cur.round.game_id !== r.game_id || cur.round.status !== 'active') settle(r.game_id);
      } catch (e) {
        setError(e);
      }
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [round]);

  async function settle(gameId) {
    // One settlement per round: a poll that was already in flight when the
    // round settled must not report it again (that would be a 404).
    if (settling.current || settled.current.has(gameId)) return;
    settling.current = true;
    try {
      const r = await api.post('/api/games/crash/cashout', { game_id: gameId }, { headers: { 'Idempotency-Key': newKey() } });
      settled.current.add(gameId);
      const current = roundRef.current;
      roundRef.current = null;
      setTokens(r.balance);
      setOutcome(r);
      setRound(null);
      if (r.result === 'cashed') setShown(Math.round(r.multiplier * 100));
      else setShown(Math.round(r.crash_point * 100));
      if (current && current.play_id) {
        plays.update(session.user.id, current.play_id, {
          result: r.result === 'cashed' ? { cashed_at: r.multiplier } : { crash_point: r.crash_point },
        });
      }
    } catch (e) {
      setError(e);
      if (e instanceof api.ApiError && e.status === 404) { // settled elsewhere (another tab)
        settled.current.add(gameId);
        roundRef.current = null;
        setRound(null);
      }
    } finally {
      settling.current = false;
    }
  }

  const place = (e) => {
    e.preventDefault();
    run(async () => {
      const config = cfg.data;
      const body = { bet_amount: Number(bet), auto_cashout_multiplier: auto === '' ? null : Number(auto) };
      const t0 = performance.now();
      const r = await api.post('/api/games/crash/bet', body, { headers: { 'Idempotency-Key': newKey() } });
      const t1 = performance.now();
      setTokens(r.balance);
      setOutcome(null);
      setShown(100);
      plays.add(session.user.id, {
        game: 'crash', play_id: r.play_id, nonce: r.nonce, server_seed_hash: r.server_seed_hash,
        client_seed: r.client_seed, bet: r.bet_amount,
        config: { house_edge: config.house_edge, max_multiplier: config.max_multiplier }, result: {},
      });
      setRound({
        game_id: r.game_id, play_id: r.play_id, bet_amount: r.bet_amount, rate: r.growth_rate,
        auto: r.auto_cashout_multiplier, placed_ms: Date.parse(r.placed_at), start_local: (t0 + t1) / 2,
      });
    });
  };

  const label = round ? 'Round running' : outcome ? (outcome.result === 'cashed' ? 'Cashed out' : 'Crashed') : 'Ready';
  return html`<section>
    <h1>Crash</h1>
    ${cfg.error && html`<${ErrorBox} error=${cfg.error} />`}
    ${cfg.data && html`
      <p class="muted">The multiplier grows as e^(${cfg.data.growth_rate}·t ms) from your bet until the round's hidden
        crash point (house edge ${fmt.pct(cfg.data.house_edge, 1)}, cap ${fmt.x(cfg.data.max_multiplier)}). Cash out
        before it crashes, or set an automatic cash-out.</p>
      <div class=${`crash-screen ${outcome && outcome.result === 'crashed' ? 'crashed' : ''}`}>
        <p class="crash-state">${label}</p>
        <p class="multiplier" data-testid="crash-multiplier" aria-live="off">${(shown / 100).toFixed(2)}×</p>
      </div>
      <form class="card play" onSubmit=${place}>
        <${Field} label="Bet (tokens)" name="crash_bet" type="number" value=${bet} onInput=${setBet}
          min=${cfg.data.min_bet} max=${cfg.data.max_bet} step="1" required disabled=${!!round} />
        <${Field} label="Auto cash-out at (×, optional)" name="auto_cashout" type="number" value=${auto}
          onInput=${setAuto} min="1.01" max=${cfg.data.max_multiplier} step="0.01" disabled=${!!round}
          hint="Leave empty to cash out by hand." />
        <div class="row">
          <button type="submit" disabled=${busy || !!round} data-testid="crash-bet">Place bet</button>
          <button type="button" class="cashout" disabled=${!round} data-testid="crash-cashout"
            onClick=${() => round && settle(round.game_id)}>Cash out</button>
        </div>
        <${ErrorBox} error=${error} />
        <p class="result" role="status" aria-live="polite" data-testid="crash-result">${
          round ? `Bet ${fmt.n(round.bet_amount)} placed${round.auto ? `, auto cash-out at ${fmt.x(round.auto)}` : ''}.`
          : outcome ? (outcome.result === 'cashed'
            ? `Cashed out at ${fmt.x(outcome.multiplier)}: payout ${fmt.n(outcome.payout)} (profit ${fmt.n(outcome.win_amount)}). Balance ${fmt.n(outcome.balance)}.`
            : `Crashed at ${fmt.x(outcome.crash_point)}: the bet is lost. Balance ${fmt.n(outcome.balance)}.`)
          : 'Place a bet to start a round.'}</p>
      </form>`}
  </section>`;
}
