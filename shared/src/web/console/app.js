// Herald console: one page over the public API, no framework and no build step.
//
// - The tenant key lives in this tab's sessionStorage only, and leaves it only as
//   `Authorization: Bearer` on requests to this origin. It never goes into a URL.
// - Everything the API returns is user data: it is written with textContent and DOM
//   properties, never parsed as HTML.
// - Routes live in the fragment (#/webhooks/wh_...), so the server serves one page.

const KEY = 'herald.key';
const ENVIRONMENTS = ['PRODUCTION', 'DEVELOPMENT', 'STAGING', 'PREVIEW'];
/** Labels of the kinds known when this was written; the list itself comes from the API. */
const KIND_LABELS = {
  standard: 'Standard (Herald JSON, signed)',
  slack: 'Slack (incoming webhook message)',
  discord: 'Discord (webhook message with an embed)',
  teams: 'Microsoft Teams (Workflows webhook, Adaptive Card)',
  determined: 'Determined payload (event_id, event_type, event_data)',
  ubiops: 'UbiOps payload (event, object ids, status, text)',
  qovery: 'Qovery payload (event_type, payload_type, payload)',
};
const PAGE = 20;

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const toastBox = document.getElementById('toast');

// ---------------------------------------------------------------------------------------------
// DOM helpers

/** An element: `props` are attributes (`class`, `for`, `aria-*`...), `on*` listeners, or the
 *  properties `text`, `value`, `checked`, `disabled`, `hidden`, `selected`. Strings among the
 *  children become text nodes. */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') el.textContent = value;
    else if (name === 'class') el.className = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else if (['value', 'checked', 'disabled', 'hidden', 'selected', 'required'].includes(name)) el[name] = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;
const nextId = (prefix) => `${prefix}-${++uid}`;

function time(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, Number.isNaN(date.getTime()) ? iso : date.toLocaleString());
}

function badge(status) {
  return h('span', { class: `badge badge-${String(status).replace(/[^a-z]/g, '')}` }, status);
}

function toast(message, kind = 'info') {
  toastBox.textContent = message;
  toastBox.className = `toast show toast-${kind}`;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { toastBox.className = 'toast'; }, 5000);
}

/** A modal confirmation (a native <dialog>: focus is trapped and Escape cancels). */
function confirmDialog(title, text, okLabel) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-text').textContent = text;
  const ok = document.getElementById('confirm-ok');
  const cancel = document.getElementById('confirm-cancel');
  ok.textContent = okLabel;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    const onOk = () => dialog.close('ok');
    const onCancel = () => dialog.close('cancel');
    ok.addEventListener('click', onOk);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('close', () => {
      ok.removeEventListener('click', onOk);
      cancel.removeEventListener('click', onCancel);
      resolve(dialog.returnValue === 'ok');
    }, { once: true });
    dialog.showModal();
    cancel.focus();
  });
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

let keyNotice = '';

/** One request to this origin's API. Answers the JSON body, or throws an ApiError carrying the
 *  problem+json document. A refused key (401) is forgotten and the key page shown. */
