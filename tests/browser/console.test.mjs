// The web console end to end, in headless Chromium driven by playwright-core, against the local
// stack (`herald dev`, in memory) and a local receiver. Run by `make test-browser`:
//
//   HERALD_BIN=target/debug/herald node --test tests/browser/console.test.mjs
//
// Screenshots of every page go to tests/browser/artifacts/. Every request the page makes is
// recorded, and all must go to the API's origin.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');
const targetDir = path.resolve(root, process.env.CARGO_TARGET_DIR || 'target');
const HERALD = path.resolve(root, process.env.HERALD_BIN || path.join(targetDir, 'debug', 'herald'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(here, 'artifacts');
const KEY = 'herald-dev-key';
const WAIT = 15_000;

// Known to work as root on a closed network: without the background-networking flags
// Chromium tries Google hosts. Playwright adds a fresh temporary --user-data-dir itself.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let herald; // { child, url, origin, banner }
let receiver; // { server, url, requests }
let browser;
const pageRequests = [];
const pageProblems = [];

/** Polls `check` until it answers truthy; fails with `what` after `timeout` ms. */
async function until(what, check, timeout = WAIT) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      last = await check();
      if (last) return last;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last})`);
}

function startHerald() {
  const env = { ...process.env, HERALD_TARGET_POLICY: 'loopback', HERALD_API_KEY: KEY, RUST_LOG: 'warn' };
  delete env.AWS_ENDPOINT_URL; // in memory, whatever the shell has
  const child = spawn(HERALD, ['dev', '--port', '0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let banner = '';
  let errors = '';
  child.stderr.on('data', (d) => { errors += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald dev printed no console URL:\n${banner}\n${errors}`)), 30_000);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`herald dev exited (${code}):\n${banner}\n${errors}`)));
    child.stdout.on('data', (d) => {
      banner += d;
      const found = banner.match(/Web console: (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (found) {
        clearTimeout(timer);
        resolve({ child, url: found[1], origin: new URL(found[1]).origin, banner });
      }
    });
  });
}

/** A receiver on a free loopback port that answers 200 and keeps every request. */
function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok from the test receiver');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${server.address().port}`, requests }));
  });
}

