// fairness.js - the fairness panel (CONTRACT.md §8): the current
// commitment, the client seed, rotating to reveal, and verifying past plays
// in this browser with HMAC-SHA256 (fair.js), from the plays this browser
// recorded (plays.js) and the server seeds the API revealed. A seed can be
// edited before verifying, to see what a mismatch looks like.
import { html, useState, useMemo, Field, Select, ErrorBox, Table, useAction, useLoad, fmt } from '../ui.js';
import * as api from '../api.js';
import * as plays from '../plays.js';
import * as fair from '../fair.js';

function Verdict({ v }) {
  if (!v) return null;
  if (v.error) return html`<span class="bad">${v.error}</span>`;
  return v.ok
    ? html`<span class="good" data-verdict="verified">verified</span>`
    : html`<span class="bad" data-verdict="mismatch">mismatch: ${v.reason}</span>`;
}

function Commitment({ version, onChanged }) {
  const cur = useLoad(() => api.get('/api/fairness'), [version]);
  const [seed, setSeed] = useState('');
  const { busy, error, run } = useAction();
  const setClientSeed = (e) => {
    e.preventDefault();
    run(async () => { await api.put('/api/fairness/client-seed', { client_seed: seed }); setSeed(''); onChanged(); });
  };
  const d = cur.data;
  return html`<section class="card" aria-labelledby="commit-h">
    <h2 id="commit-h">Current commitment</h2>
    <${ErrorBox} error=${cur.error} />
    ${d && html`<dl class="kv">
      <dt>Server seed hash (SHA-256)</dt><dd class="mono" data-testid="server-seed-hash">${d.server_seed_hash}</dd>
      <dt>Client seed</dt><dd class="mono" data-testid="client-seed">${d.client_seed}</dd>
      <dt>Next nonce</dt><dd data-testid="next-nonce">${d.nonce}</dd>
    </dl>`}
    <form onSubmit=${setClientSeed} class="inline-form">
      <${Field} label="New client seed" name="client_seed" value=${seed} onInput=${setSeed} required maxlength="64"
        pattern="[A-Za-z0-9_\\-]+" hint="1–64 letters, digits, _ or -. The nonce carries on." />
      <button type="submit" disabled=${busy}>Set client seed</button>
    </form>
    <${ErrorBox} error=${error} />
  </section>`;
}

