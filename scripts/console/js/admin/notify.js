// notify.js - send a notification to one user or broadcast it to everyone
// (CONTRACT.md §13.3); `delivered` counts the live sockets reached.
import { html, useState, Field, Area, Check, ErrorBox, useAction } from '../ui.js';
import * as api from '../api.js';

export function NotifyView({ query }) {
  const [f, setF] = useState({ title: '', body: '', user_id: query.get('user') || '', data: '{}', everyone: !query.get('user') });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const [sent, setSent] = useState(null);
  const { busy, error, setError, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    let data;
    try {
      data = JSON.parse(f.data || '{}');
      if (!data || typeof data !== 'object' || Array.isArray(data)) throw new Error('must be a JSON object');
    } catch (err) {
      setError(new Error(`Data: ${err.message}`));
      return;
    }
    run(async () => {
      const body = { title: f.title, body: f.body, data };
      const r = f.everyone
        ? await api.post('/api/admin/notifications/broadcast', body)
        : await api.post('/api/admin/notifications/send', { ...body, user_id: Number(f.user_id) });
      setSent({ ...r, everyone: f.everyone, title: f.title });
    });
  };
  return html`<section>
    <h1>Notify</h1>
    <form class="card" onSubmit=${submit}>
      <${Check} label="Broadcast to everyone" name="everyone" checked=${f.everyone} onChange=${set('everyone')} />
      ${!f.everyone && html`<${Field} label="User ID" name="notify_user" type="number" min="1" value=${f.user_id}
        onInput=${set('user_id')} required />`}
      <${Field} label="Title" name="notify_title" value=${f.title} onInput=${set('title')} required maxlength="200" />
      <${Area} label="Body" name="notify_body" value=${f.body} onInput=${set('body')} required maxlength="2000" />
      <${Field} label="Data (JSON object, optional)" name="notify_data" value=${f.data} onInput=${set('data')} class="mono" />
      <button type="submit" disabled=${busy}>${f.everyone ? 'Broadcast' : 'Send'}</button>
      <${ErrorBox} error=${error} />
      <p role="status" aria-live="polite" data-testid="notify-result">${sent && `${sent.everyone ? 'Broadcast' : 'Sent'} "${sent.title}"
        as notification #${sent.notification_id}; delivered live to ${sent.delivered} socket(s).`}</p>
    </form>
  </section>`;
}
