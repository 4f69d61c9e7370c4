// journeys.mjs - the browser journeys of the console (/console, issue 15),
// run by spec/integration/console_spec.lua against a real host with real
// PostgreSQL and Redis, in Debian's headless Chromium driven by
// playwright-core (tools/docs/package.json, devDependencies).
//
//   1 slot      a player signs up, spins the slot 10 times (the balance
//               changes after each spin and equals the API's), the
//               "슬롯머신 10회" mission completes and is claimed (the balance
//               rises by the reward); on the way two 401s injected into the
//               missions page make the client refresh once and retry both
//   2 crash     a bet cashed out by hand while the multiplier rises, then one
//               with auto cash-out; what the page shows equals the API's
//               answer (a crashed round is a valid outcome)
//   3 fairness  after a rotate the page re-derives the slot spins with
//               HMAC-SHA256 (WebCrypto and @noble/hashes) and says
//               "verified"; a tampered server seed shows the mismatch
//   4 ban       an admin finds the player by a nickname fragment and bans
//               them; the player's page sees its socket close with 4401
//               and returns to the login page
//   5 broadcast an admin broadcast appears live on a second player's page
//   + tour      (beyond the issue's six, run before 6) every other view:
//               RPS, gacha (a refused pull shows the API's detail), inbox;
//               as an admin stats, a user's detail with a token grant and a
//               rank change, events (create, deactivate, publish,
//               participations), missions, audit log, crash rounds, a
//               scripts reload; no page scrolls sideways at 375 px; logout
//   6 rtp       the RTP report shows the slot's exact RTP equal to `cchost
//               rtp`'s figure and draws its distribution; an injected 500
//               shows its request id
//
// Every journey saves screenshots at 1280 and 375 px wide into
// CONSOLE_OUT, fails on an uncaught exception or a console error (CSP
// violations included), and lists every failed request (status >= 400 or
// no answer): each must be one the journey expects, else it fails.
//
// Settings (environment): CONSOLE_URL (http://127.0.0.1:PORT), CONSOLE_OUT
// (folder), CONSOLE_ADMIN_SITE_ID / CONSOLE_ADMIN_PASSWORD (an admin),
// CONSOLE_SLOT_RTP (the figure `cchost rtp` prints), CONSOLE_NODE_MODULES
// (folder holding playwright-core; default var/docs/node_modules),
// CHROMIUM (default /usr/bin/chromium), CONSOLE_JOURNEYS (comma list, default
// all). Prints one line "JOURNEY <json>" per journey; exits 1 when one failed.
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = process.env;
const BASE = env.CONSOLE_URL;
const OUT = env.CONSOLE_OUT || mkdtempSync(path.join(os.tmpdir(), 'console-shots-'));
const ADMIN = { site_id: env.CONSOLE_ADMIN_SITE_ID, password: env.CONSOLE_ADMIN_PASSWORD };
const SLOT_RTP = env.CONSOLE_SLOT_RTP;
const ONLY = env.CONSOLE_JOURNEYS ? env.CONSOLE_JOURNEYS.split(',') : null;
const modules = path.resolve(env.CONSOLE_NODE_MODULES || 'var/docs/node_modules');
const { chromium } = createRequire(path.join(modules, '..', 'package.json'))('playwright-core');

const JOURNEY_MS = 60000;
const WIDTHS = [1280, 375];

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

const fmtN = (n) => new Intl.NumberFormat('en-US').format(n);
const uniq = () => `${Date.now() % 1e7}${Math.floor(Math.random() * 900 + 100)}`;

/* ---- the watch: errors and failed requests of every page of a journey ---- */

let current = null; // the running journey
const pages = []; // every page opened: {page, label}

class Journey {
  constructor(name) {
    this.name = name;
    this.pageErrors = [];
    this.consoleErrors = [];
    this.failed = []; // {page, method, path, status, detail}
    this.expected = []; // {method, path: RegExp, status, why}
    this.shots = [];
    this.watching = true;
  }