async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  const headers = { Accept: 'application/json, application/problem+json' };
  if (key) headers.Authorization = `Bearer ${key}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    // Relative to the page, so a stage path prefix (…/prod/) is kept.
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { title: 'Network error', detail: 'the API could not be reached' });
  }
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : null;
  if (response.status === 401) {
    sessionStorage.removeItem(KEY);
    catalog = null;
    keyNotice = 'The API refused this key. Enter a valid tenant key.';
    route();
    const error = new ApiError(401, data);
    error.handled = true;
    throw error;
  }
  if (!response.ok) throw new ApiError(response.status, data || { title: response.statusText, status: response.status });
  return data;
}

const path = (...parts) => parts.map((p, i) => (i % 2 ? encodeURIComponent(p) : p)).join('');

/** A failed call, in one line for a toast. */
function describe(error) {
  const p = error.problem || {};
  const head = error.status ? `${error.status} ${p.title || ''}`.trim() : p.title || 'Error';
  return p.detail ? `${head}: ${p.detail}` : head;
}

function failed(error) {
  if (!error.handled) toast(describe(error), 'error');
}

let kinds = null;
/** The webhook kinds this API takes: the `Kind` enum of its OpenAPI document, read once. */
function loadKinds() {
  kinds ??= api('GET', 'v1/openapi.json')
    .then((doc) => doc.components.schemas.Kind.enum)
    .catch(() => Object.keys(KIND_LABELS));
  return kinds;
}

let catalog = null;
/** GET /v1/event-types, once per key. */
function loadCatalog() {
  if (!catalog) {
    catalog = api('GET', 'v1/event-types').catch((e) => {
      catalog = null;
      throw e;
    });
  }
  return catalog;
}

// ---------------------------------------------------------------------------------------------
// Routing

let rendering = 0;
const routes = [
  [/^#?\/?$/, () => listPage()],
  [/^#\/new$/, () => formPage(null)],
  [/^#\/webhooks\/([^/]+)$/, (id) => detailPage(id)],
  [/^#\/webhooks\/([^/]+)\/edit$/, (id) => formPage(id)],
  [/^#\/webhooks\/([^/]+)\/deliveries$/, (id) => deliveriesPage(id)],
  [/^#\/keys$/, () => keysPage()],
];

async function route() {
  const ticket = ++rendering;
  const hasKey = Boolean(sessionStorage.getItem(KEY));
  nav.hidden = !hasKey;
  let view;
  try {
    if (!hasKey) {
      view = keyPage();
    } else {
      const hash = location.hash;
      const found = routes.find(([pattern]) => pattern.test(hash));
      view = found
        ? await found[1](...hash.match(found[0]).slice(1).map(decodeURIComponent))
        : notFound('No such page.');
    }
  } catch (error) {
    if (error.handled) return;
    if (error.status === 403) view = notAllowed(error);
    else view = notFound(error.status === 404 ? 'No such webhook: it may have been deleted.' : describe(error));
  }
  if (ticket !== rendering) return;
  main.replaceChildren(view);
  const focus = view.querySelector('[autofocus]') || view.querySelector('h1');
  focus?.focus();
  document.title = `${view.querySelector('h1')?.textContent || 'Herald'} · Herald console`;
}

const go = (hash) => {
  if (location.hash === hash) route();
  else location.hash = hash;
};

function page(title, ...children) {
  return h('section', { class: 'page' }, h('h1', { tabindex: '-1' }, title), ...children);
}

function notFound(message) {
  return page('Not found', h('p', {}, message), h('p', {}, h('a', { href: '#/' }, 'Back to the webhooks')));
}

/** A 403: the key works but lacks the scope this page needs. */
function notAllowed(error) {
  return page('Not allowed with this key',
    h('p', {}, error.problem?.detail || describe(error)),
    h('p', { class: 'hint' }, 'Keys hold scopes: ingest (post events), read (view webhooks and deliveries), manage (change them, secrets) and admin (keys). Open the console with a key that holds the one needed.'),
    h('p', {}, h('a', { href: '#/' }, 'Back to the webhooks')));
}

// ---------------------------------------------------------------------------------------------
// Form fields: every input has a label, a hint when useful, and a slot for the API's error on
// it. `data-field` names the JSON path the API uses in its field errors.

function field({ label, field: name, input, hint }) {
  const id = input.id || nextId('f');
  input.id = id;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('p', { class: 'error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', [hintEl?.id, errorEl.id].filter(Boolean).join(' '));
  return h('div', { class: 'field', 'data-field': name }, h('label', { for: id }, label), input, hintEl, errorEl);
}

function checkbox({ label, name, value, checked, hint, role }) {
  const id = nextId('c');
  const input = h('input', { type: 'checkbox', id, name, value, checked, role });
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'check' }, input, h('label', { for: id }, label, hintEl ? h('br') : null, hintEl));
}

/** A fieldset whose legend labels a group, with an error slot for the group's own path. */
function group(legend, name, hint, ...children) {
  const errorEl = h('p', { class: 'error', id: nextId('e'), hidden: true });
  return h('fieldset', { 'data-field': name }, h('legend', {}, legend),
    hint ? h('p', { class: 'hint' }, hint) : null, errorEl, ...children);
}

function clearErrors(form) {
  for (const el of form.querySelectorAll('.error')) {
    el.hidden = true;
    el.textContent = '';
  }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  const summary = form.querySelector('.summary');
  summary.hidden = true;
  summary.replaceChildren();
}

/** `headers[1].key` → `headers[1]` → `headers`: the nearest path the form shows. */
function parentField(name) {
  const up = name.replace(/(\[\d+\]|\.[^.[\]]+)$/, '');
  return up === name ? '' : up;
}

/** Puts a problem's field errors next to the fields they name; the rest go in the summary. */
function showProblem(form, error) {
  clearErrors(form);
  const problem = error.problem || {};
  const summary = form.querySelector('.summary');
  const loose = [];
  let first = null;
  for (const fe of problem.errors || []) {
    let name = fe.field || '';
    let holder = null;
    while (name && !holder) {
      holder = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
      if (!holder) name = parentField(name);
    }
    if (!holder) {
      loose.push(fe);
      continue;
    }
    const slot = holder.querySelector(':scope > .error');
    const message = name === fe.field ? fe.message : `${fe.field}: ${fe.message}`;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    slot.hidden = false;
    const input = holder.matches('fieldset') ? holder.querySelector('input, select, textarea') : holder.querySelector(':scope > input, :scope > select, :scope > textarea');
    if (input && !holder.matches('fieldset')) input.setAttribute('aria-invalid', 'true');
    first ??= input;
  }
  summary.append(h('p', {}, h('strong', {}, describe(error))));
  if (loose.length) summary.append(h('ul', {}, loose.map((fe) => h('li', {}, `${fe.field}: ${fe.message}`))));
  summary.hidden = false;
  (first || summary).focus?.();
}

// ---------------------------------------------------------------------------------------------
// Pages

function keyPage() {
  const input = h('input', { type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', autofocus: true });
  const keyField = field({
    label: 'Tenant API key',
    field: 'key',
    input,
    hint: 'Kept in this browser tab only (sessionStorage) and sent as Authorization: Bearer to this API.',
  });
  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1', hidden: true });
  const form = h('form', { novalidate: true, class: 'narrow' }, summary, keyField,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Open the console')));
  const notice = keyNotice;
  keyNotice = '';
  const slot = keyField.querySelector('.error');
  if (notice) {
    slot.textContent = notice;
    slot.hidden = false;
    input.setAttribute('aria-invalid', 'true');
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    if (!key) {
      slot.textContent = 'Enter your tenant key.';
      slot.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    sessionStorage.setItem(KEY, key);
    catalog = null;
    try {
      await loadCatalog();
      route();
    } catch (error) {
      if (!error.handled) showProblem(form, error);
    }
  });
  return page('Herald console',
    h('p', {}, 'Manage the webhooks of your tenant: subscriptions, filters, test sends, secrets and the delivery log.'),
    form);
}

async function listPage() {
  const listing = await api('GET', `v1/webhooks?limit=${PAGE}`);
  const body = h('tbody');
  const table = h('table', { class: 'webhooks' },
    h('caption', { class: 'sr-only' }, 'Your webhooks'),
    h('thead', {}, h('tr', {}, ['Name', 'URL', 'Kind', 'Events', 'Enabled', 'Last delivery'].map((c) => h('th', { scope: 'col' }, c)))),
    body);
  const more = h('button', { type: 'button', hidden: !listing.next_cursor }, 'Load more');
  let cursor = listing.next_cursor;
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const next = await api('GET', `v1/webhooks?limit=${PAGE}&cursor=${encodeURIComponent(cursor)}`);
      next.data.forEach((w) => body.append(webhookRow(w)));
      cursor = next.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      failed(error);
    } finally {
      more.disabled = false;
    }
  });
  listing.data.forEach((w) => body.append(webhookRow(w)));
  const empty = h('div', { class: 'empty' },
    h('p', {}, 'No webhooks yet.'),
    h('p', {}, h('a', { href: '#/new', class: 'button primary' }, 'Create the first one')));
  return page('Webhooks',
    h('div', { class: 'toolbar' }, h('a', { href: '#/new', class: 'button primary' }, 'New webhook')),
    listing.data.length ? h('div', { class: 'table-wrap' }, table) : empty,
    more);
}

function webhookRow(webhook) {
  const last = h('span', { class: 'muted' }, '…');
  api('GET', path('v1/webhooks/', webhook.id, '/deliveries?limit=1'))
    .then((page) => {
      const d = page.data[0];
      const attempt = d?.attempts.at(-1);
      const outcome = attempt?.status_code ? ` HTTP ${attempt.status_code}` : attempt?.error ? ` ${attempt.error}` : '';
      last.replaceChildren(d
        ? h('a', { href: `#/webhooks/${encodeURIComponent(webhook.id)}/deliveries` }, badge(d.status), outcome, time(d.created_at))
        : h('span', { class: 'muted' }, 'none yet'));
    })
    .catch(() => last.replaceChildren(h('span', { class: 'muted' }, 'unavailable')));
  return h('tr', { 'data-id': webhook.id },
    h('td', { 'data-label': 'Name' }, h('a', { href: `#/webhooks/${encodeURIComponent(webhook.id)}`, class: 'name' }, webhook.name),
      webhook.disabled_reason ? h('p', { class: 'hint' }, webhook.disabled_reason) : null),
    h('td', { 'data-label': 'URL', class: 'url' }, webhook.url),
    h('td', { 'data-label': 'Kind' }, webhook.kind),
    h('td', { 'data-label': 'Events' }, webhook.events.join(', ')),
    h('td', { 'data-label': 'Enabled' }, enabledSwitch(webhook)),
    h('td', { 'data-label': 'Last delivery', class: 'last' }, last));
}

