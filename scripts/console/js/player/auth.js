// auth.js - log in (player or admin) and sign up (CONTRACT.md §4). Both
// start a session; a session that ended shows its reason here.
import { html, useState, Field, Check, ErrorBox, useAction } from '../ui.js';
import * as api from '../api.js';

function LoginForm() {
  const [siteId, setSiteId] = useState('');
  const [password, setPassword] = useState('');
  const [admin, setAdmin] = useState(false);
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(() => api.login(siteId.trim(), password, admin));
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="login-h">
    <h2 id="login-h">Log in</h2>
    <${Field} label="Site ID" name="site_id" value=${siteId} onInput=${setSiteId} required autocomplete="username" />
    <${Field} label="Password" name="password" type="password" value=${password} onInput=${setPassword} required
      autocomplete="current-password" />
    <${Check} label="Log in as an admin" name="admin" checked=${admin} onChange=${setAdmin} />
    <${ErrorBox} error=${error} />
    <button type="submit" disabled=${busy}>${busy ? 'Logging in…' : 'Log in'}</button>
  </form>`;
}

function SignupForm() {
  const [f, setF] = useState({ site_id: '', nickname: '', phone_number: '', invite_code: '', password: '' });
  const set = (k) => (v) => setF({ ...f, [k]: v });
  const { busy, error, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(() => api.signup({ ...f, site_id: f.site_id.trim(), nickname: f.nickname.trim() }));
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="signup-h">
    <h2 id="signup-h">Sign up</h2>
    <${Field} label="Site ID" name="signup_site_id" value=${f.site_id} onInput=${set('site_id')} required
      minlength="3" maxlength="50" autocomplete="username" />
    <${Field} label="Nickname" name="nickname" value=${f.nickname} onInput=${set('nickname')} required
      minlength="2" maxlength="50" autocomplete="nickname" />
    <${Field} label="Phone number" name="phone_number" type="tel" value=${f.phone_number} onInput=${set('phone_number')}
      required minlength="10" maxlength="15" autocomplete="tel" />
    <${Field} label="Invite code" name="invite_code" value=${f.invite_code} onInput=${set('invite_code')} required
      maxlength="32" />
    <${Field} label="Password" name="signup_password" type="password" value=${f.password} onInput=${set('password')}
      required minlength="8" maxlength="128" autocomplete="new-password" hint="At least 8 characters." />
    <${ErrorBox} error=${error} />
    <button type="submit" disabled=${busy}>${busy ? 'Signing up…' : 'Sign up'}</button>
  </form>`;
}

export function LoginView({ reason }) {
  return html`<section class="login">
    <h1>Casino-Club console</h1>
    <p class="lead">Players play, verify their plays and follow missions; admins run the back office and the RTP report.</p>
    ${reason && html`<p class="notice" role="alert" data-testid="session-ended">${reason}</p>`}
    <div class="two">
      <${LoginForm} />
      <${SignupForm} />
    </div>
  </section>`;
}