  /** Declares a failed request the journey expects (matched once each). */
  expect(method, pathRe, status, why) {
    this.expected.push({ method, path: pathRe, status, why, seen: 0 });
  }

  /** Watches page (named label) for the journey running at each moment:
   * pages live on from one journey to the next. */
  static watch(page, label) {
    pages.push({ page, label });
    const j = () => (current && current.watching ? current : null);
    page.on('pageerror', (e) => { if (j()) j().pageErrors.push(`${label}: ${e.message}`); });
    page.on('console', (m) => {
      if (!j() || m.type() !== 'error') return;
      // The browser's own line for a request answered >= 400 is checked
      // through the request list below.
      if (/^Failed to load resource: the server responded with a status of/.test(m.text())) return;
      const loc = m.location();
      j().consoleErrors.push(`${label}: ${m.text()} (${loc.url}:${loc.lineNumber})`);
    });
    page.on('response', async (r) => {
      const journey = j();
      if (!journey || r.status() < 400) return;
      const u = new URL(r.url());
      let detail = '';
      try {
        const body = await r.json();
        detail = typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail);
      } catch {
        // not JSON
      }
      journey.failed.push({ page: label, method: r.request().method(), path: u.pathname, status: r.status(), detail });
    });
    page.on('requestfailed', (r) => {
      if (!j()) return;
      const u = new URL(r.url());
      j().failed.push({ page: label, method: r.method(), path: u.pathname, status: 0, detail: r.failure()?.errorText });
    });
    return page;
  }

  /** Screenshots of page at every width into OUT. */
  async shoot(page, what) {
    for (const w of WIDTHS) {
      await page.setViewportSize({ width: w, height: w < 500 ? 812 : 900 });
      await page.waitForTimeout(120);
      const file = path.join(OUT, `${this.name}-${what}-${w}.png`);
      await page.screenshot({ path: file, fullPage: true });
      this.shots.push(file);
    }
    await page.setViewportSize({ width: WIDTHS[0], height: 900 });
  }

  /** Sorts failed requests into expected and unexpected. */
  verdict() {
    const expected = [];
    const unexpected = [];
    for (const f of this.failed) {
      const e = this.expected.find((x) => x.method === f.method && x.path.test(f.path) && x.status === f.status);
      if (e) {
        e.seen++;
        expected.push({ ...f, why: e.why });
      } else {
        unexpected.push(f);
      }
    }
    return { expected, unexpected };
  }
}

/* ---- steps ---- */

const browserArgs = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