/** PATCH {"enabled"} from a switch; the switch goes back if the API refuses. */
function enabledSwitch(webhook, onChange) {
  const input = h('input', { type: 'checkbox', role: 'switch', checked: webhook.enabled, class: 'switch' });
  const id = nextId('s');
  input.id = id;
  const label = h('label', { for: id, class: 'sr-only' }, `Enabled: ${webhook.name}`);
  input.addEventListener('change', async () => {
    const enabled = input.checked;
    input.disabled = true;
    try {
      const updated = await api('PATCH', path('v1/webhooks/', webhook.id), { enabled });
      toast(`${updated.name} ${updated.enabled ? 'enabled' : 'disabled'}`);
      onChange?.(updated);
    } catch (error) {
      input.checked = !enabled;
      failed(error);
    } finally {
      input.disabled = false;
    }
  });
  return h('span', { class: 'switch-wrap' }, input, label);
}

// --- create / edit

async function formPage(id) {
  const [types, known, webhook] = await Promise.all([loadCatalog(), loadKinds(), id ? api('GET', path('v1/webhooks/', id)) : null]);
  const w = webhook || { name: '', description: '', url: '', kind: 'standard', events: [], filters: {}, headers: [], include_result: false, enabled: true };
  const filters = w.filters || {};
  const object = filters.object || {};

  const name = h('input', { type: 'text', name: 'name', value: webhook ? w.name : '', autocomplete: 'off' });
  const url = h('input', { type: 'url', name: 'url', value: w.url, required: true, autocomplete: 'off', placeholder: 'https://hooks.example.com/…', autofocus: true });
  const kindNames = known.includes(w.kind) ? known : [...known, w.kind];
  const kind = h('select', { name: 'kind' }, kindNames.map((value) => h('option', { value, selected: w.kind === value }, KIND_LABELS[value] || value)));
  const description = h('textarea', { name: 'description', rows: '2', value: w.description });

  const events = eventsFieldset(types, w.events);

  const projects = h('textarea', { name: 'project_names', rows: '3', value: (filters.project_names || []).join('\n'), autocomplete: 'off', placeholder: 'prod-*\nLight detection' });
  const environments = group('Environment types', 'filters.environment_types', 'Any of those checked; none checked: any environment.',
    h('div', { class: 'checks inline' }, ENVIRONMENTS.map((e) => checkbox({ label: e, name: 'environment_types', value: e, checked: (filters.environment_types || []).includes(e) }))));
  const objectKind = h('input', { type: 'text', name: 'object_kind', value: object.kind || '', placeholder: 'pipeline' });
  const objectName = h('input', { type: 'text', name: 'object_name', value: object.name || '', placeholder: 'pipeline-1' });
  const objectVersion = h('input', { type: 'text', name: 'object_version', value: object.version || '', placeholder: 'v1' });

  const rows = h('div', { class: 'header-rows' });
  const renumber = () => [...rows.children].forEach((row, i) => {
    row.dataset.field = `headers[${i}]`;
    row.querySelector('.hk').dataset.field = `headers[${i}].key`;
    row.querySelector('.hv').dataset.field = `headers[${i}].value`;
    row.querySelector('.remove').setAttribute('aria-label', `Remove header ${i + 1}`);
  });
  const addRow = (header) => {
    rows.append(headerRow(header, () => renumber()));
    renumber();
  };
  (w.headers || []).forEach(addRow);
  const addHeader = h('button', { type: 'button' }, 'Add header');
  addHeader.addEventListener('click', () => {
    addRow({ key: '', value: '', protected: false });
    rows.lastElementChild.querySelector('input').focus();
  });

  const includeResult = checkbox({ label: 'Include the result', name: 'include_result', checked: w.include_result, role: 'switch', hint: "Send the event's result (up to 16 KiB) with each delivery." });
  const enabled = checkbox({ label: 'Enabled', name: 'enabled', checked: w.enabled, role: 'switch', hint: 'A disabled webhook receives nothing.' });

  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, webhook ? 'Save changes' : 'Create webhook');
  const form = h('form', { novalidate: true, class: 'webhook-form', 'aria-label': webhook ? `Edit ${w.name}` : 'New webhook' },
    summary,
    h('fieldset', {}, h('legend', {}, 'Endpoint'),
      field({ label: 'URL', field: 'url', input: url, hint: 'http or https, without credentials.' }),
      field({ label: 'Kind', field: 'kind', input: kind, hint: 'The shape of each delivery: Herald JSON, a chat message (Slack, Discord, Teams), or the payload a Determined, UbiOps or Qovery receiver already understands. Every kind is signed.' }),
      field({ label: 'Name', field: 'name', input: name, hint: "Optional: the URL's host when empty." }),
      field({ label: 'Description', field: 'description', input: description })),
    events,
    h('fieldset', { 'data-field': 'filters' }, h('legend', {}, 'Filters'),
      h('p', { class: 'hint' }, 'Every filter given must match; within a list any entry may. An event without the filtered attribute does not match.'),
      h('p', { class: 'error', hidden: true }),
      field({ label: 'Project names', field: 'filters.project_names', input: projects, hint: 'One per line. * and ? are wildcards; case does not matter.' }),
      environments,
      h('fieldset', { 'data-field': 'filters.object', class: 'object' }, h('legend', {}, 'Object'),
        h('p', { class: 'error', hidden: true }),
        h('div', { class: 'row' },
          field({ label: 'Object kind', field: 'filters.object.kind', input: objectKind }),
          field({ label: 'Object name', field: 'filters.object.name', input: objectName }),
          field({ label: 'Object version', field: 'filters.object.version', input: objectVersion })))),
    group('Headers', 'headers', 'Sent with every delivery. A protected value is write-only: it is never shown again.', rows, addHeader),
    h('fieldset', {}, h('legend', {}, 'Options'), h('div', { class: 'checks' }, includeResult, enabled)),
    h('div', { class: 'actions' }, submit, h('a', { href: webhook ? `#/webhooks/${encodeURIComponent(w.id)}` : '#/', class: 'button' }, 'Cancel')));

  const collect = () => {
    const list = (t) => t.value.split(/\n/).map((s) => s.trim()).filter(Boolean);
    const f = {};
    const p = list(projects);
    if (p.length) f.project_names = p;
    const envs = [...environments.querySelectorAll('input:checked')].map((i) => i.value);
    if (envs.length) f.environment_types = envs;
    const o = {};
    if (objectKind.value.trim()) o.kind = objectKind.value.trim();
    if (objectName.value.trim()) o.name = objectName.value.trim();
    if (objectVersion.value.trim()) o.version = objectVersion.value.trim();
    if (Object.keys(o).length) f.object = o;
    const body = {
      url: url.value.trim(),
      kind: kind.value,
      events: [...events.querySelectorAll('input[name=events]:checked')].map((i) => i.value),
      filters: f,
      headers: [...rows.children].map(readHeader),
      include_result: includeResult.querySelector('input').checked,
      enabled: enabled.querySelector('input').checked,
      description: description.value,
    };
    if (name.value.trim()) body.name = name.value.trim();
    return body;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    submit.disabled = true;
    try {
      const saved = webhook
        ? await api('PUT', path('v1/webhooks/', w.id), collect())
        : await api('POST', 'v1/webhooks', collect());
      toast(webhook ? `Saved ${saved.name}` : `Created ${saved.name}`);
      go(`#/webhooks/${encodeURIComponent(saved.id)}`);
    } catch (error) {
      if (!error.handled) showProblem(form, error);
    } finally {
      submit.disabled = false;
    }
  });

  const tester = testPanel(types, 'Send test', 'Sends a sample event to the URL above with this configuration, unsaved. Protected header values must be typed in to be sent.',
    async (eventType) => {
      const body = collect();
      if (eventType) body.event_type = eventType;
      clearErrors(form);
      try {
        return await api('POST', 'v1/webhooks/test', body);
      } catch (error) {
        if (!error.handled && error.status === 422) showProblem(form, error);
        throw error;
      }
    });

  return page(webhook ? `Edit ${w.name}` : 'New webhook', form, tester);
}

