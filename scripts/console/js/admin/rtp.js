// rtp.js - the designers' RTP report (CONTRACT.md §13.6): per game of the
// loaded script generation, the exact RTP of its paytable (the figure
// `cchost rtp` prints), the hit frequency, the band the loader enforces,
// the deviation per play and the payout distribution as a chart (uPlot, on
// a logarithmic probability axis so a 1-in-15 625 jackpot stays visible),
// with the same numbers in a table. The gacha credits nothing: it shows its
// display value per token and its rarity odds instead.
import uPlot from '../../vendor/uplot-1.6.32/dist/uPlot.esm.js';
import { html, useEffect, useRef, ErrorBox, Table, useLoad, fmt } from '../ui.js';
import * as api from '../api.js';

const NAMES = { slot: 'Slot', rps: 'Rock, paper, scissors', crash: 'Crash', gacha: 'Gacha' };
const AXIS = { crash: 'crash point from (×)', gacha: 'rarity' };

function labels(game) {
  return game.distribution.map((d) => (d.rarity !== undefined ? d.rarity : String(d.payout_multiplier)));
}

/** "12.5 %", "0.001 %": probabilities as designers read them. */
const pctLabel = (v) => `${parseFloat((v * 100).toPrecision(v >= 0.01 ? 3 : 1))} %`;

/** A bar chart of the distribution; redrawn to the card's width. */
function Chart({ game }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    const names = labels(game);
    const xs = names.map((_, i) => i);
    const ys = game.distribution.map((d) => d.probability);
    const positive = ys.filter((y) => y > 0);
    const min = positive.length ? Math.min(...positive) : 1e-6;
    // The floor is the decade below the smallest bar, so that bar shows.
    const floorExp = Math.floor(Math.log10(min) - 1e-9);
    const decades = [];
    for (let e = floorExp; e <= 0; e++) decades.push(10 ** e);
    const css = getComputedStyle(document.documentElement);
    const ink = css.getPropertyValue('--ink').trim() || '#222';
    const accent = css.getPropertyValue('--accent').trim() || '#3366cc';
    const grid = css.getPropertyValue('--line').trim() || '#ddd';
    const width = () => Math.max(260, el.clientWidth);
    const opts = {
      width: width(),
      height: 240,
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: false, range: [-0.6, xs.length - 0.4] },
        y: { distr: 3, log: 10, range: [10 ** floorExp, 1] },
      },
      axes: [
        {
          stroke: ink, grid: { show: false }, ticks: { stroke: grid }, splits: () => xs,
          // On a narrow chart every other label of a long axis is left out.
          values: (u, splits) => splits.map((i) => (u.width < 420 && xs.length > 8 && i % 2 ? '' : names[i] ?? '')),
          label: AXIS[game.game_type] || 'payout (× stake)',
          labelSize: 24, font: '12px system-ui, sans-serif', labelFont: '12px system-ui, sans-serif',
          ...(xs.length > 8 ? { rotate: -45, size: 46 } : {}),
        },
        {
          stroke: ink, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, label: 'probability (log scale)',
          size: 70, splits: () => decades, values: (u, splits) => splits.map((v) => (v == null ? '' : pctLabel(v))),
          font: '12px system-ui, sans-serif', labelFont: '12px system-ui, sans-serif',
        },
      ],
      series: [
        {},
        {
          label: 'probability', stroke: accent, fill: `${accent}cc`, width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 48], align: 0 }), points: { show: false },
        },
      ],
    };
    // Bars start at the axis floor: a log scale has no zero.
    const data = [xs, ys.map((y) => (y > 0 ? y : null))];
    const chart = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => chart.setSize({ width: width(), height: 240 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      chart.destroy();
    };
  }, [game]);
  const name = NAMES[game.game_type] || game.game_type;
  return html`<div class="chart" ref=${box} role="img" data-testid=${`chart-${game.game_type}`}
    aria-label=${`${name}: bar chart of the ${game.game_type === 'gacha' ? 'rarity odds' : 'payout distribution'}; the table below lists the same numbers`}></div>`;
}

function GameCard({ game }) {
  const name = NAMES[game.game_type] || game.game_type;
  const inBand = game.band && game.rtp >= game.band.min && game.rtp <= game.band.max;
  const gacha = game.rtp === null;
  return html`<article class="card rtp" data-testid=${`rtp-${game.game_type}`} aria-labelledby=${`rtp-h-${game.game_type}`}>
    <h2 id=${`rtp-h-${game.game_type}`}>${name}</h2>
    <dl class="kv">
      ${gacha ? html`
        <dt>Display value per token</dt><dd data-testid="display-value">${game.display_value_per_token.toFixed(6)}</dd>
        <dt>Band</dt><dd>none (item values are never credited)</dd>`
      : html`
        <dt>Exact RTP</dt><dd><strong data-testid="exact-rtp">${game.rtp.toFixed(6)}</strong> (${fmt.pct(game.rtp)})</dd>
        <dt>Band</dt><dd>${`${game.band.min.toFixed(3)} – ${game.band.max.toFixed(3)} `}<span
          class=${inBand ? 'good' : 'bad'}>${inBand ? 'inside' : 'OUTSIDE'}</span></dd>`}
      <dt>Hit frequency</dt><dd>${game.hit_frequency.toFixed(6)}${game.game_type === 'crash' ? ' (auto cash-out at 2.00×)' : ''}</dd>
      <dt>Std. deviation per play</dt><dd>${game.std_dev_per_play.toFixed(4)} stakes</dd>
    </dl>
    <${Chart} game=${game} />
    <details>
      <summary>${gacha ? 'Rarity odds' : 'Distribution'} as a table</summary>
      <${Table} caption=${`${name}: ${gacha ? 'rarity odds' : 'payout distribution'}`}
        head=${[gacha ? 'Rarity' : game.game_type === 'crash' ? 'Crash point from' : 'Payout (× stake)', 'Probability']}>
        ${game.distribution.map((d) => html`<tr><td>${d.rarity ?? `${d.payout_multiplier}×`}</td>
          <td>${d.probability.toPrecision(6)}</td></tr>`)}
      </${Table}>
    </details>
  </article>`;
}

export function RtpView() {
  const report = useLoad(() => api.get('/api/admin/games/rtp'), []);
  const d = report.data;
  return html`<section>
    <h1>RTP report</h1>
    <p class="lead">Exact figures of the loaded paytables, computed by each game's own exact function (the same numbers
      as <code>cchost rtp</code>). Change a game in <code>scripts/games/</code> and reload the scripts to see it here.</p>
    <${ErrorBox} error=${report.error} />
    ${d && html`<p class="muted">Script generation ${d.generation}.</p>
      <div class="rtp-grid">${d.games.map((g) => html`<${GameCard} key=${g.game_type} game=${g} />`)}</div>`}
  </section>`;
}