async function newPage(browser, j, label) {
  const ctx = await browser.newContext({ viewport: { width: WIDTHS[0], height: 900 }, locale: 'en-US' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15000);
  Journey.watch(page, label);
  return page;
}

async function headerTokens(page) {
  return (await page.getByTestId('balance-tokens').textContent()).trim();
}

async function waitTokens(page, n) {
  await page.waitForFunction((want) => {
    const el = document.querySelector('[data-testid="balance-tokens"]');
    return el && el.textContent.trim() === want;
  }, fmtN(n));
}

async function signup(page) {
  const u = uniq();
  const who = { site_id: `web${u}`, nickname: `브라우저${u}`, phone: `010${u.slice(-8)}`, password: 'console-pass-1' };
  await page.goto(`${BASE}/console/`);
  const form = page.locator('form', { has: page.getByRole('heading', { name: 'Sign up' }) });
  await form.getByLabel('Site ID').fill(who.site_id);
  await form.getByLabel('Nickname').fill(who.nickname);
  await form.getByLabel('Phone number').fill(who.phone);
  await form.getByLabel('Invite code').fill('5858');
  await form.getByLabel('Password').fill(who.password);
  await form.getByRole('button', { name: 'Sign up' }).click();
  await page.getByTestId('nickname').filter({ hasText: who.nickname }).waitFor();
  await page.getByTestId('live-status').filter({ hasText: 'connected' }).waitFor();
  return who;
}

async function adminLogin(page) {
  await page.goto(`${BASE}/console/`);
  const form = page.locator('form', { has: page.getByRole('heading', { name: 'Log in' }) });
  await form.getByLabel('Site ID').fill(ADMIN.site_id);
  await form.getByLabel('Password').fill(ADMIN.password);
  await form.getByLabel('Log in as an admin').check();
  await form.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Admin' }).waitFor();
}

const nav = (page, area, name) => page.getByRole('navigation', { name: area }).getByRole('link', { name, exact: true }).click();

const state = {}; // what later journeys need from earlier ones

/* ---- the journeys ---- */

const JOURNEYS = {
  async slot(browser, j) {
    const page = await newPage(browser, j, 'player');
    state.player = page;
    state.who = await signup(page);
    await nav(page, 'Player', 'Slot');
    await page.getByTestId('spin').waitFor();
    await waitTokens(page, 200);
    let prev = 200;
    const playIds = [];
    for (let i = 1; i <= 10; i++) {
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().endsWith('/api/games/slot/spin') && r.request().method() === 'POST'),
        page.getByTestId('spin').click(),
      ]);
      assert(res.status() === 200, `spin ${i} answered ${res.status()}`);
      const body = await res.json();
      await waitTokens(page, body.balance);
      // (A spin that pays exactly its bet would leave it; the shipped
      // paytable has no 1× outcome.)
      assert(body.balance !== prev || body.win_amount === 10, `spin ${i}: the balance changed (${prev} -> ${body.balance})`);
      const text = await page.getByTestId('slot-result').textContent();
      assert(text.includes(`Balance ${fmtN(body.balance)}`), `spin ${i}: result shows the balance (${text})`);
      assert((await page.getByTestId('reels').getAttribute('aria-label')) === `Reels: ${body.reels.join(' ')}`, `spin ${i}: reels shown`);
      prev = body.balance;
      playIds.push(body.play_id);
      await page.getByTestId('spin').and(page.locator(':enabled')).waitFor();
    }
    state.slotPlays = playIds;
    await page.getByText(/^Reels and paytable/).click(); // the public config's reels, shown
    await page.getByRole('table', { name: 'Symbol weights per reel and multipliers' }).waitFor();
    await j.shoot(page, 'slot');

    // The missions page loads two lists at once: both get a 401 (as with an
    // expired access token); the client must refresh once and retry each.
    let refreshes = 0;
    let injected = 0;
    const onRequest = (r) => { if (r.url().endsWith('/api/auth/refresh')) refreshes++; };
    page.on('request', onRequest);
    const stale = async (route) => {
      if (injected >= 2) return route.continue();
      injected++;
      return route.fulfill({
        status: 401, contentType: 'application/json', headers: { 'WWW-Authenticate': 'Bearer' },
        body: JSON.stringify({ detail: '토큰이 유효하지 않습니다' }),
      });
    };
    await page.route(/\/api\/events\/(missions\/all)?$/, stale);
    j.expect('GET', /^\/api\/events\/missions\/all$/, 401, 'injected: an expired access token');
    j.expect('GET', /^\/api\/events\/$/, 401, 'injected: an expired access token');
    await nav(page, 'Player', 'Missions & events');
    const mission = page.locator('li.mission', { hasText: '슬롯머신 10회' });
    await mission.and(page.locator('[data-state="completed"]')).waitFor();
    await page.unroute(/\/api\/events\/(missions\/all)?$/, stale);
    page.off('request', onRequest);
    assert(injected === 2, `two requests got the injected 401 (${injected})`);
    assert(refreshes === 1, `one refresh for two 401s (${refreshes})`);
    assert((await mission.getByText(/\d+ \/ \d+/).textContent()).trim() === '10 / 10', 'progress 10 / 10');
    const before = prev;
    const [claim] = await Promise.all([
      page.waitForResponse((r) => /\/api\/events\/missions\/claim\/\d+$/.test(r.url())),
      mission.getByRole('button', { name: 'Claim' }).click(),
    ]);
    assert(claim.status() === 200, `claim answered ${claim.status()}`);
    const claimed = await claim.json();
    assert(claimed.balances.tokens === before + 200, `the claim credits 200 (${before} -> ${claimed.balances.tokens})`);
    await waitTokens(page, before + 200);
    await mission.and(page.locator('[data-state="claimed"]')).waitFor();
    state.tokens = before + 200;
    await j.shoot(page, 'missions');
  },

  async crash(browser, j) {
    const page = state.player;
    await nav(page, 'Player', 'Crash');
    const multiplier = page.getByTestId('crash-multiplier');
    const cashouts = [];
    page.on('response', (r) => { if (r.url().endsWith('/api/games/crash/cashout')) cashouts.push(r); });

    // By hand: cash out once the multiplier passed 1.10 (or accept a crash).
    await page.getByLabel('Bet (tokens)').fill('10');
    const [bet] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/games/crash/bet')),
      page.getByTestId('crash-bet').click(),
    ]);
    assert(bet.status() === 200, `bet answered ${bet.status()}`);
    const seen = new Set();
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline && cashouts.length === 0) {
      const m = parseFloat(await multiplier.textContent());
      seen.add(m);
      if (m >= 1.1) break;
      await page.waitForTimeout(40);
    }
    // The round may settle (crash) between the check and the click: then the
    // button is disabled and the settlement's answer is the one to compare.
    if (cashouts.length === 0) await page.getByTestId('crash-cashout').click({ timeout: 3000 }).catch(() => {});
    await page.waitForFunction(() => !document.querySelector('[data-testid="crash-cashout"]:enabled'));
    await page.waitForTimeout(50);
    assert(cashouts.length === 1, `one cash-out request (${cashouts.length})`);
    const out = await cashouts[0].json();
    const text = await page.getByTestId('crash-result').textContent();
    if (out.result === 'cashed') {
      assert(seen.size >= 3, `the multiplier rose on screen (${[...seen].join(', ')})`);
      assert(text.includes(`payout ${fmtN(out.payout)}`), `shown payout equals the API's ${out.payout}: ${text}`);
      assert((await multiplier.textContent()) === `${out.multiplier.toFixed(2)}×`, 'shown multiplier equals the API');
    } else {
      assert(text.includes(`Crashed at ${out.crash_point.toFixed(2)}×`), `shown crash point equals the API's: ${text}`);
    }
    await waitTokens(page, out.balance);
    j.note = `by hand: ${out.result} ${out.result === 'cashed' ? `at ${out.multiplier}` : `at ${out.crash_point}`}`;
    await j.shoot(page, 'cashout');

    // Automatic cash-out at 1.05: the server settles it; the page reports it.
    await page.getByLabel('Auto cash-out at (×, optional)').fill('1.05');
    await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/games/crash/bet')),
      page.getByTestId('crash-bet').click(),
    ]);
    // Wait for the report itself: right after the bet's answer the page may
    // not have drawn the running round yet, so a disabled button alone could
    // be the state before the round, not after it.
    const reportBy = Date.now() + 20000;
    while (cashouts.length < 2 && Date.now() < reportBy) await page.waitForTimeout(40);
    await page.waitForFunction(() => !document.querySelector('[data-testid="crash-cashout"]:enabled'), null, { timeout: 20000 });
    await page.waitForTimeout(50);
    assert(cashouts.length === 2, `one cash-out report for the auto round (${cashouts.length})`);
    const auto = await cashouts[1].json();
    const autoText = await page.getByTestId('crash-result').textContent();
    if (auto.result === 'cashed') {
      assert(auto.multiplier === 1.05, `auto cash-out at 1.05 (${auto.multiplier})`);
      assert(autoText.includes(`payout ${fmtN(auto.payout)}`), `auto payout shown: ${autoText}`);
    } else {
      assert(autoText.includes(`Crashed at ${auto.crash_point.toFixed(2)}×`), `auto crash shown: ${autoText}`);
    }
    await waitTokens(page, auto.balance);
    j.note += `; auto 1.05: ${auto.result}`;
  },

  async fairness(browser, j) {
    const page = state.player;
    await nav(page, 'Player', 'Fairness');
    const [rot] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/fairness/rotate')),
      page.getByTestId('rotate').click(),
    ]);
    assert(rot.status() === 200, `rotate answered ${rot.status()}`);
    const revealed = await rot.json();
    await page.getByTestId('revealed').waitFor();

    const playId = String(state.slotPlays[3]);
    await page.getByLabel('Play', { exact: true }).selectOption(playId);
    const seed = page.getByLabel('Server seed (revealed)');
    assert((await seed.inputValue()) === revealed.previous_server_seed, 'the revealed seed is filled in');
    const verdict = page.getByTestId('verify-result').locator('[data-verdict]');
    await page.getByTestId('verify').click();
    await verdict.waitFor();
    assert((await verdict.getAttribute('data-verdict')) === 'verified', `play ${playId}: ${await verdict.textContent()}`);
    assert((await verdict.textContent()).trim() === 'verified', 'shows "verified"');
    await j.shoot(page, 'verified');

    // A tampered server seed: one hex digit changed.
    const s = revealed.previous_server_seed;
    const tampered = s.slice(0, -1) + (s.endsWith('0') ? '1' : '0');
    await seed.fill(tampered);
    await page.getByTestId('verify').click();
    await page.getByTestId('verify-result').locator('[data-verdict="mismatch"]').waitFor();
    const why = await verdict.textContent();
    assert(/^mismatch: SHA-256 of the seed/.test(why.trim()), `mismatch explained: ${why}`);
    await j.shoot(page, 'mismatch');

    // The fallback engine (@noble/hashes) agrees, over every play.
    await page.getByLabel('HMAC engine').selectOption('noble');
    await seed.fill(s);
    await page.getByTestId('verify').click();
    await page.getByTestId('verify-result').filter({ hasText: 'Engine: @noble/hashes' }).locator('[data-verdict="verified"]').waitFor();
    await page.getByRole('button', { name: 'Verify all revealed plays' }).click();
    const rows = page.locator('tr[data-testid^="play-"]');
    await page.waitForFunction((n) => document.querySelectorAll('tr [data-verdict]').length >= n, await rows.count());
    const mismatches = await page.locator('tr [data-verdict="mismatch"]').count();
    const verified = await page.locator('tr [data-verdict="verified"]').count();
    assert(mismatches === 0 && verified === (await rows.count()), `every play verified (${verified}, ${mismatches} mismatches)`);
    j.note = `${verified} plays verified in the browser`;
  },

  async ban(browser, j) {
    const admin = await newPage(browser, j, 'admin');
    state.admin = admin;
    await adminLogin(admin);
    await nav(admin, 'Admin', 'Users');
    const fragment = state.who.nickname.slice(3, 9);
    await admin.getByLabel('Search nickname, site ID or phone').fill(fragment);
    await admin.getByRole('button', { name: 'Search' }).click();
    await admin.getByRole('link', { name: `Open ${state.who.nickname}` }).click();
    await admin.getByTestId('user-state').filter({ hasText: 'active' }).waitFor();
    await admin.getByLabel('Reason', { exact: true }).fill('browser journey');
    // The player's page: its socket closes with 4401, it asks the API why
    // (GET /api/auth/me answers 401 to a banned user) and shows the login.
    j.expect('GET', /^\/api\/auth\/me$/, 401, 'the player asks why its session ended: banned');
    const [res] = await Promise.all([
      admin.waitForResponse((r) => /\/api\/admin\/users\/\d+\/ban$/.test(r.url())),
      admin.getByRole('button', { name: 'Ban user' }).click(),
    ]);
    assert(res.status() === 200, `ban answered ${res.status()}`);
    await admin.getByTestId('user-state').filter({ hasText: 'banned' }).waitFor();
    const player = state.player;
    const ended = player.getByTestId('session-ended');
    await ended.waitFor({ timeout: 5000 });
    const text = await ended.textContent();
    assert(text.includes('4401'), `the page names the close code: ${text}`);
    assert(text.includes('계정이 비활성화되었습니다'), `the page shows the API's reason: ${text}`);
    await player.getByRole('heading', { name: 'Log in' }).waitFor();
    await j.shoot(admin, 'admin-banned');
    await j.shoot(player, 'player-ended');
  },

  async broadcast(browser, j) {
    const player = await newPage(browser, j, 'player2');
    await signup(player);
    const admin = state.admin || (state.admin = await newPage(browser, j, 'admin'));
    if (!(await admin.getByRole('navigation', { name: 'Admin' }).count())) await adminLogin(admin);
    await nav(admin, 'Admin', 'Notify');
    const title = `Broadcast ${uniq()}`;
    await admin.getByLabel('Title').fill(title);
    await admin.getByLabel('Body').fill('Hello from the browser journey');
    const [res] = await Promise.all([
      admin.waitForResponse((r) => r.url().endsWith('/api/admin/notifications/broadcast')),
      admin.getByRole('button', { name: 'Broadcast' }).click(),
    ]);
    assert(res.status() === 200, `broadcast answered ${res.status()}`);
    const sent = await res.json();
    assert(sent.delivered >= 1, `delivered to a live socket (${sent.delivered})`);
    await player.getByTestId('toasts').getByText(title).waitFor({ timeout: 5000 });
    await nav(player, 'Player', 'Notifications');
    await player.getByTestId('live-feed').getByText(title).waitFor();
    await j.shoot(player, 'player');
    await j.shoot(admin, 'admin');
  },

  async tour(browser, j) {
    // Every other view, as a player and as an admin, at both widths: no
    // error, no sideways scrolling of the page at 375 px (wide tables
    // scroll inside their own box), and the main actions work.
    const player = await newPage(browser, j, 'player3');
    const who = await signup(player);
    await nav(player, 'Player', 'RPS');
    await Promise.all([
      player.waitForResponse((r) => r.url().endsWith('/api/games/rps/play') && r.status() === 200),
      player.getByRole('button', { name: 'Rock' }).click(),
    ]);
    // The admin grants 1 000 tokens (a gacha pull costs 300) and a rank.
    const admin = state.admin || (state.admin = await newPage(browser, j, 'admin'));
    if (!(await admin.getByRole('navigation', { name: 'Admin' }).count())) await adminLogin(admin);
    await nav(admin, 'Admin', 'Users');
    await admin.getByLabel('Search nickname, site ID or phone').fill(who.site_id);
    await admin.getByRole('button', { name: 'Search' }).click();
    await admin.getByRole('link', { name: `Open ${who.nickname}` }).click();
    await admin.getByLabel('Amount').fill('1000');
    await Promise.all([
      admin.waitForResponse((r) => /\/tokens\/add$/.test(r.url()) && r.status() === 200),
      admin.getByRole('button', { name: 'Grant' }).click(),
    ]);
    await admin.getByLabel('New rank').selectOption('PREMIUM');
    await Promise.all([
      admin.waitForResponse((r) => /\/rank$/.test(r.url()) && r.status() === 200),
      admin.getByRole('button', { name: 'Change rank' }).click(),
    ]);
    await admin.getByRole('table', { name: /^Recent ledger/ }).getByRole('cell', { name: 'admin_grant' }).waitFor();
    await j.shoot(admin, 'user');
    await nav(player, 'Player', 'Gacha');
    await player.getByRole('table', { name: /^Odds/ }).waitFor();
    j.expect('POST', /^\/api\/games\/gacha\/pull$/, 400, 'a pull of 10 costs 3 000 tokens: the API refuses it and the page shows why');
    await player.getByLabel('Pulls').selectOption('10');
    await player.getByRole('button', { name: 'Pull' }).click();
    await player.getByRole('alert').filter({ hasText: '토큰이 부족합니다' }).waitFor();
    await player.getByLabel('Pulls').selectOption('1');
    await Promise.all([
      player.waitForResponse((r) => r.url().endsWith('/api/games/gacha/pull') && r.status() === 200),
      player.getByRole('button', { name: 'Pull' }).click(),
    ]);
    await player.getByRole('table', { name: /^Inventory: 1 items/ }).waitFor();
    for (const view of ['Slot', 'RPS', 'Gacha', 'Crash', 'Missions & events', 'Fairness', 'Notifications']) {
      await nav(player, 'Player', view);
      await player.getByRole('main').getByRole('heading', { level: 1 }).waitFor();
      await player.setViewportSize({ width: 375, height: 812 });
      const wide = await player.evaluate(() => document.documentElement.scrollWidth);
      assert(wide <= 375, `${view}: no sideways scrolling at 375 px (${wide})`);
      await player.setViewportSize({ width: 1280, height: 900 });
    }
    await player.getByRole('heading', { name: /^Inbox/ }).waitFor();
    for (const [area, view, ready] of [
      ['Admin', 'Stats', 'Users'], ['Admin', 'Users', 'Search'], ['Admin', 'Events', 'New event'],
      ['Admin', 'Missions', 'New mission'], ['Admin', 'Audit log', 'Filter'], ['Admin', 'Crash rounds', 'Filter'],
      ['Admin', 'Scripts', 'Reload scripts'],
    ]) {
      await nav(admin, area, view);
      await admin.getByRole('main').getByText(ready, { exact: true }).first().waitFor();
      await admin.setViewportSize({ width: 375, height: 812 });
      const wide = await admin.evaluate(() => document.documentElement.scrollWidth);
      assert(wide <= 375, `${view}: no sideways scrolling at 375 px (${wide})`);
      await admin.setViewportSize({ width: 1280, height: 900 });
    }
    // A new event, published to players, and a reload of the scripts.
    await nav(admin, 'Admin', 'Events');
    await admin.getByRole('button', { name: 'New event' }).click();
    const title = `Journey event ${uniq()}`;
    await admin.getByLabel('Title', { exact: true }).fill(title);
    await admin.getByLabel('Requirements (JSON)').fill('{"play_count": 1}');
    await Promise.all([
      admin.waitForResponse((r) => r.url().endsWith('/api/admin/events/') && r.status() === 201),
      admin.getByRole('button', { name: 'Create' }).click(),
    ]);
    await admin.getByRole('button', { name: `Deactivate ${title}` }).click();
    await admin.getByRole('button', { name: `Publish ${title}` }).click();
    await admin.getByRole('button', { name: `Participations of ${title}` }).click();
    await admin.getByRole('heading', { name: `Participations of "${title}"` }).waitFor();
    await nav(admin, 'Admin', 'Scripts');
    const generation = Number(await admin.getByTestId('generation').textContent());
    await admin.getByRole('button', { name: 'Reload scripts' }).click();
    await admin.getByTestId('generation').filter({ hasText: String(generation + 1) }).waitFor();
    await nav(player, 'Player', 'Missions & events');
    await player.locator('li.mission', { hasText: title }).getByRole('button', { name: 'Join' }).click();
    await player.locator('li.mission', { hasText: title }).getByText('joined', { exact: true }).waitFor();
    await j.shoot(player, 'events');
    await nav(admin, 'Admin', 'Audit log');
    await admin.getByRole('cell', { name: 'event.publish' }).first().waitFor();
    await j.shoot(admin, 'audit');
    // Logging out ends the session on the server and here.
    await Promise.all([
      player.waitForResponse((r) => r.url().endsWith('/api/auth/logout') && r.status() === 200),
      player.getByRole('button', { name: 'Log out' }).click(),
    ]);
    await player.getByTestId('session-ended').filter({ hasText: 'You logged out.' }).waitFor();
  },

  async rtp(browser, j) {
    const admin = state.admin || (state.admin = await newPage(browser, j, 'admin'));
    if (!(await admin.getByRole('navigation', { name: 'Admin' }).count())) await adminLogin(admin);
    // A reload keeps the session (the tab's sessionStorage) and clears the
    // earlier journeys' toasts off the report.
    await admin.reload();
    await admin.getByRole('navigation', { name: 'Admin' }).waitFor();
    await nav(admin, 'Admin', 'RTP report');
    const card = admin.getByTestId('rtp-slot');
    const shown = (await card.getByTestId('exact-rtp').textContent()).trim();
    assert(shown === SLOT_RTP, `the slot's exact RTP ${shown} equals cchost rtp's ${SLOT_RTP}`);
    const canvas = card.locator('canvas').first();
    await canvas.waitFor();
    const inked = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
      return n;
    });
    assert(inked > 2000, `the distribution is drawn (${inked} pixels)`);
    assert(await admin.getByTestId('chart-gacha').locator('canvas').count() === 1, 'the gacha odds are drawn');
    await j.shoot(admin, 'report');

    // A 5xx shows its request id (an injected answer of the contract's shape).
    await admin.route('**/api/admin/stats', (route) => route.fulfill({
      status: 500, contentType: 'application/json',
      body: JSON.stringify({ detail: 'Internal Server Error', request_id: 'journey-request-id-1' }),
    }));
    j.expect('GET', /^\/api\/admin\/stats$/, 500, 'injected: a server error');
    await nav(admin, 'Admin', 'Stats');
    await admin.getByRole('alert').filter({ hasText: 'request id journey-request-id-1' }).waitFor();
    await admin.unroute('**/api/admin/stats');
  },
};