function eventsFieldset(types, selected) {
  const chosen = new Set(selected);
  const patterns = new Map(types.patterns.map((p) => [p.pattern, p.description]));
  const box = (value, description, label = value) => {
    chosen.delete(value);
    return checkbox({ label, name: 'events', value, checked: selected.includes(value), hint: description });
  };
  const resources = [...new Set(types.data.map((t) => t.resource))];
  const groups = resources.map((resource) => {
    const composites = [...patterns.keys()].filter((p) => p.startsWith(`${resource}.`));
    return h('fieldset', { class: 'resource' }, h('legend', {}, resource),
      h('div', { class: 'checks' },
        composites.map((p) => box(p, patterns.get(p))),
        types.data.filter((t) => t.resource === resource).map((t) => box(t.type, t.description))));
  });
  const all = box('*', patterns.get('*') || 'Every event type.', '* (every event)');
  // A subscription the catalog no longer lists stays visible, so saving keeps or drops it knowingly.
  const unknown = [...chosen].map((p) => box(p, 'Not in the catalog.'));
  return group('Events', 'events',
    'At least one. Composites cover several types: <resource>.done is any terminal status, <resource>.* every status, requests.finished a completed or failed request.',
    h('div', { class: 'checks' }, all, unknown), h('div', { class: 'resources' }, groups));
}