export function FairnessView({ session, query }) {
  const uid = session.user.id;
  const [version, setVersion] = useState(0);
  const [engineName, setEngineName] = useState(query.get('hmac') || 'auto');
  const [rotated, setRotated] = useState(null);
  const [verdicts, setVerdicts] = useState({});
  const journal = useMemo(() => plays.list(uid), [uid, version]);
  const revealed = useLoad(() => api.get('/api/fairness/revealed', { limit: 100 }), [version]);
  const seeds = useMemo(() => {
    const m = new Map();
    for (const s of (revealed.data && revealed.data.items) || []) m.set(s.server_seed_hash, s.server_seed);
    if (rotated) m.set(rotated.previous_server_seed_hash, rotated.previous_server_seed);
    return m;
  }, [revealed.data, rotated]);
  const [pick, setPick] = useState('');
  const chosen = journal.find((p) => String(p.play_id) === pick) || journal[0];
  const [form, setForm] = useState({ seed: null, client: null, nonce: null });
  const [result, setResult] = useState(null);
  const rot = useAction();
  const ver = useAction();

  const pickEngine = () => fair.setEngine(engineName === 'auto' ? null : engineName);

  const rotate = () => rot.run(async () => {
    const r = await api.post('/api/fairness/rotate');
    setRotated(r);
    setVersion((v) => v + 1);
  });

  const verifyAll = () => ver.run(async () => {
    pickEngine();
    const out = {};
    for (const p of journal) {
      const seed = seeds.get(p.server_seed_hash);
      if (!seed) continue;
      try {
        out[p.play_id] = await fair.verify(p, seed);
      } catch (e) {
        out[p.play_id] = { error: e.message };
      }
    }
    setVerdicts(out);
  });

  // The form's fields start from the chosen play and its revealed seed; an
  // edited value (null = untouched) replaces them.
  const seedValue = form.seed ?? (chosen && seeds.get(chosen.server_seed_hash)) ?? '';
  const clientValue = form.client ?? (chosen ? chosen.client_seed : '');
  const nonceValue = form.nonce ?? (chosen ? String(chosen.nonce) : '');
  const verifyOne = (e) => {
    e.preventDefault();
    ver.run(async () => {
      pickEngine();
      setResult(null);
      const v = await fair.verify(chosen, seedValue.trim(), clientValue, Number(nonceValue));
      setResult({ ...v, play_id: chosen.play_id });
    });
  };

  const webcrypto = !!(globalThis.crypto && crypto.subtle && window.isSecureContext);
  return html`<section>
    <h1>Fairness</h1>
    <p class="lead">Every play draws from HMAC-SHA256(server seed, "client seed:nonce:k"). The server commits to its
      seed by publishing its SHA-256 first and reveals the seed when you rotate; this page then re-derives your plays
      itself, without trusting the server's verification.</p>
    <${Commitment} version=${version} onChanged=${() => setVersion((v) => v + 1)} />
    <section class="card" aria-labelledby="rotate-h">
      <h2 id="rotate-h">Rotate and reveal</h2>
      <p class="muted">Rotating reveals the current server seed and commits to a fresh one (nonce back to 0).</p>
      <button type="button" onClick=${rotate} disabled=${rot.busy} data-testid="rotate">Rotate server seed</button>
      <${ErrorBox} error=${rot.error} />
      ${rotated && html`<dl class="kv" data-testid="revealed">
        <dt>Revealed server seed</dt><dd class="mono">${rotated.previous_server_seed}</dd>
        <dt>Its hash</dt><dd class="mono">${rotated.previous_server_seed_hash}</dd>
        <dt>Nonces used</dt><dd>${rotated.previous_nonce}</dd>
      </dl>`}
    </section>
    <section class="card" aria-labelledby="plays-h">
      <h2 id="plays-h">Plays made in this browser</h2>
      <${Select} label="HMAC engine" name="hmac_engine" value=${engineName} onChange=${setEngineName}
        options=${[['auto', `Automatic (${webcrypto ? 'WebCrypto' : '@noble/hashes'})`],
          ...(webcrypto ? [['webcrypto', 'WebCrypto']] : []), ['noble', '@noble/hashes']]} />
      ${journal.length === 0 ? html`<p class="muted">No plays recorded in this browser yet.</p>` : html`
        <button type="button" class="secondary" onClick=${verifyAll} disabled=${ver.busy}>Verify all revealed plays</button>
        <${Table} caption="Plays, newest first" head=${['Play', 'Game', 'Nonce', 'Recorded outcome', 'Seed', 'Check']}>
          ${journal.map((p) => html`<tr key=${p.play_id} data-testid=${`play-${p.play_id}`}>
            <td>#${p.play_id}</td><td>${p.game}</td><td>${p.nonce}</td>
            <td class="glyph">${fair.show(p.game, fair.recorded(p))}</td>
            <td>${seeds.has(p.server_seed_hash) ? 'revealed' : 'not yet revealed'}</td>
            <td><${Verdict} v=${verdicts[p.play_id]} /></td></tr>`)}
        </${Table}>
        <form class="card nested" onSubmit=${verifyOne} aria-labelledby="verify-h">
          <h3 id="verify-h">Verify one play</h3>
          <${Select} label="Play" name="play" value=${chosen ? String(chosen.play_id) : ''}
            onChange=${(v) => { setPick(v); setForm({ seed: null, client: null, nonce: null }); setResult(null); }}
            options=${journal.map((p) => [String(p.play_id), `#${p.play_id} ${p.game} (nonce ${p.nonce})`])} />
          <${Field} label="Server seed (revealed)" name="server_seed" value=${seedValue} required
            onInput=${(v) => setForm({ ...form, seed: v })} class="mono"
            hint=${chosen && seeds.has(chosen.server_seed_hash) ? 'Filled in from the reveal; edit it to see a mismatch.'
              : 'Not revealed yet: rotate first.'} />
          <${Field} label="Client seed" name="verify_client_seed" value=${clientValue} required
            onInput=${(v) => setForm({ ...form, client: v })} />
          <${Field} label="Nonce" name="verify_nonce" type="number" min="0" value=${nonceValue} required
            onInput=${(v) => setForm({ ...form, nonce: v })} />
          <button type="submit" disabled=${ver.busy || !chosen} data-testid="verify">Verify in this browser</button>
          <${ErrorBox} error=${ver.error} />
          <div role="status" aria-live="polite" data-testid="verify-result">${result && html`
            <p><${Verdict} v=${result} /></p>
            <p class="muted">Play #${result.play_id}: SHA-256 of the seed ${result.commitment ? 'matches' : 'does not match'} the
              commitment; re-derived ${fair.show(chosen.game, result.derived)}; recorded
              ${fair.show(chosen.game, fair.recorded(chosen))}. Engine: ${result.engine === 'noble' ? '@noble/hashes' : 'WebCrypto'}.</p>`}
          </div>
        </form>`}
    </section>
    ${revealed.error && html`<${ErrorBox} error=${revealed.error} />`}
    ${revealed.data && revealed.data.items.length > 0 && html`<${Table} caption="Revealed server seeds"
      head=${['Hash', 'Seed', 'Nonces used', 'Revealed']}>
      ${revealed.data.items.map((s) => html`<tr key=${s.server_seed_hash}><td class="mono">${s.server_seed_hash.slice(0, 16)}…</td>
        <td class="mono">${s.server_seed.slice(0, 16)}…</td><td>${s.final_nonce}</td><td>${fmt.time(s.revealed_at)}</td></tr>`)}
    </${Table}>`}
  </section>`;
}
