// overview.js - the admin's stats and the scripts' generation and reload
// (CONTRACT.md §13.1, §13.6).
import { html, ErrorBox, useAction, useLoad, fmt, useState } from '../ui.js';
import * as api from '../api.js';
import { toast } from '../store.js';

export function StatsView() {
  const stats = useLoad(() => api.get('/api/admin/stats'), []);
  const d = stats.data;
  const cards = d ? [
    ['Users', d.total_users], ['Active (not banned)', d.active_users], ['Plays', d.total_games_played],
    ['Tokens in circulation', d.total_tokens_in_circulation], ['Gold', d.total_gold_in_circulation],
    ['Gems', d.total_gems_in_circulation],
  ] : [];
  return html`<section>
    <h1>Stats</h1>
    <${ErrorBox} error=${stats.error} />
    <dl class="stats">${cards.map(([k, v]) => html`<div class="card"><dt>${k}</dt><dd>${fmt.n(v)}</dd></div>`)}</dl>
    <button type="button" class="secondary" onClick=${stats.reload} disabled=${stats.loading}>Refresh</button>
  </section>`;
}

export function ScriptsView() {
  const [version, setVersion] = useState(0);
  const info = useLoad(() => api.get('/api/admin/scripts'), [version]);
  const { busy, error, run } = useAction();
  const reload = () => run(async () => {
    try {
      const r = await api.post('/api/admin/scripts/reload');
      toast(`Scripts reloaded: generation ${r.generation}`);
    } finally {
      setVersion((v) => v + 1); // a failed reload shows its error below too
    }
  });
  const d = info.data;
  return html`<section>
    <h1>Scripts</h1>
    <${ErrorBox} error=${info.error} />
    ${d && html`<dl class="kv card">
      <dt>Generation</dt><dd data-testid="generation">${d.generation}</dd>
      <dt>Loaded at</dt><dd>${fmt.time(d.loaded_at)}</dd>
      <dt>Last reload</dt><dd>${d.last_reload.ok ? 'succeeded' : 'failed'} at ${fmt.time(d.last_reload.at)}</dd>
      ${d.last_reload.error && html`<dt>Reload error</dt><dd class="bad mono">${d.last_reload.error}</dd>`}
    </dl>`}
    <p class="muted">A reload validates the game configs (RTP bands included); if it fails, the previous generation keeps serving.</p>
    <button type="button" onClick=${reload} disabled=${busy}>${busy ? 'Reloading…' : 'Reload scripts'}</button>
    <${ErrorBox} error=${error} />
  </section>`;
}