function headerRow(header, onRemove) {
  const stored = header.protected && header.value == null && header.key !== '';
  const keyInput = h('input', { type: 'text', value: header.key, autocomplete: 'off', spellcheck: 'false', class: 'key', placeholder: 'Authorization' });
  const valueInput = h('input', {
    type: header.protected ? 'password' : 'text',
    value: header.protected ? '' : header.value || '',
    autocomplete: 'new-password',
    spellcheck: 'false',
    class: 'value',
    placeholder: stored ? '•••' : '',
  });
  const protect = checkbox({ label: 'Protected', checked: header.protected, role: 'switch' });
  const protectInput = protect.querySelector('input');
  protectInput.classList.add('protected');
  protectInput.addEventListener('change', () => { valueInput.type = protectInput.checked ? 'password' : 'text'; });
  const remove = h('button', { type: 'button', class: 'remove link' }, 'Remove');
  const keyField = field({ label: 'Header name', field: '', input: keyInput });
  const valueField = field({ label: 'Value', field: '', input: valueInput, hint: stored ? 'Stored and hidden: leave empty to keep it.' : null });
  keyField.classList.add('hk');
  valueField.classList.add('hv');
  const row = h('div', { class: 'header-row', 'data-stored': stored ? '1' : null },
    h('p', { class: 'error', hidden: true }),
    h('div', { class: 'row' }, keyField, valueField, h('div', { class: 'field hp' }, protect), remove));
  remove.addEventListener('click', () => {
    row.remove();
    onRemove();
  });
  return row;
}

function readHeader(row) {
  const key = row.querySelector('input.key').value.trim();
  const value = row.querySelector('input.value').value;
  const isProtected = row.querySelector('input.protected').checked;
  // A stored protected value left empty is kept by the API when `value` is absent.
  if (isProtected && row.dataset.stored && value === '') return { key, protected: true };
  return { key, value, protected: isProtected };
}

/** "Send test": an event type to pick (default: the first the subscriptions cover), the button,
 *  and what the receiver did. */
function testPanel(types, title, hint, send) {
  const select = h('select', {}, h('option', { value: '' }, 'The first type the events cover'),
    types.data.map((t) => h('option', { value: t.type }, t.type)));
  const button = h('button', { type: 'button', class: 'send-test' }, 'Send test');
  const result = h('div', { class: 'test-result', role: 'status', 'aria-live': 'polite' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    result.replaceChildren(h('p', { class: 'muted' }, 'Sending…'));
    try {
      showTest(result, await send(select.value));
    } catch (error) {
      result.replaceChildren(h('p', { class: 'error-text' }, describe(error)));
    } finally {
      button.disabled = false;
    }
  });
  return h('section', { class: 'card test' }, h('h2', {}, title), h('p', { class: 'hint' }, hint),
    h('div', { class: 'row end' }, field({ label: 'Event type', field: 'event_type', input: select }), button), result);
}

function showTest(box, r) {
  box.replaceChildren(
    h('p', { class: r.delivered ? 'outcome ok' : 'outcome fail' }, r.delivered ? 'Delivered' : 'Not delivered'),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Event type'), h('dd', {}, r.event_type),
      h('dt', {}, 'Status code'), h('dd', { class: 'status-code' }, r.status_code ?? '—'),
      h('dt', {}, 'Duration'), h('dd', { class: 'duration' }, `${r.duration_ms} ms`),
      r.error ? [h('dt', {}, 'Error'), h('dd', { class: 'error-text' }, r.error)] : null),
    h('p', { class: 'label' }, 'Response'),
    r.response_body ? h('pre', { class: 'response', tabindex: '0' }, r.response_body) : h('p', { class: 'muted' }, 'empty'));
}

// --- one webhook

async function detailPage(id) {
  const [webhook, types, stats] = await Promise.all([
    api('GET', path('v1/webhooks/', id)), loadCatalog(), api('GET', path('v1/webhooks/', id, '/stats?window=24h'))]);
  const w = webhook;
  const href = `#/webhooks/${encodeURIComponent(w.id)}`;
  const filters = w.filters || {};
  const object = filters.object ? Object.entries(filters.object).filter(([, v]) => v).map(([k, v]) => `${k} = ${v}`).join(', ') : '';
  const state = h('p', { class: 'state' });
  const showState = (v) => state.replaceChildren(badge(v.enabled ? 'enabled' : 'disabled'), v.disabled_reason ? ` ${v.disabled_reason}` : '');
  showState(w);

  const facts = h('dl', { class: 'facts' },
    h('dt', {}, 'URL'), h('dd', { class: 'url' }, w.url),
    h('dt', {}, 'Kind'), h('dd', {}, w.kind),
    h('dt', {}, 'Events'), h('dd', {}, w.events.join(', ')),
    h('dt', {}, 'Project names'), h('dd', {}, (filters.project_names || []).join(', ') || 'any'),
    h('dt', {}, 'Environment types'), h('dd', {}, (filters.environment_types || []).join(', ') || 'any'),
    h('dt', {}, 'Object'), h('dd', {}, object || 'any'),
    h('dt', {}, 'Headers'), h('dd', {}, w.headers.length
      ? h('ul', { class: 'plain' }, w.headers.map((x) => h('li', {}, h('code', {}, x.key), ': ', x.protected ? h('span', { class: 'protected', title: 'protected: write-only' }, '•••') : x.value)))
      : 'none'),
    h('dt', {}, 'Include result'), h('dd', {}, w.include_result ? 'yes' : 'no'),
    w.description ? [h('dt', {}, 'Description'), h('dd', {}, w.description)] : null,
    h('dt', {}, 'Created'), h('dd', {}, time(w.created_at)),
    h('dt', {}, 'Updated'), h('dd', {}, time(w.updated_at)));

  const tester = testPanel(types, 'Send test', 'Sends a sample event to this saved webhook, signed with its secret. Tests are not kept in the delivery log.',
    (eventType) => api('POST', path('v1/webhooks/', w.id, '/test'), eventType ? { event_type: eventType } : {}));

  const del = h('button', { type: 'button', class: 'danger' }, 'Delete webhook…');
  del.addEventListener('click', async () => {
    const sure = await confirmDialog(`Delete “${w.name}”?`, `The webhook “${w.name}” (${w.url}) will be deleted. This cannot be undone. Its delivery log is not deleted: each entry, response bodies included, stays readable by its id until it expires 30 days after it was made.`, `Delete ${w.name}`);
    if (!sure) return;
    try {
      await api('DELETE', path('v1/webhooks/', w.id));
      toast(`Deleted ${w.name}`);
      go('#/');
    } catch (error) {
      failed(error);
    }
  });

  return page(w.name,
    h('p', { class: 'muted' }, h('code', {}, w.id)),
    w.enabled ? (w.failing_since ? failingBanner(w) : null) : disabledBanner(w, route),
    state,
    h('div', { class: 'toolbar' },
      h('a', { href: `${href}/edit`, class: 'button primary' }, 'Edit'),
      h('a', { href: `${href}/deliveries`, class: 'button' }, 'Delivery log'),
      h('span', { class: 'switch-line' }, enabledSwitch(w, showState), h('span', { 'aria-hidden': 'true' }, 'Enabled'))),
    healthPanel(w, stats),
    h('section', { class: 'card' }, h('h2', {}, 'Configuration'), facts),
    tester,
    secretPanel(w),
    h('section', { class: 'card danger-zone' }, h('h2', {}, 'Delete'), h('p', { class: 'hint' }, 'Deliveries to it stop at once.'), del));
}

