// content.js - events and missions administration (CONTRACT.md §13.4,
// §13.5): lists with search and paging, create and edit forms, publish /
// deactivate / activate, soft delete, an event's participations and
// force-claim (with its X-Idempotency-Key).
import {
  html, useState, Field, Select, Check, Area, ErrorBox, Table, useAction, useLoad, fmt, newKey,
} from '../ui.js';
import * as api from '../api.js';
import { toast } from '../store.js';

const LIMIT = 20;

/** ISO → the value of a datetime-local input (local time), and back. */
const toLocal = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
};
const fromLocal = (v) => (v ? new Date(v).toISOString() : undefined);

/** Parses a JSON object typed by the admin; throws a readable error. */
function jsonObject(text, label) {
  let v;
  try {
    v = JSON.parse(text || '{}');
  } catch (e) {
    throw new Error(`${label}: not valid JSON (${e.message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${label}: must be a JSON object`);
  return v;
}

function OffsetPager({ offset, count, onOffset, label }) {
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" disabled=${offset === 0} onClick=${() => onOffset(Math.max(0, offset - LIMIT))}>Previous</button>
    <span>${count === 0 ? 'none' : `${offset + 1}–${offset + count}`}</span>
    <button type="button" disabled=${count < LIMIT} onClick=${() => onOffset(offset + LIMIT)}>Next</button>
  </nav>`;
}

/* ---- events ---- */

function EventForm({ event, onDone, onCancel }) {
  const now = new Date();
  const [f, setF] = useState({
    title: event ? event.title : '', description: event ? event.description || '' : '',
    event_type: event ? event.event_type : 'special',
    start_date: toLocal(event ? event.start_date : now.toISOString()),
    end_date: toLocal(event ? event.end_date : new Date(now.getTime() + 7 * 86400000).toISOString()),
    rewards: JSON.stringify(event ? event.rewards : { tokens: 100 }),
    requirements: JSON.stringify(event ? event.requirements : {}),
    image_url: event ? event.image_url || '' : '', priority: String(event ? event.priority : 0),
    is_active: event ? event.is_active : true,
  });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const body = {
        title: f.title, description: f.description || null, event_type: f.event_type,
        start_date: fromLocal(f.start_date), end_date: fromLocal(f.end_date),
        rewards: jsonObject(f.rewards, 'Rewards'), requirements: jsonObject(f.requirements, 'Requirements'),
        image_url: f.image_url || null, priority: Number(f.priority),
      };
      if (event) await api.put(`/api/admin/events/${event.id}`, { ...body, is_active: f.is_active });
      else await api.post('/api/admin/events/', body);
      toast(event ? 'Event saved' : 'Event created');
      onDone();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="evf-h">
    <h2 id="evf-h">${event ? `Edit event #${event.id}` : 'New event'}</h2>
    <${Field} label="Title" name="ev_title" value=${f.title} onInput=${set('title')} required maxlength="200" />
    <${Area} label="Description" name="ev_description" value=${f.description} onInput=${set('description')} />
    <${Select} label="Type" name="ev_type" value=${f.event_type} onChange=${set('event_type')}
      options=${[['daily', 'daily'], ['weekly', 'weekly'], ['special', 'special']]} />
    <${Field} label="Starts (local time)" name="ev_start" type="datetime-local" value=${f.start_date} onInput=${set('start_date')} required />
    <${Field} label="Ends (local time)" name="ev_end" type="datetime-local" value=${f.end_date} onInput=${set('end_date')} required />
    <${Field} label="Rewards (JSON)" name="ev_rewards" value=${f.rewards} onInput=${set('rewards')} class="mono"
      hint="tokens, gold, gems, exp are credited; other keys are only shown." />
    <${Field} label="Requirements (JSON)" name="ev_requirements" value=${f.requirements} onInput=${set('requirements')} class="mono"
      hint='Progress keys and targets, e.g. {"play_count": 5}.' />
    <${Field} label="Image URL" name="ev_image" value=${f.image_url} onInput=${set('image_url')} />
    <${Field} label="Priority" name="ev_priority" type="number" value=${f.priority} onInput=${set('priority')} />
    ${event && html`<${Check} label="Active" name="ev_active" checked=${f.is_active} onChange=${set('is_active')} />`}
    <div class="row"><button type="submit" disabled=${busy}>${event ? 'Save' : 'Create'}</button>
      <button type="button" class="secondary" onClick=${onCancel}>Cancel</button></div>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Participations({ event, onClose }) {
  const [filter, setFilter] = useState({ completed: '', claimed: '' });
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const parts = useLoad(() => api.get(`/api/admin/events/${event.id}/participations`, {
    completed: filter.completed, claimed: filter.claimed, limit: LIMIT, offset,
  }), [event.id, filter, offset, version]);
  const { busy, error, run } = useAction();
  const force = (userId) => run(async () => {
    const r = await api.post(`/api/admin/events/${event.id}/force-claim/${userId}`, undefined,
      { headers: { 'X-Idempotency-Key': newKey() } });
    toast(`${r.message}`);
    setVersion((v) => v + 1);
  });
  const tri = [['', 'any'], ['true', 'yes'], ['false', 'no']];
  const d = parts.data;
  return html`<section class="card" aria-labelledby="parts-h">
    <h2 id="parts-h">Participations of "${event.title}"</h2>
    <div class="inline-form">
      <${Select} label="Completed" name="p_completed" value=${filter.completed} options=${tri}
        onChange=${(v) => { setFilter({ ...filter, completed: v }); setOffset(0); }} />
      <${Select} label="Claimed" name="p_claimed" value=${filter.claimed} options=${tri}
        onChange=${(v) => { setFilter({ ...filter, claimed: v }); setOffset(0); }} />
      <button type="button" class="secondary" onClick=${onClose}>Close</button>
    </div>
    <${ErrorBox} error=${parts.error || error} />
    ${d && html`<${Table} caption=${`${fmt.n(d.total)} participations, newest first`}
      head=${['User', 'Progress', 'Completed', 'Claimed', 'Joined', '']}>
      ${d.items.map((p) => html`<tr key=${p.id}><td><a href=${`#/admin/users/${p.user_id}`}>#${p.user_id}</a></td>
        <td class="mono small">${fmt.json(p.progress)}</td><td>${p.completed ? 'yes' : 'no'}</td>
        <td>${p.claimed_rewards ? 'yes' : 'no'}</td><td>${fmt.time(p.joined_at)}</td>
        <td>${!p.claimed_rewards && html`<button type="button" class="link" disabled=${busy}
          onClick=${() => force(p.user_id)} aria-label=${`Force-claim for user ${p.user_id}`}>Force-claim</button>`}</td></tr>`)}
    </${Table}>
    <${OffsetPager} offset=${offset} count=${d.items.length} onOffset=${setOffset} label="Participation pages" />`}
  </section>`;
}

export function AdminEventsView() {
  const [q, setQ] = useState('');
  const [search, setSearch] = useState('');
  const [deleted, setDeleted] = useState(false);
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const [editing, setEditing] = useState(null); // null | 'new' | event
  const [parts, setParts] = useState(null);
  const list = useLoad(() => api.get('/api/admin/events/', { q: search, include_deleted: deleted || undefined, limit: LIMIT, offset }),
    [search, deleted, offset, version]);
  const { busy, error, run } = useAction();
  const refresh = () => setVersion((v) => v + 1);
  const act = (fn, msg) => run(async () => { await fn(); toast(msg); refresh(); });
  return html`<section>
    <h1>Events</h1>
    <form class="inline-form" role="search" onSubmit=${(e) => { e.preventDefault(); setSearch(q.trim()); setOffset(0); }}>
      <${Field} label="Title contains" name="ev_q" type="search" value=${q} onInput=${setQ} />
      <${Check} label="Include deleted" name="ev_deleted" checked=${deleted} onChange=${(v) => { setDeleted(v); setOffset(0); }} />
      <button type="submit">Search</button>
      <button type="button" onClick=${() => setEditing('new')}>New event</button>
    </form>
    ${editing && html`<${EventForm} key=${editing === 'new' ? 'new' : editing.id} event=${editing === 'new' ? null : editing}
      onDone=${() => { setEditing(null); refresh(); }} onCancel=${() => setEditing(null)} />`}
    <${ErrorBox} error=${list.error || error} />
    ${list.data && html`<${Table} caption="Events, priority first" head=${['ID', 'Title', 'Type', 'Window', 'State', 'Joined', 'Actions']}>
      ${list.data.map((ev) => html`<tr key=${ev.id}><td>${ev.id}</td><td>${ev.title}</td><td>${ev.event_type}</td>
        <td class="small">${fmt.time(ev.start_date)} – ${fmt.time(ev.end_date)}</td>
        <td>${ev.deleted_at ? 'deleted' : ev.is_active ? 'active' : 'inactive'}</td><td>${fmt.n(ev.participation_count)}</td>
        <td class="actions">
          <button type="button" class="link" onClick=${() => setEditing(ev)} aria-label=${`Edit ${ev.title}`}>Edit</button>
          ${ev.is_active
            ? html`<button type="button" class="link" disabled=${busy} aria-label=${`Deactivate ${ev.title}`}
                onClick=${() => act(() => api.post(`/api/admin/events/${ev.id}/deactivate`), 'Event deactivated')}>Deactivate</button>`
            : html`<button type="button" class="link" disabled=${busy} aria-label=${`Publish ${ev.title}`}
                onClick=${() => act(() => api.post(`/api/admin/events/${ev.id}/publish`, { is_active: true }), 'Event published')}>Publish</button>`}
          <button type="button" class="link" onClick=${() => setParts(ev)} aria-label=${`Participations of ${ev.title}`}>Participations</button>
          <button type="button" class="link danger" disabled=${busy} aria-label=${`Delete ${ev.title}`}
            onClick=${() => window.confirm(`Delete event "${ev.title}"?`) && act(() => api.del(`/api/admin/events/${ev.id}`), 'Event deleted')}>Delete</button>
        </td></tr>`)}
    </${Table}>
    <${OffsetPager} offset=${offset} count=${list.data.length} onOffset=${setOffset} label="Event pages" />`}
    ${parts && html`<${Participations} key=${parts.id} event=${parts} onClose=${() => setParts(null)} />`}
  </section>`;
}

/* ---- missions ---- */

function MissionForm({ mission, onDone, onCancel }) {
  const m = mission || {};
  const [f, setF] = useState({
    title: m.title || '', description: m.description || '', mission_type: m.mission_type || 'daily',
    category: m.category || '', target_value: String(m.target_value || 1), target_type: m.target_type || 'play_count',
    rewards: JSON.stringify(m.rewards || { tokens: 100 }), requirements: JSON.stringify(m.requirements || {}),
    reset_period: m.reset_period || '', icon: m.icon || '', sort_order: String(m.sort_order || 0),
    is_active: mission ? m.is_active : true,
  });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const body = {
        title: f.title, description: f.description || null, mission_type: f.mission_type, category: f.category || null,
        target_value: Number(f.target_value), target_type: f.target_type,
        rewards: jsonObject(f.rewards, 'Rewards'), requirements: jsonObject(f.requirements, 'Requirements'),
        reset_period: f.reset_period || null, icon: f.icon || null, sort_order: Number(f.sort_order),
      };
      if (mission) await api.put(`/api/admin/missions/${mission.id}`, { ...body, is_active: f.is_active });
      else await api.post('/api/admin/missions/', body);
      toast(mission ? 'Mission saved' : 'Mission created');
      onDone();
    });
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="mf-h">
    <h2 id="mf-h">${mission ? `Edit mission #${mission.id}` : 'New mission'}</h2>
    <${Field} label="Title" name="m_title" value=${f.title} onInput=${set('title')} required />
    <${Area} label="Description" name="m_description" value=${f.description} onInput=${set('description')} />
    <${Select} label="Type" name="m_type" value=${f.mission_type} onChange=${set('mission_type')}
      options=${[['daily', 'daily'], ['weekly', 'weekly'], ['achievement', 'achievement']]} />
    <${Field} label="Category" name="m_category" value=${f.category} onInput=${set('category')} />
    <${Field} label="Target type" name="m_target_type" value=${f.target_type} onInput=${set('target_type')} required
      hint="Server-tracked: play_count, win_count, gacha_pull, login, spend_tokens; any other is reported by clients." />
    <${Field} label="Target value" name="m_target_value" type="number" min="1" value=${f.target_value} onInput=${set('target_value')} required />
    <${Field} label="Rewards (JSON)" name="m_rewards" value=${f.rewards} onInput=${set('rewards')} class="mono" />
    <${Field} label="Requirements (JSON)" name="m_requirements" value=${f.requirements} onInput=${set('requirements')} class="mono"
      hint='e.g. {"game_type": "slot"}' />
    <${Select} label="Reset period" name="m_reset" value=${f.reset_period} onChange=${set('reset_period')}
      options=${[['', 'by type'], ['daily', 'daily'], ['weekly', 'weekly'], ['never', 'never']]} />
    <${Field} label="Icon" name="m_icon" value=${f.icon} onInput=${set('icon')} />
    <${Field} label="Sort order" name="m_sort" type="number" value=${f.sort_order} onInput=${set('sort_order')} />
    ${mission && html`<${Check} label="Active" name="m_active" checked=${f.is_active} onChange=${set('is_active')} />`}
    <div class="row"><button type="submit" disabled=${busy}>${mission ? 'Save' : 'Create'}</button>
      <button type="button" class="secondary" onClick=${onCancel}>Cancel</button></div>
    <${ErrorBox} error=${error} />
  </form>`;
}

export function AdminMissionsView() {
  const [q, setQ] = useState('');
  const [search, setSearch] = useState({ q: '', type: '' });
  const [type, setType] = useState('');
  const [deleted, setDeleted] = useState(false);
  const [offset, setOffset] = useState(0);
  const [version, setVersion] = useState(0);
  const [editing, setEditing] = useState(null);
  const list = useLoad(() => api.get('/api/admin/missions/', {
    q: search.q, type: search.type, include_deleted: deleted || undefined, limit: LIMIT, offset,
  }), [search, deleted, offset, version]);
  const { busy, error, run } = useAction();
  const refresh = () => setVersion((v) => v + 1);
  const act = (fn, msg) => run(async () => { await fn(); toast(msg); refresh(); });
  return html`<section>
    <h1>Missions</h1>
    <form class="inline-form" role="search" onSubmit=${(e) => { e.preventDefault(); setSearch({ q: q.trim(), type }); setOffset(0); }}>
      <${Field} label="Title contains" name="m_q" type="search" value=${q} onInput=${setQ} />
      <${Select} label="Type" name="m_qtype" value=${type} onChange=${setType}
        options=${[['', 'any'], ['daily', 'daily'], ['weekly', 'weekly'], ['achievement', 'achievement']]} />
      <${Check} label="Include deleted" name="m_deleted" checked=${deleted} onChange=${(v) => { setDeleted(v); setOffset(0); }} />
      <button type="submit">Search</button>
      <button type="button" onClick=${() => setEditing('new')}>New mission</button>
    </form>
    ${editing && html`<${MissionForm} key=${editing === 'new' ? 'new' : editing.id} mission=${editing === 'new' ? null : editing}
      onDone=${() => { setEditing(null); refresh(); }} onCancel=${() => setEditing(null)} />`}
    <${ErrorBox} error=${list.error || error} />
    ${list.data && html`<${Table} caption="Missions by sort order" head=${['ID', 'Title', 'Type', 'Target', 'Rewards', 'State', 'Actions']}>
      ${list.data.map((m) => html`<tr key=${m.id}><td>${m.id}</td><td>${m.title}</td><td>${m.mission_type}</td>
        <td>${m.target_value} × ${m.target_type}</td><td class="mono small">${fmt.json(m.rewards)}</td>
        <td>${m.deleted_at ? 'deleted' : m.is_active ? 'active' : 'inactive'}</td>
        <td class="actions">
          <button type="button" class="link" onClick=${() => setEditing(m)} aria-label=${`Edit ${m.title}`}>Edit</button>
          <button type="button" class="link" disabled=${busy} aria-label=${`${m.is_active ? 'Deactivate' : 'Activate'} ${m.title}`}
            onClick=${() => act(() => api.post(`/api/admin/missions/${m.id}/activate`, { is_active: !m.is_active }),
              m.is_active ? 'Mission deactivated' : 'Mission activated')}>${m.is_active ? 'Deactivate' : 'Activate'}</button>
          <button type="button" class="link danger" disabled=${busy} aria-label=${`Delete ${m.title}`}
            onClick=${() => window.confirm(`Delete mission "${m.title}"?`) && act(() => api.del(`/api/admin/missions/${m.id}`), 'Mission deleted')}>Delete</button>
        </td></tr>`)}
    </${Table}>
    <${OffsetPager} offset=${offset} count=${list.data.length} onOffset=${setOffset} label="Mission pages" />`}
  </section>`;
}
