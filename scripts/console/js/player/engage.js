// engage.js - missions and events (CONTRACT.md §12): progress bars, claims
// (with an Idempotency-Key), joining events, and reporting progress of
// missions the client tracks. Server-tracked missions advance from play.
import { html, useState, ErrorBox, useAction, useLoad, fmt, newKey } from '../ui.js';
import * as api from '../api.js';
import { setState, toast } from '../store.js';

const SERVER_TRACKED = new Set(['play_count', 'win_count', 'gacha_pull', 'login', 'spend_tokens']);
const GROUPS = [['daily', 'Daily missions'], ['weekly', 'Weekly missions'], ['achievement', 'Achievements']];

const rewardsText = (r) => Object.entries(r || {}).map(([k, v]) => `${Array.isArray(v) ? v.join(', ') : fmt.n(v)} ${k}`).join(', ') || '–';

function MissionItem({ um, onChanged }) {
  const m = um.mission;
  const { busy, error, run } = useAction();
  const claim = () => run(async () => {
    const r = await api.post(`/api/events/missions/claim/${um.mission_id}`, undefined, { headers: { 'Idempotency-Key': newKey() } });
    setState({ balances: r.balances });
    toast(`${r.message} ${rewardsText(r.rewards)}`);
    onChanged();
  });
  const progress = () => run(async () => {
    await api.put('/api/events/missions/progress', { mission_id: um.mission_id, progress_increment: 1 });
    onChanged();
  });
  const state = um.claimed ? 'claimed' : um.completed ? 'completed' : 'in progress';
  const id = `mission-${um.mission_id}`;
  return html`<li class="mission" data-testid=${id} data-state=${state}>
    <div class="mission-head">
      <strong id=${`${id}-t`}>${m.title}</strong>
      <span class=${`pill pill-${state.replace(' ', '-')}`}>${state}</span>
    </div>
    ${m.description && html`<p class="muted">${m.description}</p>`}
    <div class="progress-row">
      <progress max=${m.target_value} value=${um.current_progress} aria-labelledby=${`${id}-t`}
        aria-valuetext=${`${um.current_progress} of ${m.target_value}`}></progress>
      <span data-testid=${`${id}-progress`}>${um.current_progress} / ${m.target_value}</span>
    </div>
    <p class="muted">Reward: ${rewardsText(m.rewards)}${um.reset_at ? ` · resets ${fmt.time(um.reset_at)}` : ''}</p>
    <div class="row">
      ${um.completed && !um.claimed && html`<button type="button" disabled=${busy} onClick=${claim}
        aria-describedby=${`${id}-t`}>Claim</button>`}
      ${!um.completed && !SERVER_TRACKED.has(m.target_type) && html`<button type="button" class="secondary"
        disabled=${busy} onClick=${progress} aria-describedby=${`${id}-t`}>Report +1</button>`}
    </div>
    <${ErrorBox} error=${error} />
  </li>`;
}

function EventItem({ ev, onChanged }) {
  const { busy, error, run } = useAction();
  const p = ev.user_participation;
  const join = () => run(async () => { await api.post('/api/events/join', { event_id: ev.id }); onChanged(); });
  const claim = () => run(async () => {
    const r = await api.post(`/api/events/claim/${ev.id}`, undefined, { headers: { 'Idempotency-Key': newKey() } });
    setState({ balances: r.balances });
    toast(`${r.message} ${rewardsText(r.rewards)}`);
    onChanged();
  });
  const reqs = Object.entries(ev.requirements || {});
  const id = `event-${ev.id}`;
  return html`<li class="mission" data-testid=${id}>
    <div class="mission-head"><strong id=${`${id}-t`}>${ev.title}</strong>
      <span class="pill">${ev.event_type}</span>
      ${p && html`<span class=${`pill pill-${p.claimed ? 'claimed' : p.completed ? 'completed' : 'in-progress'}`}>
        ${p.claimed ? 'claimed' : p.completed ? 'completed' : 'joined'}</span>`}</div>
    ${ev.description && html`<p class="muted">${ev.description}</p>`}
    <p class="muted">Until ${fmt.time(ev.end_date)} · ${fmt.n(ev.participation_count)} joined · Reward: ${rewardsText(ev.rewards)}</p>
    ${reqs.length > 0 && html`<ul class="reqs">${reqs.map(([k, want]) => {
      const have = p && p.progress ? p.progress[k] : undefined;
      return typeof want === 'number' ? html`<li><label>${k}
          <progress max=${want} value=${Math.min(Number(have) || 0, want)}></progress></label> ${fmt.n(have || 0)} / ${fmt.n(want)}</li>`
        : html`<li>${k}: ${have === undefined ? 'not yet' : fmt.json(have)} (needs ${fmt.json(want)})</li>`;
    })}</ul>`}
    <div class="row">
      ${!p && html`<button type="button" disabled=${busy} onClick=${join} aria-describedby=${`${id}-t`}>Join</button>`}
      ${p && p.completed && !p.claimed && html`<button type="button" disabled=${busy} onClick=${claim}
        aria-describedby=${`${id}-t`}>Claim</button>`}
    </div>
    <${ErrorBox} error=${error} />
  </li>`;
}

export function EngageView() {
  const [version, setVersion] = useState(0);
  const changed = () => setVersion((v) => v + 1);
  const missions = useLoad(() => api.get('/api/events/missions/all'), [version]);
  const events = useLoad(() => api.get('/api/events/'), [version]);
  return html`<section>
    <h1>Missions & events</h1>
    <${ErrorBox} error=${missions.error} />
    ${missions.data && GROUPS.map(([type, label]) => {
      const list = missions.data.filter((um) => um.mission.mission_type === type);
      return list.length > 0 && html`<section class="card" aria-labelledby=${`g-${type}`}>
        <h2 id=${`g-${type}`}>${label}</h2>
        <ul class="missions">${list.map((um) => html`<${MissionItem} key=${um.id} um=${um} onChanged=${changed} />`)}</ul>
      </section>`;
    })}
    <section class="card" aria-labelledby="g-events">
      <h2 id="g-events">Live events</h2>
      <${ErrorBox} error=${events.error} />
      ${events.data && events.data.length === 0 && html`<p class="muted">No live events.</p>`}
      ${events.data && html`<ul class="missions">${events.data.map((ev) => html`<${EventItem} key=${ev.id} ev=${ev} onChanged=${changed} />`)}</ul>`}
    </section>
  </section>`;
}
