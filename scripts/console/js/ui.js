// ui.js - the rendering toolkit of the console and the small components
// every view shares: labelled fields, an error box that shows the API's
// detail (and the request id of a 5xx), a pager, a table wrapper that
// scrolls on narrow screens, and formatting helpers.
//
// Rendering is Preact with htm tagged templates, both from one file of the
// npm package htm (preact/standalone.module.js): plain ES modules in the
// browser, no bundler and no import map (which would need an inline script
// that the console's Content-Security-Policy forbids).
import {
  html, render, useState, useEffect, useRef, useCallback, useMemo,
} from '../vendor/htm-3.1.1/preact/standalone.module.js';
import { describeError } from './api.js';

export { html, render, useState, useEffect, useRef, useCallback, useMemo };

let fieldSeq = 0;
/** A stable unique id for label/input pairs. */
export function useId(prefix = 'f') {
  const ref = useRef(null);
  if (ref.current === null) ref.current = `${prefix}-${++fieldSeq}`;
  return ref.current;
}

/** A labelled input. props: label, value, onInput(value), type, hint, and any
 * attribute of <input> (required, min, max, placeholder, name...). */
export function Field({ label, value, onInput, hint, type = 'text', ...rest }) {
  const id = useId(rest.name || 'field');
  const hintId = hint ? `${id}-hint` : undefined;
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <input id=${id} type=${type} value=${value ?? ''} aria-describedby=${hintId}
      onInput=${(e) => onInput(type === 'checkbox' ? e.currentTarget.checked : e.currentTarget.value)} ...${rest} />
    ${hint && html`<small id=${hintId} class="hint">${hint}</small>`}
  </div>`;
}

/** A labelled checkbox. */
export function Check({ label, checked, onChange, ...rest }) {
  const id = useId(rest.name || 'check');
  return html`<div class="field check">
    <input id=${id} type="checkbox" checked=${!!checked} onChange=${(e) => onChange(e.currentTarget.checked)} ...${rest} />
    <label for=${id}>${label}</label>
  </div>`;
}

/** A labelled <select>. options: [[value, text]...]. */
export function Select({ label, value, onChange, options, ...rest }) {
  const id = useId(rest.name || 'select');
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <select id=${id} value=${value} onChange=${(e) => onChange(e.currentTarget.value)} ...${rest}>
      ${options.map(([v, t]) => html`<option value=${v} selected=${String(v) === String(value)}>${t}</option>`)}
    </select>
  </div>`;
}

/** A labelled <textarea>. */
export function Area({ label, value, onInput, rows = 3, ...rest }) {
  const id = useId(rest.name || 'area');
  return html`<div class="field">
    <label for=${id}>${label}</label>
    <textarea id=${id} rows=${rows} value=${value ?? ''} onInput=${(e) => onInput(e.currentTarget.value)} ...${rest}></textarea>
  </div>`;
}

/** The error of the last request of a view: the API's detail text, the
 * fields of a 422, and the request id of a 5xx. role=alert announces it. */
export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${describeError(error)}</p>`;
}

/** A status line that screen readers announce politely. */
export function Status({ children }) {
  return html`<p class="status" role="status" aria-live="polite">${children}</p>`;
}

/** A table that scrolls sideways on a narrow screen instead of widening the
 * page; the wrapper is focusable so the keyboard can scroll it too. */
export function Table({ caption, head, children, className = '' }) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table class=${className}>
      <caption>${caption}</caption>
      <thead><tr>${head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
      <tbody>${children}</tbody>
    </table>
  </div>`;
}

/** Previous/next paging for page-numbered lists. */
export function Pager({ page, pageSize, total, onPage, label = 'Pages' }) {
  const pages = Math.max(1, Math.ceil((total || 0) / pageSize));
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" disabled=${page <= 1} onClick=${() => onPage(page - 1)}>Previous</button>
    <span>Page ${page} of ${pages} (${total ?? 0} in all)</span>
    <button type="button" disabled=${page >= pages} onClick=${() => onPage(page + 1)}>Next</button>
  </nav>`;
}

/** Runs async actions for a view: busy flag, last error, last result. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(async (fn) => {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

/** Loads data with fn() whenever deps change; returns {data, error, loading, reload}. */
export function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const seq = useRef(0);
  const load = useCallback(async () => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const data = await fn();
      if (mine === seq.current) setState({ data, error: null, loading: false });
    } catch (error) {
      if (mine === seq.current) setState((s) => ({ data: s.data, error, loading: false }));
    }
  }, deps);
  useEffect(() => { load(); }, [load]);
  return { ...state, reload: load };
}

const numberFmt = new Intl.NumberFormat('en-US');
export const fmt = {
  n: (v) => (v === null || v === undefined ? '–' : numberFmt.format(v)),
  x: (v) => (v === null || v === undefined ? '–' : `${Number(v).toFixed(2)}×`),
  pct: (v, digits = 4) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(digits)} %`),
  time: (iso) => (iso ? new Date(iso).toLocaleString() : '–'),
  json: (v) => JSON.stringify(v ?? null),
};

/** A new Idempotency-Key (§3): one per user action, so a retried request
 * never moves money twice. getRandomValues works in every context. */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
