// store.js - the little shared state of the console: balances, the live
// socket's status, live notifications, the unread count and toasts. Views
// read it with useStore() and re-render when it changes.
import { useEffect, useState } from './ui.js';
import { get } from './api.js';

const state = {
  balances: null, // {tokens, gold, gems, exp}
  live: { status: 'idle', detail: '' }, // idle | connecting | open | retrying | replaced | closed
  feed: [], // live messages of this page, newest first
  unread: 0,
  toasts: [],
};
const subs = new Set();

export function getState() {
  return state;
}

export function setState(patch) {
  Object.assign(state, typeof patch === 'function' ? patch(state) : patch);
  for (const fn of subs) fn();
}

/** The store's state; the component re-renders on every change. */
export function useStore() {
  const [, tick] = useState(0);
  useEffect(() => {
    const fn = () => tick((n) => n + 1);
    subs.add(fn);
    return () => subs.delete(fn);
  }, []);
  return state;
}

let toastSeq = 0;
/** Shows a short message in the toast area (announced politely). */
export function toast(text, kind = 'info') {
  const id = ++toastSeq;
  setState((s) => ({ toasts: [...s.toasts, { id, text, kind }].slice(-4) }));
  setTimeout(() => setState((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) })), 6000);
}

/** Sets the token balance from a game response (other currencies kept). */
export function setTokens(tokens) {
  if (typeof tokens !== 'number') return;
  setState((s) => ({ balances: { ...(s.balances || {}), tokens } }));
}

/** Re-reads every balance (after claims and rewards). */
export async function loadBalances() {
  try {
    const b = await get('/api/users/balance');
    setState({ balances: b.balances });
  } catch {
    // The view that needed it shows its own error; the header keeps the old figures.
  }
}

/** Goes to a view of the hash router ("slot", "admin/users/3"). */
export function navigate(path) {
  location.hash = `#/${path}`;
}