/** The API, from the test (not the page), with the local stack's key or `key`. */
async function api(method, route, body, key = KEY) {
  const response = await fetch(`${herald.origin}${route}`, {
    method,
    headers: { Authorization: `Bearer ${key}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function newPage(options) {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT);
  context.on('request', (r) => pageRequests.push(r.url()));
  const page = await context.newPage();
  page.on('pageerror', (e) => pageProblems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // A 4xx answer is logged by Chromium as "Failed to load resource"; the 422 step makes one.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageProblems.push(`console: ${m.text()}`);
  });
  return { context, page };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** A step of a flow: once one fails, the later ones are skipped rather than failing too. */
function flow(t) {
  let broken = false;
  return (name, body) => t.test(name, async (st) => {
    if (broken) return st.skip('an earlier step failed');
    try {
      await body();
    } catch (error) {
      broken = true;
      throw error;
    }
  });
}

const heading = (page, name) => page.getByRole('heading', { level: 1, name }).waitFor({ timeout: WAIT });

async function enterKey(page) {
  await page.goto(herald.url);
  await heading(page, 'Herald console');
  const key = page.getByLabel('Tenant API key');
  await key.fill(KEY);
  await key.press('Enter'); // the form submits from the keyboard
  await heading(page, 'Webhooks');
}

/** No horizontal scrolling at this width. */
async function fitsWidth(page, width) {
  const scroll = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scroll <= width, `the page is ${scroll} px wide at a ${width} px viewport`);
}

/** Every visible input, select and textarea has a label. */
async function everyInputLabelled(page) {
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label'))
    .map((el) => el.outerHTML));
  assert.deepEqual(unlabelled, []);
}

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  assert.ok(fs.existsSync(HERALD), `${HERALD} is missing: run cargo build -p herald-cli`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  [herald, receiver] = await Promise.all([startHerald(), startReceiver()]);
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
  herald?.child.kill('SIGTERM');
  receiver?.server.close();
});

test('herald dev prints the console URL', () => {
  assert.match(herald.banner, /Web console: http:\/\/127\.0\.0\.1:\d+\//);
});

test('desktop: key, create with filters, tests, deliveries, redeliver, secret, edit, disable, delete', async (t) => {
  const { context, page } = await newPage({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: herald.origin });
  const step = flow(t);
  let webhookId;

  await step('enter the key: kept in sessionStorage, never in the URL', async () => {
    await page.goto(herald.url);
    await heading(page, 'Herald console');
    await shot(page, '01-key');
    const key = page.getByLabel('Tenant API key');
    assert.equal(await key.getAttribute('type'), 'password');
    await key.fill(KEY);
    await key.press('Enter');
    await heading(page, 'Webhooks');
    await page.getByText('No webhooks yet.').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('herald.key')), KEY);
    assert.equal(await page.evaluate(() => localStorage.length), 0);
    assert.ok(!page.url().includes(KEY));
    await shot(page, '02-list-empty');
  });

  await step('a 422 field error is shown next to its field', async () => {
    await page.getByRole('link', { name: 'New webhook' }).first().click();
    await heading(page, 'New webhook');
    await everyInputLabelled(page);
    // The kinds offered are the API's own (its OpenAPI document's Kind enum).
    const offered = await page.getByLabel('Kind', { exact: true }).locator('option').evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(offered, (await api('GET', '/v1/openapi.json')).body.components.schemas.Kind.enum);
    await page.getByLabel('URL', { exact: true }).fill('ftp://hooks.example.com/x');
    await page.locator('input[name=events][value="experiments.done"]').check();
    await page.getByRole('button', { name: 'Create webhook' }).click();
    const urlField = page.locator('[data-field="url"]');
    const error = urlField.locator('.error');
    await error.waitFor({ state: 'visible', timeout: WAIT });
    assert.match(await error.textContent(), /http/);
    assert.equal(await urlField.locator('input').getAttribute('aria-invalid'), 'true');
    // The input names the error as its description, so screen readers read it.
    const describedBy = await urlField.locator('input').getAttribute('aria-describedby');
    assert.ok(describedBy.split(' ').includes(await error.getAttribute('id')));
    await page.locator('.summary').waitFor({ state: 'visible' });
    await shot(page, '03-form-error');
  });

  await step('an unsaved Slack configuration with filters is tested: 200', async () => {
    await page.getByLabel('URL', { exact: true }).fill(`${receiver.url}/hooks`);
    await page.getByLabel('Kind', { exact: true }).selectOption('slack');
    await page.getByLabel('Name', { exact: true }).fill('ml-alerts');
    await page.getByLabel('Project names').fill('Light*');
    await page.getByRole('checkbox', { name: 'PRODUCTION' }).check();
    await page.getByRole('button', { name: 'Add header' }).click();
    await page.getByLabel('Header name').fill('Authorization');
    await page.getByLabel('Value', { exact: true }).fill('Token 123');
    await page.getByRole('switch', { name: 'Protected' }).check();
    assert.equal(await page.getByLabel('Value', { exact: true }).getAttribute('type'), 'password');
    await page.getByRole('switch', { name: /^Include the result/ }).check();
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.locator('.test-result .status-code', { hasText: '200' }).waitFor({ timeout: WAIT });
    await page.locator('.test-result .outcome', { hasText: 'Delivered' }).waitFor();
    assert.match(await page.locator('.test-result .duration').textContent(), /^\d+ ms$/);
    assert.match(await page.locator('.test-result .response').textContent(), /ok from the test receiver/);
    await until('the unsaved test at the receiver', () => receiver.requests.length === 1);
    const got = receiver.requests[0];
    assert.equal(got.url, '/hooks');
    assert.equal(got.headers.authorization, 'Token 123');
    assert.ok(JSON.parse(got.body).blocks, 'a Slack message');
    await shot(page, '04-form-test');
  });

  await step('create it', async () => {
    await page.getByRole('button', { name: 'Create webhook' }).click();
    await heading(page, 'ml-alerts');
    webhookId = page.url().match(/#\/webhooks\/(wh_[^/]+)$/)[1];
    const { body } = await api('GET', `/v1/webhooks/${webhookId}`);
    assert.equal(body.kind, 'slack');
    assert.deepEqual(body.events, ['experiments.done']);
    assert.deepEqual(body.filters, { project_names: ['Light*'], environment_types: ['PRODUCTION'] });
    assert.deepEqual(body.headers, [{ key: 'Authorization', value: null, protected: true }]);
    assert.equal(body.include_result, true);
    assert.ok(!(await page.content()).includes('Token 123'), 'a protected value is never shown');
    await everyInputLabelled(page);
    await shot(page, '05-detail');
  });

  await step('the saved webhook is tested: 200', async () => {
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.locator('.test-result .status-code', { hasText: '200' }).waitFor({ timeout: WAIT });
    await until('the saved test at the receiver', () => receiver.requests.length === 2);
  });

  await step('a posted event matching the filters shows in the delivery log', async () => {
    const other = await api('POST', '/v1/events', { type: 'experiments.succeeded', project: 'Other project', environment_type: 'PRODUCTION' });
    assert.equal(other.status, 202);
    const event = await api('POST', '/v1/events', {
      id: 'evt-browser-1', type: 'experiments.succeeded', project: 'Light detection', environment_type: 'PRODUCTION',
      object: { kind: 'experiment', name: 'cifar10' }, data: { accuracy: 0.93 },
    });
    assert.equal(event.status, 202);
    await until('the event at the receiver', () => receiver.requests.length === 3);
    await page.getByRole('link', { name: 'Delivery log' }).click();
    await heading(page, 'Deliveries: ml-alerts');
    const delivery = page.locator('li.delivery[data-status="succeeded"]');
    await until('the delivery in the log', async () => {
      if (await delivery.count()) return true;
      await page.getByRole('button', { name: 'Refresh' }).click();
      return false;
    });
    assert.equal(await page.locator('li.delivery').count(), 1, 'the event outside the filters is not delivered');
    assert.equal(await delivery.locator('.event-type').textContent(), 'experiments.succeeded');
    assert.ok((await delivery.textContent()).includes('evt-browser-1'));
    assert.equal(await delivery.locator('.attempt .status-code').textContent(), '200');
    await shot(page, '06-deliveries');
  });

  await step('redeliver', async () => {
    await page.getByRole('button', { name: /^Redeliver experiments\.succeeded/ }).click();
    await page.locator('#toast', { hasText: 'Redelivery queued' }).waitFor();
    await until('the redelivery at the receiver', () => receiver.requests.length === 4);
    assert.equal(receiver.requests[3].headers['webhook-id'], 'evt-browser-1');
    await until('a second attempt in the log', async () => {
      if ((await page.locator('li.delivery .attempt').count()) === 2) return true;
      await page.getByRole('button', { name: 'Refresh' }).click();
      return false;
    });
    await shot(page, '07-redelivered');
  });

  await step('recover a window from the console', async () => {
    await page.getByLabel('Status').selectOption('succeeded');
    await page.getByRole('button', { name: 'Recover', exact: true }).click();
    await page.locator('#toast', { hasText: 'Recovery done: 1 queued of 1 matched' }).waitFor();
    await until('the recovered delivery at the receiver', () => receiver.requests.length === 5);
    assert.equal(receiver.requests[4].headers['webhook-id'], 'evt-browser-1');
    await shot(page, '07b-recovered');
  });

  await step('a disabled webhook holds what matches it; the banner enables it and recovers it', async () => {
    assert.equal((await api('PATCH', `/v1/webhooks/${webhookId}`, { enabled: false })).status, 200);
    const held = await api('POST', '/v1/events', {
      id: 'evt-browser-held', type: 'experiments.succeeded', project: 'Light detection', environment_type: 'PRODUCTION',
    });
    assert.equal(held.status, 202);
    const banner = page.getByRole('alert').filter({ hasText: 'This webhook is disabled' });
    await until('the held delivery and the banner', async () => {
      await page.reload();
      await heading(page, 'Deliveries: ml-alerts');
      return (await page.locator('li.delivery[data-status="held"]').count()) === 1 && (await banner.count()) === 1;
    });
    assert.equal(receiver.requests.length, 5, 'nothing sent while disabled');
    await shot(page, '07c-held');
    await page.getByRole('button', { name: 'Enable and recover held deliveries' }).click();
    await page.locator('#toast', { hasText: 'Recovery done: 1 queued of 1 matched' }).waitFor();
    await until('the held delivery at the receiver', () => receiver.requests.length === 6);
    assert.equal(receiver.requests[5].headers['webhook-id'], 'evt-browser-held');
    await banner.waitFor({ state: 'detached' });
    assert.equal((await api('GET', `/v1/webhooks/${webhookId}`)).body.enabled, true);
  });

  await step('filter the delivery log by status', async () => {
    const filter = page.getByLabel('Filter the log');
    await filter.selectOption('failed');
    await page.getByRole('status').filter({ hasText: 'No failed deliveries' }).waitFor();
    assert.equal(await page.locator('li.delivery').count(), 0);
    await filter.selectOption('succeeded');
    await until('only succeeded deliveries', async () => (await page.locator('li.delivery').count()) > 0);
    assert.equal(await page.locator('li.delivery:not([data-status="succeeded"])').count(), 0);
    await filter.selectOption('');
  });

  await step('the webhook page shows its health: attempts per hour as a chart', async () => {
    await page.getByRole('link', { name: 'Back to the webhook' }).click();
    await heading(page, 'ml-alerts');
    const chart = page.getByRole('img', { name: /^Attempts per hour/ });
    await chart.waitFor();
    assert.match(await chart.getAttribute('aria-label'), /in 24h: 100\.0 % succeeded/);
    assert.ok((await page.locator('svg.chart rect.bar.ok').count()) >= 1, 'a bar for the succeeded attempts');
    assert.equal(await page.locator('svg.chart g.hour').count(), 24);
    await shot(page, '07d-health');
    await page.getByLabel('Health window').selectOption('7d');
    await until('the week', async () => (await page.locator('svg.chart g.hour').count()) === 168);
    assert.match(await page.locator('.health .rate').textContent(), /in 7d: 100\.0 % succeeded/);
    await page.getByRole('link', { name: 'Delivery log' }).click();
    await heading(page, 'Deliveries: ml-alerts');
  });

  await step('reveal, copy and rotate the secret', async () => {
    await page.getByRole('link', { name: 'Back to the webhook' }).click();
    await heading(page, 'ml-alerts');
    const value = page.locator('#secret-value');
    assert.ok(!(await value.textContent()).startsWith('whsec_'), 'hidden until asked');
    await page.getByRole('button', { name: 'Reveal' }).click();
    await until('the secret shown', async () => (await value.textContent()).startsWith('whsec_'));
    const first = await value.textContent();
    assert.equal(first, (await api('GET', `/v1/webhooks/${webhookId}/secret`)).body.secret);
    await page.getByRole('button', { name: 'Copy' }).click();
    await page.locator('#toast', { hasText: 'Secret copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), first);
    await page.getByRole('button', { name: 'Rotate…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /ml-alerts/);
    await shot(page, '08-rotate-confirm');
    await dialog.getByRole('button', { name: 'Rotate secret' }).click();
    await until('a new secret shown', async () => {
      const now = await value.textContent();
      return now.startsWith('whsec_') && now !== first;
    });
    assert.equal(await value.textContent(), (await api('GET', `/v1/webhooks/${webhookId}/secret`)).body.secret);
    await shot(page, '09-secret');
  });

  await step('edit: a protected value is never prefilled and is kept when left empty', async () => {
    await page.getByRole('link', { name: 'Edit', exact: true }).click();
    await heading(page, 'Edit ml-alerts');
    await everyInputLabelled(page);
    const value = page.getByLabel('Value', { exact: true });
    assert.equal(await value.inputValue(), '');
    assert.equal(await value.getAttribute('placeholder'), '•••');
    assert.ok(!(await page.content()).includes('Token 123'));
    assert.ok(await page.locator('input[name=events][value="experiments.done"]').isChecked());
    assert.ok(await page.getByRole('checkbox', { name: 'PRODUCTION' }).isChecked());
    await page.getByLabel('Project names').fill('Light*\nprod-*');
    await shot(page, '10-edit');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await heading(page, 'ml-alerts');
    const { body } = await api('GET', `/v1/webhooks/${webhookId}`);
    assert.deepEqual(body.filters.project_names, ['Light*', 'prod-*']);
    await page.getByRole('button', { name: 'Send test' }).click();
    await page.locator('.test-result .status-code', { hasText: '200' }).waitFor({ timeout: WAIT });
    await until('the test after the edit', () => receiver.requests.length === 7);
    assert.equal(receiver.requests[6].headers.authorization, 'Token 123', 'the stored value is kept');
  });

  await step('the list shows the webhook and its last delivery; disable it from the keyboard', async () => {
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await heading(page, 'Webhooks');
    const row = page.locator(`tr[data-id="${webhookId}"]`);
    await row.locator('.last .badge', { hasText: 'succeeded' }).waitFor({ timeout: WAIT });
    assert.match(await row.textContent(), /ml-alerts/);
    assert.match(await row.textContent(), /slack/);
    assert.match(await row.textContent(), /experiments\.done/);
    await everyInputLabelled(page);
    await shot(page, '11-list');
    const toggle = page.getByRole('switch', { name: 'Enabled: ml-alerts' });
    assert.ok(await toggle.isChecked());
    await toggle.focus();
    await page.keyboard.press('Space');
    await page.locator('#toast', { hasText: 'ml-alerts disabled' }).waitFor();
    assert.equal((await api('GET', `/v1/webhooks/${webhookId}`)).body.enabled, false);
    assert.equal(await toggle.isChecked(), false);
    await shot(page, '12-disabled');
  });

  await step('delete, with a confirmation naming the webhook', async () => {
    await page.getByRole('link', { name: 'ml-alerts' }).click();
    await heading(page, 'ml-alerts');
    await page.getByRole('button', { name: 'Delete webhook…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /Delete “ml-alerts”\?/);
    assert.match(await dialog.textContent(), /delivery log is not deleted/);
    await page.keyboard.press('Escape'); // cancel keeps it
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await api('GET', `/v1/webhooks/${webhookId}`)).status, 200);
    await page.getByRole('button', { name: 'Delete webhook…' }).click();
    await dialog.waitFor();
    await shot(page, '13-delete-confirm');
    await dialog.getByRole('button', { name: 'Delete ml-alerts' }).click();
    await heading(page, 'Webhooks');
    await page.getByText('No webhooks yet.').waitFor();
    assert.equal((await api('GET', `/v1/webhooks/${webhookId}`)).status, 404);
  });

  await context.close();
});

test('keys: the list, a named key with chosen scopes shown once, revoke', async (t) => {
  const { context, page } = await newPage({ viewport: { width: 1280, height: 900 } });
  const step = flow(t);
  const day = /^\d{4}-\d{2}-\d{2}$/;
  let made;

  await step('the list shows the first key, its scopes and its last use', async () => {
    await enterKey(page);
    await page.getByRole('link', { name: 'Keys' }).click();
    await heading(page, 'API keys');
    const first = page.locator('tbody tr', { hasText: 'first key' });
    await first.waitFor();
    assert.equal(await first.locator('.scopes').textContent(), 'ingest, read, manage, admin');
    assert.match(await first.locator('.last-used').textContent(), day);
    await everyInputLabelled(page);
    await shot(page, '15-keys');
  });

  await step('a key without a scope is refused next to the scopes', async () => {
    await page.getByLabel('Key name').fill('ci producer');
    await page.getByRole('button', { name: 'Create key' }).click();
    const error = page.locator('[data-field="scopes"] > .error');
    await error.waitFor({ state: 'visible' });
    assert.match(await error.textContent(), /at least one/);
  });

  await step('create a named key with the ingest scope: the key is shown once', async () => {
    await page.getByRole('checkbox', { name: /^ingest/ }).check();
    await page.getByRole('button', { name: 'Create key' }).click();
    const value = page.locator('#new-key-value');
    await value.waitFor();
    made = await value.textContent();
    assert.match(made, /^hk_/);
    const row = page.locator('tbody tr', { hasText: 'ci producer' });
    await row.waitFor();
    assert.equal(await row.locator('.scopes').textContent(), 'ingest');
    assert.equal(await row.locator('.last-used').textContent(), 'never');
    await shot(page, '16-key-created');
    // It posts events and does nothing else.
    assert.equal((await api('POST', '/v1/events', { type: 'jobs.failed' }, made)).status, 202);
    assert.equal((await api('GET', '/v1/webhooks', undefined, made)).status, 403);
    assert.ok(!JSON.stringify((await api('GET', '/v1/keys')).body).includes(made), 'never listed');
    await page.reload();
    await heading(page, 'API keys');
    assert.ok(!(await page.content()).includes(made), 'not shown again');
    assert.match(await page.locator('tbody tr', { hasText: 'ci producer' }).locator('.last-used').textContent(), day);
  });

  await step('revoke it, with a confirmation naming the key', async () => {
    await page.getByRole('button', { name: 'Revoke ci producer' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /Revoke “ci producer”\?/);
    await shot(page, '17-revoke-confirm');
    await dialog.getByRole('button', { name: 'Revoke key' }).click();
    await page.locator('#toast', { hasText: 'Revoked ci producer' }).waitFor();
    await page.locator('tbody tr', { hasText: 'ci producer' }).waitFor({ state: 'detached' });
    assert.equal((await api('POST', '/v1/events', { type: 'jobs.failed' }, made)).status, 401);
  });

  await step('a key without the admin scope is told what it lacks', async () => {
    const viewer = await api('POST', '/v1/keys', { name: 'viewer', scopes: ['read'] });
    assert.equal(viewer.status, 201);
    await page.getByRole('button', { name: 'Forget key' }).click();
    await heading(page, 'Herald console');
    const key = page.getByLabel('Tenant API key');
    await key.fill(viewer.body.key);
    await key.press('Enter');
    await heading(page, 'Webhooks');
    await page.goto(`${herald.url}#/keys`);
    await heading(page, 'Not allowed with this key');
    assert.match(await page.locator('main').textContent(), /`admin` scope/);
  });

  await context.close();
});