// --- health

const SVG = 'http://www.w3.org/2000/svg';

/** An SVG element: `attrs` are attributes; no inline style (the page's CSP forbids it), colours come from classes. */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  return add(el, children);
}

/** One line of a window's totals. */
function statsText(stats) {
  const t = stats.totals;
  const attempts = t.succeeded + t.retried + t.failed;
  const rate = stats.success_rate === null ? 'no attempts' : `${(stats.success_rate * 100).toFixed(1)} % succeeded`;
  return `${attempts} attempt${attempts === 1 ? '' : 's'} in ${stats.window}: ${rate} (${t.succeeded} succeeded, ${t.retried} retried, ${t.failed} failed, ${t.held} held)`;
}

/** Attempts per hour as stacked bars: succeeded at the foot, failed ones above, held on top. */
function healthChart(stats) {
  const width = 480;
  const height = 80;
  const step = width / stats.hours.length;
  const peak = Math.max(1, ...stats.hours.map((x) => x.succeeded + x.retried + x.failed + x.held));
  const bars = stats.hours.map((x, i) => {
    let top = height;
    const part = (kind, n) => {
      const tall = (n * height) / peak;
      top -= tall;
      return n ? svg('rect', { class: `bar ${kind}`, x: (i * step).toFixed(2), y: top.toFixed(2), width: Math.max(step - 1, 0.5).toFixed(2), height: tall.toFixed(2) }) : null;
    };
    const label = `${time(x.hour)}: ${x.succeeded} succeeded, ${x.retried} retried, ${x.failed} failed, ${x.held} held`;
    return svg('g', { class: 'hour' }, svg('title', {}, label),
      part('ok', x.succeeded), part('bad', x.retried + x.failed), part('held', x.held));
  });
  return svg('svg', { class: 'chart', viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', role: 'img',
    'aria-label': `Attempts per hour, ${statsText(stats)}` },
  svg('line', { class: 'axis', x1: 0, y1: height, x2: width, y2: height }), bars);
}

/** The webhook's health over a window, as a chart and a line, with a choice of window. */
function healthPanel(w, first) {
  const line = h('p', { class: 'rate', 'aria-live': 'polite' }, statsText(first));
  const chart = h('div', { class: 'chart-box' }, healthChart(first));
  const windowChoice = h('select', { name: 'window', 'aria-label': 'Health window' },
    h('option', { value: '24h' }, 'Last 24 hours'), h('option', { value: '7d' }, 'Last 7 days'));
  windowChoice.addEventListener('change', async () => {
    try {
      const stats = await api('GET', path('v1/webhooks/', w.id, `/stats?window=${windowChoice.value}`));
      line.textContent = statsText(stats);
      chart.replaceChildren(healthChart(stats));
    } catch (error) {
      failed(error);
    }
  });
  return h('section', { class: 'card health' },
    h('div', { class: 'row end' }, h('h2', {}, 'Health'), windowChoice),
    chart, line,
    h('p', { class: 'hint' }, 'Green: succeeded. Red: failed (retried or for good). Grey: held while disabled.'));
}

/** A webhook whose every attempt fails since a time: the banner says since when and offers the recovery of what failed. */
function failingBanner(w) {
  return h('div', { class: 'banner', role: 'alert' },
    h('p', {}, h('strong', {}, 'This webhook is failing'), `: every attempt has failed since ${time(w.failing_since)}. `,
      'Once the endpoint works again, recover what failed from the delivery log.'),
    h('a', { href: `#/webhooks/${encodeURIComponent(w.id)}/deliveries`, class: 'button' }, 'Recover failed deliveries'));
}

function secretPanel(w) {
  const hidden = '••••••••••••••••';
  const value = h('code', { class: 'secret', id: 'secret-value' }, hidden);
  let secret = null;
  const reveal = h('button', { type: 'button', 'aria-controls': 'secret-value' }, 'Reveal');
  const copy = h('button', { type: 'button' }, 'Copy');
  const rotate = h('button', { type: 'button', class: 'danger' }, 'Rotate…');
  const show = (s) => {
    secret = s;
    value.textContent = s;
    reveal.textContent = 'Hide';
  };
  const fetchSecret = async () => (await api('GET', path('v1/webhooks/', w.id, '/secret'))).secret;
  reveal.addEventListener('click', async () => {
    if (secret) {
      secret = null;
      value.textContent = hidden;
      reveal.textContent = 'Reveal';
      return;
    }
    try {
      show(await fetchSecret());
    } catch (error) {
      failed(error);
    }
  });
  copy.addEventListener('click', async () => {
    try {
      const s = secret || await fetchSecret();
      await navigator.clipboard.writeText(s);
      toast('Secret copied to the clipboard');
    } catch (error) {
      if (error instanceof ApiError) failed(error);
      else toast('The browser refused the clipboard: reveal the secret and copy it by hand.', 'error');
    }
  });
  rotate.addEventListener('click', async () => {
    const sure = await confirmDialog(`Rotate the secret of “${w.name}”?`,
      'A new secret signs every delivery from now on. The current one keeps signing beside it for 24 hours, so receivers can switch over.',
      'Rotate secret');
    if (!sure) return;
    try {
      show((await api('POST', path('v1/webhooks/', w.id, '/secret/rotate'))).secret);
      toast('Secret rotated');
    } catch (error) {
      failed(error);
    }
  });
  return h('section', { class: 'card' }, h('h2', {}, 'Signing secret'),
    h('p', { class: 'hint' }, 'Receivers check each delivery’s webhook-signature with it (Standard Webhooks).'),
    h('p', { class: 'secret-line' }, value),
    h('div', { class: 'toolbar' }, reveal, copy, rotate));
}