/* ---- run ---- */

async function main() {
  mkdirSync(OUT, { recursive: true });
  // playwright-core starts Chromium with a fresh temporary --user-data-dir
  // of its own (it refuses one in args) and removes it at close.
  const browser = await chromium.launch({ executablePath: env.CHROMIUM || '/usr/bin/chromium', args: browserArgs, headless: true });
  let failures = 0;
  try {
    for (const [name, fn] of Object.entries(JOURNEYS)) {
      if (ONLY && !ONLY.includes(name)) continue;
      const j = new Journey(name);
      current = j;
      const t0 = Date.now();
      let error = null;
      try {
        await Promise.race([
          fn(browser, j),
          new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${JOURNEY_MS} ms`)), JOURNEY_MS)),
        ]);
      } catch (e) {
        error = e.message.split('\n').slice(0, 6).join('\n');
        for (const { page, label } of pages) {
          const file = path.join(OUT, `${name}-failure-${label}.png`);
          await page.screenshot({ path: file, fullPage: true }).then(() => j.shots.push(file), () => {});
        }
      }
      await new Promise((r) => setTimeout(r, 200)); // late responses of this journey
      j.watching = false;
      const { expected, unexpected } = j.verdict();
      const ok = !error && unexpected.length === 0 && j.pageErrors.length === 0 && j.consoleErrors.length === 0;
      if (!ok) failures++;
      console.log(`JOURNEY ${JSON.stringify({
        name, ok, ms: Date.now() - t0, error, note: j.note || null, expected_failures: expected,
        unexpected_failures: unexpected, page_errors: j.pageErrors, console_errors: j.consoleErrors, screenshots: j.shots,
      })}`);
      if (error) break; // later journeys build on earlier ones
    }
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log(`JOURNEY ${JSON.stringify({ name: 'setup', ok: false, error: e.message })}`);
  process.exit(1);
});