test('375 px wide: every page fits without horizontal scrolling', async () => {
  const created = await api('POST', '/v1/webhooks', {
    name: 'mobile-check', url: `${receiver.url}/mobile`, kind: 'standard', events: ['deployments.*', 'requests.finished'],
    filters: { project_names: ['prod-*'], object: { kind: 'deployment', name: 'model-a', version: 'v1' } },
    headers: [{ key: 'X-Team', value: 'ml' }],
  });
  assert.equal(created.status, 201);
  const id = created.body.id;
  await api('POST', '/v1/events', { type: 'deployments.failed', project: 'prod-eu', object: { kind: 'deployment', name: 'model-a', version: 'v1' } });
  const { context, page } = await newPage({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await enterKey(page);
  await page.locator(`tr[data-id="${id}"] .last .badge`).waitFor({ timeout: WAIT });
  await fitsWidth(page, 375);
  await shot(page, 'm1-list');
  await page.getByRole('link', { name: 'mobile-check' }).click();
  await heading(page, 'mobile-check');
  await fitsWidth(page, 375);
  await shot(page, 'm2-detail');
  await page.getByRole('link', { name: 'Delivery log' }).click();
  await heading(page, 'Deliveries: mobile-check');
  await page.locator('li.delivery').first().waitFor({ timeout: WAIT });
  await fitsWidth(page, 375);
  await shot(page, 'm3-deliveries');
  await page.goto(`${herald.url}#/webhooks/${id}/edit`);
  await heading(page, 'Edit mobile-check');
  await fitsWidth(page, 375);
  await shot(page, 'm4-edit');
  await page.goto(`${herald.url}#/new`);
  await heading(page, 'New webhook');
  await fitsWidth(page, 375);
  await shot(page, 'm5-new');
  await page.goto(`${herald.url}#/keys`);
  await heading(page, 'API keys');
  await fitsWidth(page, 375);
  await shot(page, 'm6-keys');
  await context.close();
});

test('overview: several webhooks, their last deliveries (the README screenshot)', async () => {
  const closed = http.createServer();
  await new Promise((r) => closed.listen(0, '127.0.0.1', r));
  const deadUrl = `http://127.0.0.1:${closed.address().port}/gone`;
  await new Promise((r) => closed.close(r));
  const made = [
    { name: 'deploy-alerts', url: `${receiver.url}/slack`, kind: 'slack', events: ['deployments.done'], filters: { environment_types: ['PRODUCTION'] } },
    { name: 'ci-builds', url: deadUrl, events: ['builds.failed', 'builds.stopped'] },
    { name: 'nightly-jobs', url: `${receiver.url}/jobs`, events: ['jobs.*'], enabled: false },
  ];
  for (const body of made) assert.equal((await api('POST', '/v1/webhooks', body)).status, 201);
  await api('POST', '/v1/events', { type: 'deployments.succeeded', environment_type: 'PRODUCTION', project: 'prod-eu', object: { kind: 'deployment', name: 'model-a', version: 'v2' } });
  await api('POST', '/v1/events', { type: 'builds.failed', project: 'mnist' });
  const { context, page } = await newPage({ viewport: { width: 1280, height: 640 } });
  await enterKey(page);
  await page.locator('tr', { hasText: 'deploy-alerts' }).locator('.last .badge', { hasText: 'succeeded' }).waitFor();
  await page.locator('tr', { hasText: 'ci-builds' }).locator('.last .badge').waitFor();
  await shot(page, '14-overview');
  await context.close();
});

test('every request of the page went to the API origin, and no page errors', () => {
  assert.ok(pageRequests.length > 20, `requests recorded: ${pageRequests.length}`);
  const elsewhere = pageRequests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== herald.origin);
  assert.deepEqual(elsewhere, []);
  assert.deepEqual(pageProblems, []);
});