// --- delivery log

const DELIVERY_STATUSES = ['failed', 'held', 'retrying', 'pending', 'succeeded'];

async function deliveriesPage(id) {
  const webhook = await api('GET', path('v1/webhooks/', id));
  const list = h('ol', { class: 'deliveries' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const status = h('p', { class: 'muted', role: 'status' });
  const only = h('select', { name: 'only', 'aria-label': 'Filter the log' },
    h('option', { value: '' }, 'Every status'),
    DELIVERY_STATUSES.map((s) => h('option', { value: s }, s)));
  let cursor = null;
  const load = async (reset) => {
    let query = reset || !cursor ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    if (only.value) query += `&status=${encodeURIComponent(only.value)}`;
    const listing = await api('GET', path('v1/webhooks/', id, `/deliveries?limit=${PAGE}${query}`));
    if (reset) list.replaceChildren();
    listing.data.forEach((d) => list.append(deliveryItem(d, () => load(true).catch(failed))));
    cursor = listing.next_cursor;
    more.hidden = !cursor;
    const shown = list.children.length;
    // A filtered page reads a bounded part of the log, so it may come back short with more to read.
    status.textContent = shown
      ? `${shown} ${only.value ? `${only.value} ` : ''}deliver${shown === 1 ? 'y' : 'ies'}, newest first.`
      : only.value
        ? `No ${only.value} deliveries${cursor ? ' among the newest; load more to look further back' : ''}.`
        : 'No deliveries yet. They appear when an event matching this webhook is posted (test sends are not logged).';
  };
  only.addEventListener('change', () => load(true).catch(failed));
  await load(true);
  const refresh = h('button', { type: 'button', class: 'refresh' }, 'Refresh');
  refresh.addEventListener('click', () => load(true).catch(failed));
  more.addEventListener('click', () => load(false).catch(failed));
  return page(`Deliveries: ${webhook.name}`,
    webhook.enabled ? null : disabledBanner(webhook, route),
    h('div', { class: 'toolbar' }, h('a', { href: `#/webhooks/${encodeURIComponent(id)}`, class: 'button' }, 'Back to the webhook'), refresh,
      only),
    recoverForm(webhook, () => load(true)),
    status, list, more);
}

/** What a recovery job came to, in one line. */
function recoveryText(job) {
  const left = job.state === 'running' ? '; the rest follows within minutes' : '';
  return `Recovery ${job.state}: ${job.queued} queued of ${job.matched} matched${left}`;
}

/** A disabled webhook holds what matches it: the banner says why it is disabled and enables it with the recovery of what it held. */
function disabledBanner(webhook, reload) {
  const enable = h('button', { type: 'button' }, 'Enable and recover held deliveries');
  enable.addEventListener('click', async () => {
    enable.disabled = true;
    try {
      const answer = await api('PATCH', path('v1/webhooks/', webhook.id), { enabled: true, recover: true });
      toast(recoveryText(answer.recovery));
      await reload();
    } catch (error) {
      failed(error);
      enable.disabled = false;
    }
  });
  return h('div', { class: 'banner', role: 'alert' },
    h('p', {}, h('strong', {}, 'This webhook is disabled'), webhook.disabled_reason ? `: ${webhook.disabled_reason}` : '',
      '. Events that match it are held, not sent.'), enable);
}

/** Recovers a window of the log: a new attempt series for each delivery in it, by status. */
function recoverForm(webhook, reload) {
  const dayAgo = new Date(Date.now() - 86_400_000);
  const local = new Date(dayAgo.getTime() - dayAgo.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const since = h('input', { type: 'datetime-local', name: 'since', value: local, required: true });
  const status = h('select', { name: 'status' },
    h('option', { value: '' }, 'Every delivery not succeeded'),
    DELIVERY_STATUSES.map((s) => h('option', { value: s }, s)));
  const submit = h('button', { type: 'submit' }, 'Recover');
  const form = h('form', { class: 'recover card', 'aria-label': 'Recover deliveries' },
    h('div', { class: 'summary', role: 'alert', tabindex: '-1', hidden: true }),
    field({ label: 'Accepted since', field: 'since', input: since, hint: 'Your local time; the window ends now.' }),
    field({ label: 'Status', field: 'status', input: status }),
    submit);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const body = { since: new Date(since.value).toISOString().replace(/\.\d{3}Z$/, 'Z') };
      if (status.value) body.status = status.value;
      const job = await api('POST', path('v1/webhooks/', webhook.id, '/recover'), body);
      toast(recoveryText(job));
      setTimeout(() => reload().catch(failed), 700);
    } catch (error) {
      if (error.status === 422) showProblem(form, error);
      else failed(error);
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function deliveryItem(d, reload) {
  const redeliver = h('button', { type: 'button', class: 'redeliver', 'aria-label': `Redeliver ${d.event_type} (${d.event_id})` }, 'Redeliver');
  redeliver.addEventListener('click', async () => {
    redeliver.disabled = true;
    try {
      await api('POST', path('v1/deliveries/', d.id, '/redeliver'));
      toast('Redelivery queued');
      setTimeout(reload, 700);
    } catch (error) {
      failed(error);
      redeliver.disabled = false;
    }
  });
  const attempts = h('table', { class: 'attempts' },
    h('caption', {}, `${d.attempts.length} attempt${d.attempts.length === 1 ? '' : 's'}`),
    h('thead', {}, h('tr', {}, ['#', 'At', 'Status', 'Duration', 'Error / response'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, d.attempts.map((a, i) => h('tr', { class: 'attempt' },
      h('td', { 'data-label': '#' }, String(i + 1)),
      h('td', { 'data-label': 'At' }, time(a.at)),
      h('td', { 'data-label': 'Status', class: 'status-code' }, a.status_code ?? '—'),
      h('td', { 'data-label': 'Duration' }, `${a.duration_ms} ms`),
      h('td', { 'data-label': 'Error / response' },
        a.error ? h('span', { class: 'error-text' }, a.error) : null,
        a.response_body ? h('details', {}, h('summary', {}, 'Response'), h('pre', { class: 'response' }, a.response_body)) : null)))));
  return h('li', { class: 'delivery card', 'data-id': d.id, 'data-status': d.status },
    h('div', { class: 'delivery-head' },
      h('strong', { class: 'event-type' }, d.event_type), ' ', badge(d.status), ' ', time(d.created_at)),
    h('p', { class: 'muted' }, 'event ', h('code', {}, d.event_id), ' · delivery ', h('code', {}, d.id),
      d.next_attempt_at ? [' · next attempt ', time(d.next_attempt_at)] : null),
    attempts,
    h('div', { class: 'toolbar' }, redeliver));
}

// --- keys

const SCOPES = [
  ['ingest', 'Post events: what a platform\u2019s producers hold.'],
  ['read', 'View webhooks, deliveries and the catalog.'],
  ['manage', 'Create, change, test and delete webhooks; redeliver; read and rotate secrets.'],
  ['admin', 'List, create and revoke keys (only with scopes this key holds itself).'],
];

async function keysPage() {
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  let cursor = null;
  const load = async (reset) => {
    const query = reset || !cursor ? '' : `&cursor=${encodeURIComponent(cursor)}`;
    const listing = await api('GET', `v1/keys?limit=${PAGE}${query}`);
    if (reset) body.replaceChildren();
    listing.data.forEach((k) => body.append(keyRow(k, () => load(true).catch(failed))));
    cursor = listing.next_cursor;
    more.hidden = !cursor;
  };
  await load(true);
  more.addEventListener('click', () => load(false).catch(failed));
  const table = h('table', { class: 'keys' },
    h('caption', { class: 'sr-only' }, 'Your keys'),
    h('thead', {}, h('tr', {}, ['Name', 'Scopes', 'Created', 'Last used', ''].map((c) => h('th', { scope: 'col' }, c)))),
    body);
  return page('API keys',
    h('p', { class: 'hint' }, 'Keys are shown once, when made; this list never holds them. A key can only make or revoke keys within its own scopes.'),
    h('div', { class: 'table-wrap' }, table), more,
    newKeyForm(() => load(true)));
}

function keyRow(k, reload) {
  const label = k.name || k.id;
  const revoke = h('button', { type: 'button', class: 'danger revoke', 'aria-label': `Revoke ${label}` }, 'Revoke…');
  revoke.addEventListener('click', async () => {
    const sure = await confirmDialog(`Revoke “${label}”?`,
      `Requests with the key “${label}” (${k.id}) are refused from now on. This cannot be undone.`, 'Revoke key');
    if (!sure) return;
    try {
      await api('DELETE', path('v1/keys/', k.id));
      toast(`Revoked ${label}`);
      await reload();
    } catch (error) {
      failed(error);
    }
  });
  return h('tr', { 'data-id': k.id },
    h('td', { 'data-label': 'Name', class: 'name' }, k.name || h('span', { class: 'muted' }, '(unnamed)'), h('p', { class: 'hint' }, h('code', {}, k.id))),
    h('td', { 'data-label': 'Scopes', class: 'scopes' }, k.scopes.length ? k.scopes.join(', ') : h('span', { class: 'muted' }, 'none')),
    h('td', { 'data-label': 'Created' }, time(k.created_at)),
    h('td', { 'data-label': 'Last used', class: 'last-used' }, k.last_used || h('span', { class: 'muted' }, 'never')),
    h('td', { 'data-label': '' }, revoke));
}

/** A named key with the scopes checked; the answer's key is shown here once. */
function newKeyForm(reload) {
  const name = h('input', { type: 'text', name: 'key-name', autocomplete: 'off', spellcheck: 'false', required: true });
  const scopes = group('Scopes', 'scopes', 'At least one, and none this key lacks.',
    h('div', { class: 'checks' }, SCOPES.map(([scope, hint]) => checkbox({ label: scope, name: 'scopes', value: scope, hint }))));
  const summary = h('div', { class: 'summary', role: 'alert', tabindex: '-1', hidden: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create key');
  const shown = h('div', { class: 'new-key', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { novalidate: true, class: 'narrow', 'aria-label': 'New key' }, summary,
    field({ label: 'Key name', field: 'name', input: name, hint: 'What the key is for, e.g. “CI producer”.' }),
    scopes,
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    shown.replaceChildren();
    submit.disabled = true;
    try {
      const chosen = [...scopes.querySelectorAll('input:checked')].map((i) => i.value);
      const made = await api('POST', 'v1/keys', { name: name.value.trim(), scopes: chosen });
      showNewKey(shown, made);
      form.reset();
      await reload();
    } catch (error) {
      if (!error.handled) showProblem(form, error);
    } finally {
      submit.disabled = false;
    }
  });
  return h('section', { class: 'card' }, h('h2', {}, 'New key'), form, shown);
}

function showNewKey(box, made) {
  const value = h('code', { class: 'secret', id: 'new-key-value' }, made.key);
  const copy = h('button', { type: 'button' }, 'Copy key');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(made.key);
      toast('Key copied to the clipboard');
    } catch {
      toast('The browser refused the clipboard: select the key and copy it by hand.', 'error');
    }
  });
  box.replaceChildren(
    h('p', { class: 'outcome ok' }, `Created ${made.name || made.id} (${made.scopes.join(', ')})`),
    h('p', {}, 'Copy the key now: it is shown this once and cannot be shown again.'),
    h('p', { class: 'secret-line' }, value),
    h('div', { class: 'toolbar' }, copy));
}

// ---------------------------------------------------------------------------------------------

document.getElementById('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY);
  catalog = null;
  go('#/');
});
window.addEventListener('hashchange', route);
route();
