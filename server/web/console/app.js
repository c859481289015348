// Herald's operator console: a router on location.hash and one render function per page. Every
// read and every action is a GraphQL operation of the public schema (see api.js); live updates
// come from the deliveryUpdated subscription (see live.js).

import { ApiError, gql, token, whenUnauthenticated } from './api.js';
import { h, pretty, replace, time } from './dom.js';
import { subscribe } from './live.js';

const SEVERITIES = ['INFO', 'LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];
const ALERT_TYPES = ['RULE', 'SCHEDULED_RULE', 'POLICY', 'RULE_ERROR', 'SCHEDULED_RULE_ERROR', 'SYSTEM_ERROR'];
const STATES = ['PENDING', 'RETRYING', 'SUCCEEDED', 'FAILED'];

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

// Who is signed in: { tokenName, role } once checked.
let viewer = null;
const isAdmin = () => viewer?.role === 'ADMIN';

// What the current page started (subscriptions, timers); stopped when the page changes.
let cleanups = [];
function onLeave(f) {
  cleanups.push(f);
}

// A message to show on the next page (after a delete, a sign-out).
let flash = null;

// ---------------------------------------------------------------------------------------------
// Routing

const routes = [
  [/^#\/destinations\/new$/, () => destinationForm(null)],
  [/^#\/destinations\/([^/]+)\/edit$/, (id) => destinationForm(id)],
  [/^#\/destinations\/([^/]+)$/, (id) => destinationPage(id)],
  [/^#\/destinations$/, () => destinationsPage()],
  [/^#\/deliveries\/([^/]+)$/, (id) => deliveryPage(id)],
  [/^#\/alerts\/([^/]+)$/, (id) => alertPage(id)],
];

// Bumped on every render: a page whose data arrives after the reader moved on draws nothing.
let generation = 0;
const thisRender = () => {
  const g = generation;
  return () => g === generation;
};

// Renders the page for location.hash, stopping what the previous page started. Refresh and
// "Try again" come here too, so a page never runs two subscriptions.
async function route() {
  generation += 1;
  for (const stop of cleanups) stop();
  cleanups = [];
  if (!token.get()) {
    signInPage();
    return;
  }
  if (!viewer) {
    const ok = await checkToken(token.get());
    if (!ok) return;
  }
  const hash = location.hash || '#/destinations';
  for (const [pattern, render] of routes) {
    const m = hash.match(pattern);
    if (m) {
      render(...m.slice(1).map(decodeURIComponent));
      return;
    }
  }
  page('Not found', h('p', {}, 'There is no such page. ', h('a', { href: '#/destinations' }, 'Go to the destinations.')));
}

window.addEventListener('hashchange', route);
whenUnauthenticated((message) => {
  signOut(`Signed out: the server no longer accepts this token (${message}).`);
});
route();

/** Sets the page's title and content; moves focus to the heading for screen-reader users. */
function page(title, ...content) {
  document.title = `${title} · Herald`;
  const heading = h('h1', { tabindex: '-1' }, title);
  const notice = flash ? h('p', { class: 'notice', role: 'status' }, flash) : null;
  flash = null;
  replace(main, notice, heading, ...content);
  heading.focus({ preventScroll: true });
  return heading;
}

function loading(title) {
  document.title = `${title} · Herald`;
  replace(main, h('p', { class: 'loading', role: 'status', 'aria-busy': 'true' }, `Loading ${title.toLowerCase()}…`));
}

/** An error panel with a way to try again. */
function failed(title, err, retry) {
  page(
    title,
    h('div', { class: 'error', role: 'alert' }, h('p', {}, describe(err)), retry ? h('button', { type: 'button', onclick: retry }, 'Try again') : null),
  );
}

function describe(err) {
  return err instanceof ApiError ? err.message : `Something went wrong: ${err.message ?? err}`;
}

// ---------------------------------------------------------------------------------------------
// Sign in and out

async function checkToken(candidate, messageEl = null) {
  try {
    const data = await gql('{ viewer { tokenName role } }', {}, candidate);
    viewer = data.viewer;
    showWho();
    return true;
  } catch (err) {
    if (err.code === 'UNAUTHENTICATED' || err.status === 401) {
      token.clear();
      viewer = null;
      signInPage(`That token was not accepted: ${err.message}. Check it, or create one with \`herald token create\`.`);
    } else if (messageEl) {
      replace(messageEl, describe(err));
    } else {
      failed('Herald', err, route);
    }
    return false;
  }
}

function showWho() {
  nav.hidden = false;
  who.hidden = false;
  replace(
    who,
    h('span', {}, 'Signed in as ', h('strong', {}, viewer.tokenName), ' ', h('span', { class: `role role-${viewer.role.toLowerCase()}` }, viewer.role)),
    h('button', { type: 'button', class: 'link-button', onclick: () => signOut('Signed out. The token was forgotten by this browser.') }, 'Sign out'),
  );
}

function signOut(message) {
  token.clear();
  viewer = null;
  nav.hidden = true;
  who.hidden = true;
  replace(who);
  for (const stop of cleanups) stop();
  cleanups = [];
  signInPage(null, message);
}

function signInPage(error = null, notice = null) {
  generation += 1;
  nav.hidden = true;
  who.hidden = true;
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, 'aria-describedby': 'token-help' + (error ? ' token-error' : ''), 'aria-invalid': error ? 'true' : null });
  const message = h('p', { id: 'token-error', class: 'field-error', role: 'alert' }, error ?? '');
  const form = h(
    'form',
    { class: 'card narrow', novalidate: true },
    h('label', { for: 'token' }, 'API token'),
    input,
    h('p', { id: 'token-help', class: 'help' }, 'An ADMIN or VIEWER token (hrld_…) from `herald token create`. It is kept in this browser tab only (sessionStorage) and forgotten when you sign out or close the session. The playground uses it too.'),
    message,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const t = input.value.trim();
    if (!t) {
      replace(message, 'Enter an API token.');
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return;
    }
    replace(message, '');
    const button = form.querySelector('button');
    button.disabled = true;
    if (await checkToken(t, message)) {
      token.set(t);
      if (!location.hash || location.hash === '#/') location.hash = '#/destinations';
      else route();
    } else {
      button.disabled = false;
    }
  });
  flash = notice;
  page('Sign in to Herald', form);
  if (!notice) input.focus();
}

// ---------------------------------------------------------------------------------------------
// Destinations

const DESTINATION_ROW = `id displayName url severities alertTypes enabled disabledReason
  deliveryCounts { pending retrying succeeded failed }`;

async function destinationsPage(after = null, shown = []) {
  const still = thisRender();
  loading('Destinations');
  let conn;
  try {
    const data = await gql(
      `query Destinations($after: String) { destinations(first: 100, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { ${DESTINATION_ROW} } } }`,
      { after },
    );
    conn = data.destinations;
  } catch (err) {
    if (still()) failed('Destinations', err, route);
    return;
  }
  if (!still()) return;
  const rows = shown.concat(conn.nodes);
  const add = isAdmin() ? h('button', { type: 'button', class: 'primary', onclick: () => (location.hash = '#/destinations/new') }, 'Add Destination') : null;
  if (rows.length === 0) {
    page(
      'Destinations',
      h(
        'div',
        { class: 'empty' },
        h('p', {}, h('strong', {}, 'No destinations yet.')),
        isAdmin()
          ? [h('p', {}, 'Add the first one: the URL that should receive alerts, which severities and alert types go there, and any headers it needs.'), add]
          : h('p', {}, 'An admin must add one: this VIEWER token can look, not change anything.'),
      ),
    );
    return;
  }
  const failing = rows.filter(isFailing).length;
  page(
    'Destinations',
    h(
      'div',
      { class: 'toolbar' },
      h('p', {}, `${conn.totalCount} destination${conn.totalCount === 1 ? '' : 's'}`, failing ? h('strong', { class: 'bad-text' }, ` · ${failing} failing`) : null),
      add,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'reflow' },
        h('caption', { class: 'visually-hidden' }, 'Destinations with their routing and delivery counts'),
        h('thead', {}, h('tr', {}, ['Name', 'URL', 'Severities', 'Alert types', 'Status', 'Deliveries'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows.map(destinationRow)),
      ),
    ),
    conn.pageInfo.hasNextPage ? h('button', { type: 'button', onclick: () => destinationsPage(conn.pageInfo.endCursor, rows) }, 'Show more') : null,
  );
}

function isFailing(d) {
  return d.deliveryCounts.failed > 0 || Boolean(d.disabledReason);
}

function destinationRow(d) {
  const c = d.deliveryCounts;
  return h(
    'tr',
    { class: isFailing(d) ? 'failing' : '' },
    h('td', { 'data-label': 'Name' }, h('a', { href: `#/destinations/${encodeURIComponent(d.id)}` }, d.displayName)),
    h('td', { 'data-label': 'URL', class: 'url' }, d.url),
    h('td', { 'data-label': 'Severities' }, list(d.severities, 'only alerts that name it')),
    h('td', { 'data-label': 'Alert types' }, list(d.alertTypes, 'none')),
    h('td', { 'data-label': 'Status' }, statusBadge(d)),
    h(
      'td',
      { 'data-label': 'Deliveries' },
      h(
        'ul',
        { class: 'counts' },
        h('li', {}, `Pending ${c.pending}`),
        h('li', {}, `Retrying ${c.retrying}`),
        h('li', {}, `Succeeded ${c.succeeded}`),
        h('li', { class: c.failed > 0 ? 'bad' : '' }, c.failed > 0 ? `⚠ Failed ${c.failed}` : `Failed ${c.failed}`),
      ),
    ),
  );
}

function list(items, whenEmpty) {
  return items.length ? items.join(', ') : h('em', {}, whenEmpty);
}

function statusBadge(d) {
  if (d.enabled) return h('span', { class: 'badge ok' }, 'Enabled');
  if (d.disabledReason) return h('span', { class: 'badge bad', title: d.disabledReason }, '⚠ Auto-disabled');
  return h('span', { class: 'badge off' }, 'Disabled');
}

function stateBadge(state) {
  const kind = { SUCCEEDED: 'ok', FAILED: 'bad', RETRYING: 'warn', PENDING: 'off' }[state] ?? 'off';
  const mark = { SUCCEEDED: '✓ ', FAILED: '✗ ', RETRYING: '↻ ', PENDING: '… ' }[state] ?? '';
  return h('span', { class: `badge ${kind} state` }, mark + state);
}

// ---------------------------------------------------------------------------------------------
// The add/edit form

const DESTINATION_FULL = `id displayName url severities alertTypes enabled disabledReason disabledAt
  customHeaders { name value } logTypes rateLimitPerMinute autoDisableAfterFailures
  previousSigningSecretExpiresAt createdAt updatedAt
  deliveryCounts { pending retrying succeeded failed }`;

async function destinationForm(id) {
  const title = id ? 'Edit destination' : 'Add Destination';
  if (!isAdmin()) {
    page(title, h('p', {}, 'Only an ADMIN token can add or change destinations. ', h('a', { href: '#/destinations' }, 'Back to the destinations.')));
    return;
  }
  let current = null;
  if (id) {
    const still = thisRender();
    loading('Destination');
    try {
      current = (await gql(`query D($id: ID!) { destination(id: $id) { ${DESTINATION_FULL} } }`, { id })).destination;
    } catch (err) {
      if (still()) failed(title, err, route);
      return;
    }
    if (!still()) return;
    if (!current) {
      page(title, h('p', {}, 'This destination does not exist (it may have been deleted). ', h('a', { href: '#/destinations' }, 'Back to the destinations.')));
      return;
    }
  }

  // Every field's error line, by the name the server gives in extensions.field.
  const errors = new Map();
  const field = (name, label, control, help = null) => {
    const errId = `err-${name.replace(/[^a-zA-Z0-9]/g, '-')}`;
    const helpId = help ? `help-${errId}` : null;
    const err = h('p', { id: errId, class: 'field-error' });
    errors.set(name, { control, err, helpId });
    if (helpId) control.setAttribute('aria-describedby', helpId);
    return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, help ? h('p', { id: helpId, class: 'help' }, help) : null, err);
  };
  const checkboxes = (name, legend, values, checked, help) => {
    const errId = `err-${name}`;
    const boxes = values.map((v) =>
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name, value: v, checked: checked.includes(v) }), ' ', v),
    );
    const fieldset = h('fieldset', { id: `fs-${name}`, 'aria-describedby': `help-${name}` }, h('legend', {}, legend), h('div', { class: 'checks' }, boxes), h('p', { id: `help-${name}`, class: 'help' }, help));
    const err = h('p', { id: errId, class: 'field-error' });
    fieldset.append(err);
    errors.set(name, { control: fieldset, err, helpId: `help-${name}` });
    return fieldset;
  };

  const displayName = h('input', { id: 'f-displayName', name: 'displayName', type: 'text', value: current?.displayName ?? '', autocomplete: 'off' });
  const url = h('input', { id: 'f-url', name: 'url', type: 'text', inputmode: 'url', value: current?.url ?? '', placeholder: 'https://receiver.example/hook', autocomplete: 'off', spellcheck: 'false' });
  const logTypes = h('input', { id: 'f-logTypes', name: 'logTypes', type: 'text', value: (current?.logTypes ?? []).join(', '), autocomplete: 'off' });
  const rate = h('input', { id: 'f-rateLimitPerMinute', name: 'rateLimitPerMinute', type: 'number', min: '1', value: current?.rateLimitPerMinute ?? '' });
  const autoDisable = h('input', { id: 'f-autoDisableAfterFailures', name: 'autoDisableAfterFailures', type: 'number', min: '1', value: current?.autoDisableAfterFailures ?? '' });

  // Custom headers: name/value rows; values are password inputs so they are not on screen.
  const headerRows = h('div', { class: 'header-rows' });
  const headerList = [];
  const renumber = () => {
    headerList.forEach((row, i) => {
      row.name.id = `f-header-${i}-name`;
      row.value.id = `f-header-${i}-value`;
      row.nameLabel.textContent = `Header ${i + 1} name`;
      row.nameLabel.htmlFor = row.name.id;
      row.valueLabel.textContent = `Header ${i + 1} value`;
      row.valueLabel.htmlFor = row.value.id;
      row.remove.textContent = `Remove header ${i + 1}`;
      errors.set(`customHeaders[${i}].name`, { control: row.name, err: row.nameErr, helpId: null });
      errors.set(`customHeaders[${i}].value`, { control: row.value, err: row.valueErr, helpId: null });
      row.nameErr.id = `err-header-${i}-name`;
      row.valueErr.id = `err-header-${i}-value`;
    });
  };
  const addHeader = (name = '', value = '') => {
    const row = {
      name: h('input', { type: 'text', value: name, autocomplete: 'off', spellcheck: 'false' }),
      value: h('input', { type: 'password', value: value ?? '', autocomplete: 'new-password' }),
      nameLabel: h('label'),
      valueLabel: h('label'),
      nameErr: h('p', { class: 'field-error' }),
      valueErr: h('p', { class: 'field-error' }),
      remove: h('button', { type: 'button', class: 'secondary' }),
    };
    row.el = h(
      'div',
      { class: 'header-row' },
      h('div', { class: 'field' }, row.nameLabel, row.name, row.nameErr),
      h('div', { class: 'field' }, row.valueLabel, row.value, row.valueErr),
      row.remove,
    );
    row.remove.addEventListener('click', () => {
      headerList.splice(headerList.indexOf(row), 1);
      row.el.remove();
      for (const k of [...errors.keys()]) if (k.startsWith('customHeaders[')) errors.delete(k);
      renumber();
      addButton.focus();
    });
    headerList.push(row);
    headerRows.append(row.el);
    renumber();
    return row;
  };
  const addButton = h('button', { type: 'button', class: 'secondary', onclick: () => addHeader().name.focus() }, 'Add header');
  for (const hd of current?.customHeaders ?? []) addHeader(hd.name, hd.value);
  const headersErr = h('p', { id: 'err-customHeaders', class: 'field-error' });
  errors.set('customHeaders', { control: addButton, err: headersErr, helpId: null });

  const summary = h('div', { class: 'form-error', role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'primary' }, id ? 'Save Changes' : 'Add Destination');
  const form = h(
    'form',
    { class: 'card', novalidate: true },
    summary,
    field('displayName', 'Display Name', displayName, 'Unique; shown in the console and in delivery history.'),
    field('url', 'URL', url, 'Where alerts are POSTed: http(s), reachable from Herald.'),
    checkboxes('severities', 'Severities', SEVERITIES, current?.severities ?? SEVERITIES, 'Alerts of these severities are routed here. None: only alerts that name this destination.'),
    checkboxes('alertTypes', 'Alert types', ALERT_TYPES, current?.alertTypes ?? ALERT_TYPES, 'At least one.'),
    h('fieldset', {}, h('legend', {}, 'Custom headers'), h('p', { class: 'help' }, 'Sent with every request (e.g. an Authorization header the receiver wants). Values are stored encrypted.'), headerRows, headersErr, addButton),
    h(
      'details',
      { class: 'more', open: Boolean(current && (current.logTypes.length || current.rateLimitPerMinute || current.autoDisableAfterFailures)) },
      h('summary', {}, 'More settings'),
      field('logTypes', 'Log types', logTypes, 'Comma-separated, e.g. AWS.CloudTrail, Okta.SystemLog. Empty: every log type.'),
      field('rateLimitPerMinute', 'Rate limit (requests per minute)', rate, 'Empty: no limit.'),
      field('autoDisableAfterFailures', 'Auto-disable after this many failed deliveries in a row', autoDisable, 'Empty: never.'),
    ),
    h('div', { class: 'actions' }, submit, h('a', { href: id ? `#/destinations/${encodeURIComponent(id)}` : '#/destinations', class: 'button secondary' }, 'Cancel')),
  );

  const clearErrors = () => {
    replace(summary);
    for (const { control, err, helpId } of errors.values()) {
      replace(err);
      control.removeAttribute('aria-invalid');
      if (helpId) control.setAttribute('aria-describedby', helpId);
      else control.removeAttribute('aria-describedby');
    }
  };
  const showError = (err) => {
    const at = err.field && (errors.get(err.field) ?? errors.get(err.field.replace(/\[\d+\]$/, '')));
    if (at) {
      replace(at.err, err.message);
      at.control.setAttribute('aria-invalid', 'true');
      at.control.setAttribute('aria-describedby', [at.helpId, at.err.id].filter(Boolean).join(' '));
      if (at.control.closest('details')) at.control.closest('details').open = true;
      replace(summary, h('p', {}, 'Please correct the highlighted field: ', err.message));
      (at.control.tagName === 'FIELDSET' ? at.control.querySelector('input') : at.control).focus();
    } else {
      replace(summary, h('p', {}, describe(err)));
      summary.focus?.();
    }
  };

  const numberOrNull = (input) => (input.value.trim() === '' ? null : Number(input.value));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    const input = {
      displayName: displayName.value,
      url: url.value.trim(),
      severities: [...form.querySelectorAll('input[name=severities]:checked')].map((b) => b.value),
      alertTypes: [...form.querySelectorAll('input[name=alertTypes]:checked')].map((b) => b.value),
      customHeaders: headerList.map((r) => ({ name: r.name.value.trim(), value: r.value.value })),
      logTypes: logTypes.value.split(',').map((s) => s.trim()).filter(Boolean),
      rateLimitPerMinute: numberOrNull(rate),
      autoDisableAfterFailures: numberOrNull(autoDisable),
    };
    submit.disabled = true;
    try {
      if (id) {
        await gql(
          `mutation Update($input: UpdateDestinationInput!) { updateDestination(input: $input) { destination { id } } }`,
          { input: { id, ...input } },
        );
        flash = 'Changes saved.';
        location.hash = `#/destinations/${encodeURIComponent(id)}`;
      } else {
        const data = await gql(
          `mutation Create($input: CreateDestinationInput!) { createDestination(input: $input) { destination { id displayName url } } }`,
          { input },
        );
        afterCreate(data.createDestination.destination);
      }
    } catch (err) {
      showError(err);
      submit.disabled = false;
    }
  });
  page(title, form);
}

/** Panther's flow: after Add Destination, offer a test alert, then Finish Setup. */
function afterCreate(d) {
  const result = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const send = h('button', { type: 'button', class: 'primary' }, 'Send Test Alert');
  send.addEventListener('click', () => sendTest(d.id, send, result));
  page(
    'Destination added',
    h(
      'div',
      { class: 'card' },
      h('p', { role: 'status' }, h('strong', {}, d.displayName), ' was added. It will receive alerts at ', h('code', {}, d.url), '.'),
      h('p', {}, 'Send a test alert to check that the receiver accepts Herald\u2019s requests, then finish setup.'),
      h('div', { class: 'actions' }, send, h('button', { type: 'button', class: 'secondary', onclick: () => (location.hash = `#/destinations/${encodeURIComponent(d.id)}`) }, 'Finish Setup')),
      result,
    ),
  );
}

/** Runs sendTestAlert and shows what the receiver answered: status, body, duration. */
async function sendTest(destinationId, button, out) {
  button.disabled = true;
  replace(out, h('p', { class: 'loading' }, 'Sending the test alert…'));
  try {
    const data = await gql(
      `mutation Test($id: ID!) { sendTestAlert(input: { destinationId: $id }) { delivery {
        id state success statusCode responseBody message attempts { durationMs error } } } }`,
      { id: destinationId },
    );
    const d = data.sendTestAlert.delivery;
    const attempt = d.attempts[d.attempts.length - 1];
    replace(
      out,
      h('h2', {}, d.success ? '✓ The receiver accepted the test alert' : '✗ The test alert failed'),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Status code'), h('dd', {}, d.statusCode ?? 'no response'),
        h('dt', {}, 'Response body'), h('dd', {}, h('pre', {}, d.responseBody ?? '')),
        h('dt', {}, 'Message'), h('dd', {}, d.message),
        attempt?.error ? [h('dt', {}, 'Error'), h('dd', {}, attempt.error)] : null,
        h('dt', {}, 'Duration'), h('dd', {}, attempt ? `${attempt.durationMs} ms` : '—'),
        h('dt', {}, 'State'), h('dd', {}, stateBadge(d.state)),
      ),
      h('p', {}, h('a', { href: `#/deliveries/${encodeURIComponent(d.id)}` }, 'View this delivery')),
    );
  } catch (err) {
    replace(out, h('p', { class: 'error', role: 'alert' }, describe(err)));
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------
// One destination

const DELIVERY_ROW = `id alertId label state statusCode message attemptCount createdAt test resendOf
  alert { title severity }`;

async function destinationPage(id) {
  const still = thisRender();
  loading('Destination');
  let d;
  try {
    d = (await gql(`query D($id: ID!) { destination(id: $id) { ${DESTINATION_FULL} } }`, { id })).destination;
  } catch (err) {
    if (still()) failed('Destination', err, route);
    return;
  }
  if (!still()) return;
  if (!d) {
    page('Destination not found', h('p', {}, 'There is no destination with this id (it may have been deleted). ', h('a', { href: '#/destinations' }, 'Back to the destinations.')));
    return;
  }
  const enc = encodeURIComponent(id);
  const testOut = h('div', { class: 'test-result', 'aria-live': 'polite' });
  const actionOut = h('p', { class: 'action-result', role: 'status' });

  const actions = [];
  if (isAdmin()) {
    const test = h('button', { type: 'button', class: 'primary' }, 'Send Test Alert');
    test.addEventListener('click', () => sendTest(id, test, testOut));
    const toggle = h('button', { type: 'button' }, d.enabled ? 'Disable' : 'Enable');
    toggle.addEventListener('click', async () => {
      toggle.disabled = true;
      try {
        await gql(`mutation T($input: UpdateDestinationInput!) { updateDestination(input: $input) { destination { id enabled } } }`, { input: { id, enabled: !d.enabled } });
        flash = d.enabled ? 'Disabled: new alerts are not routed here; its queued deliveries are held.' : 'Enabled: held deliveries go out now.';
        route();
      } catch (err) {
        replace(actionOut, describe(err));
        toggle.disabled = false;
      }
    });
    actions.push(
      h('button', { type: 'button', onclick: () => (location.hash = `#/destinations/${enc}/edit`) }, 'Edit'),
      test,
      toggle,
      deleteControl(d, actionOut),
    );
  }

  const settings = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'URL'), h('dd', { class: 'url' }, d.url),
    h('dt', {}, 'Status'), h('dd', {}, statusBadge(d), d.disabledReason ? h('span', { class: 'reason' }, ` ${d.disabledReason}`) : null, d.disabledAt ? [' since ', time(d.disabledAt)] : null),
    h('dt', {}, 'Severities'), h('dd', {}, list(d.severities, 'none: only alerts that name this destination')),
    h('dt', {}, 'Alert types'), h('dd', {}, list(d.alertTypes, 'none')),
    h('dt', {}, 'Log types'), h('dd', {}, d.logTypes.length ? d.logTypes.join(', ') : 'every log type'),
    h('dt', {}, 'Rate limit'), h('dd', {}, d.rateLimitPerMinute ? `${d.rateLimitPerMinute} requests per minute` : 'none'),
    h('dt', {}, 'Auto-disable'), h('dd', {}, d.autoDisableAfterFailures ? `after ${d.autoDisableAfterFailures} failed deliveries in a row` : 'never'),
    h('dt', {}, 'Custom headers'),
    // Names only: values are secrets (null for viewers; admins edit them in the form).
    h('dd', {}, d.customHeaders.length ? h('ul', { class: 'plain' }, d.customHeaders.map((c) => h('li', {}, h('code', {}, c.name), ': (value hidden)'))) : 'none'),
    h('dt', {}, 'Deliveries'),
    h('dd', {}, `Pending ${d.deliveryCounts.pending} · Retrying ${d.deliveryCounts.retrying} · Succeeded ${d.deliveryCounts.succeeded} · `, h('span', { class: d.deliveryCounts.failed ? 'bad-text' : '' }, `${d.deliveryCounts.failed ? '⚠ ' : ''}Failed ${d.deliveryCounts.failed}`)),
    h('dt', {}, 'Created'), h('dd', {}, time(d.createdAt)),
    h('dt', {}, 'Updated'), h('dd', {}, time(d.updatedAt)),
  );

  page(
    d.displayName,
    h('p', { class: 'crumbs' }, h('a', { href: '#/destinations' }, 'Destinations'), ' / ', d.displayName),
    actions.length ? h('div', { class: 'actions' }, actions) : null,
    actionOut,
    testOut,
    h('section', { 'aria-labelledby': 'settings-h' }, h('h2', { id: 'settings-h' }, 'Settings'), settings),
    signingSecretSection(d),
    deliveriesSection(id),
  );
}

function deleteControl(d, out) {
  const confirm = h('button', { type: 'button', class: 'danger' }, 'Delete Destination');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const dialog = h(
    'dialog',
    { 'aria-labelledby': 'delete-h', 'aria-describedby': 'delete-d' },
    h('h2', { id: 'delete-h' }, `Delete ${d.displayName}?`),
    h('p', { id: 'delete-d' }, 'Herald stops sending to it at once; queued deliveries end FAILED. Its delivery history stays. This cannot be undone.'),
    h('div', { class: 'actions' }, confirm, cancel),
  );
  cancel.addEventListener('click', () => dialog.close());
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      await gql(`mutation Del($id: ID!) { deleteDestination(input: { id: $id }) { deletedId } }`, { id: d.id });
      dialog.close();
      flash = `${d.displayName} was deleted.`;
      location.hash = '#/destinations';
    } catch (err) {
      dialog.close();
      replace(out, describe(err));
      confirm.disabled = false;
    }
  });
  const open = h('button', { type: 'button', class: 'danger', onclick: () => { document.body.append(dialog); dialog.showModal(); cancel.focus(); } }, 'Delete');
  dialog.addEventListener('close', () => { dialog.remove(); open.focus(); });
  return open;
}

function signingSecretSection(d) {
  const section = h('section', { 'aria-labelledby': 'secret-h' }, h('h2', { id: 'secret-h' }, 'Signing secret'));
  if (!isAdmin()) {
    section.append(h('p', {}, 'Receivers verify Herald\u2019s signature with this destination\u2019s signing secret. Only an ADMIN token can see or rotate it.'));
    return section;
  }
  const shown = h('div', { class: 'secret', 'aria-live': 'polite' });
  const view = h('button', { type: 'button' }, 'View Signing Secret');
  let visible = false;
  // Read only when asked, so the secret is in the page only while it is shown.
  const reveal = async () => {
    try {
      const data = await gql(`query S($id: ID!) { destination(id: $id) { signingSecret } }`, { id: d.id });
      replace(shown, h('code', { class: 'secret-value' }, data.destination?.signingSecret ?? ''));
      view.textContent = 'Hide Signing Secret';
      visible = true;
    } catch (err) {
      replace(shown, h('span', { class: 'error' }, describe(err)));
    }
  };
  view.addEventListener('click', async () => {
    if (visible) {
      replace(shown);
      view.textContent = 'View Signing Secret';
      visible = false;
      return;
    }
    await reveal();
  });
  const grace = h('input', { id: 'grace', type: 'number', min: '0', value: '0', 'aria-describedby': 'grace-help' });
  const rotateOut = h('p', { role: 'status' });
  const rotate = h('button', { type: 'button' }, 'Rotate Signing Secret');
  rotate.addEventListener('click', async () => {
    rotate.disabled = true;
    try {
      const data = await gql(
        `mutation R($input: RotateSigningSecretInput!) { rotateSigningSecret(input: $input) { destination { previousSigningSecretExpiresAt } } }`,
        { input: { id: d.id, gracePeriodSeconds: Number(grace.value || 0) } },
      );
      const until = data.rotateSigningSecret.destination.previousSigningSecretExpiresAt;
      if (visible) await reveal();
      replace(rotateOut, 'Rotated. ', until ? ['The previous secret keeps signing until ', time(until), '.'] : 'The previous secret no longer signs.');
    } catch (err) {
      replace(rotateOut, h('span', { class: 'error' }, describe(err)));
    } finally {
      rotate.disabled = false;
    }
  });
  section.append(
    h('div', { class: 'actions' }, view),
    shown,
    d.previousSigningSecretExpiresAt ? h('p', {}, 'The previous secret signs too until ', time(d.previousSigningSecretExpiresAt), '.') : null,
    h(
      'div',
      { class: 'rotate' },
      h('div', { class: 'field' }, h('label', { for: 'grace' }, 'Grace period (seconds)'), grace, h('p', { id: 'grace-help', class: 'help' }, 'How long the old secret keeps signing beside the new one, so receivers can switch. 0: at once.')),
      rotate,
    ),
    rotateOut,
  );
  return section;
}

function deliveriesSection(destinationId) {
  const filter = h('select', { id: 'state-filter' }, h('option', { value: '' }, 'All states'), STATES.map((s) => h('option', { value: s }, s)));
  const liveStatus = h('span', { class: 'live', role: 'status' });
  const body = h('div', { class: 'deliveries' });
  let rows = [];
  let more = null;

  const render = () => {
    const wanted = filter.value;
    const shown = rows.filter((r) => !wanted || r.state === wanted);
    if (shown.length === 0) {
      const empty = h('div', { class: 'empty' }, h('p', {}, h('strong', {}, wanted ? `No ${wanted} deliveries.` : 'No deliveries yet.')));
      if (!wanted) {
        if (isAdmin()) {
          const out = h('div', { class: 'test-result', 'aria-live': 'polite' });
          const b = h('button', { type: 'button', class: 'primary' }, 'Send Test Alert');
          b.addEventListener('click', () => sendTest(destinationId, b, out));
          empty.append(h('p', {}, 'Send a test alert to see one here.'), b, out);
        } else {
          empty.append(h('p', {}, 'Deliveries appear here when alerts are routed to this destination.'));
        }
      }
      replace(body, empty);
      return;
    }
    replace(body, deliveriesTable(shown, { destinationColumn: false }), more);
  };

  const load = async () => {
    replace(body, h('p', { class: 'loading', role: 'status' }, 'Loading deliveries…'));
    try {
      const data = await gql(
        `query L($id: ID!, $state: DeliveryState) { deliveries(first: 50, destinationId: $id, state: $state) {
          totalCount pageInfo { hasNextPage } nodes { ${DELIVERY_ROW} } } }`,
        { id: destinationId, state: filter.value || null },
      );
      rows = data.deliveries.nodes;
      more = data.deliveries.pageInfo.hasNextPage ? h('p', { class: 'help' }, `The newest 50 of ${data.deliveries.totalCount}; the API pages through all of them.`) : null;
      render();
    } catch (err) {
      replace(body, h('div', { class: 'error', role: 'alert' }, describe(err)));
    }
  };
  filter.addEventListener('change', load);
  const refresh = h('button', { type: 'button', onclick: load }, 'Refresh');

  onLeave(
    subscribe(
      `subscription S($id: ID!) { deliveryUpdated(destinationId: $id) { ${DELIVERY_ROW} } }`,
      { id: destinationId },
      (data) => {
        rows = upsert(rows, data.deliveryUpdated);
        render();
      },
      (s) => replace(liveStatus, liveText(s)),
    ),
  );
  load();
  return h(
    'section',
    { 'aria-labelledby': 'deliveries-h' },
    h('h2', { id: 'deliveries-h' }, 'Deliveries'),
    h('div', { class: 'toolbar' }, h('div', { class: 'field inline' }, h('label', { for: 'state-filter' }, 'State'), filter), refresh, liveStatus),
    body,
  );
}

/** Puts a changed delivery in place, or first when it is new (the list is newest first). */
function upsert(rows, d) {
  const i = rows.findIndex((r) => r.id === d.id);
  if (i >= 0) return rows.map((r) => (r.id === d.id ? d : r));
  return [d, ...rows];
}

function liveText(status) {
  return {
    connecting: 'Connecting for live updates…',
    live: '● Live: updates appear as they happen',
    reconnecting: 'Live updates interrupted; reconnecting… (Refresh reloads now)',
    refused: 'Live updates refused; use Refresh',
  }[status] ?? status;
}

function deliveriesTable(rows, { destinationColumn, resend = false }) {
  const cols = ['Created', destinationColumn ? 'Destination' : 'Alert', 'State', 'Status code', 'Attempts', 'Message', 'Details'];
  if (resend) cols.push('Action');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'reflow' },
      h('thead', {}, h('tr', {}, cols.map((c) => h('th', { scope: 'col' }, c)))),
      h(
        'tbody',
        {},
        rows.map((d) =>
          h(
            'tr',
            { class: d.state === 'FAILED' ? 'failing' : '' },
            h('td', { 'data-label': 'Created' }, time(d.createdAt)),
            destinationColumn
              ? h('td', { 'data-label': 'Destination' }, d.destination ? h('a', { href: `#/destinations/${encodeURIComponent(d.destinationId)}` }, d.label) : `${d.label} (deleted)`)
              : h('td', { 'data-label': 'Alert' }, h('a', { href: `#/alerts/${encodeURIComponent(d.alertId)}` }, d.alert?.title ?? d.alertId), d.test ? ' (test)' : '', d.resendOf ? ' (re-send)' : ''),
            h('td', { 'data-label': 'State' }, stateBadge(d.state)),
            h('td', { 'data-label': 'Status code' }, d.statusCode ?? '—'),
            h('td', { 'data-label': 'Attempts' }, d.attemptCount),
            h('td', { 'data-label': 'Message', class: 'message' }, d.message || '—'),
            h('td', { 'data-label': 'Details' }, h('a', { href: `#/deliveries/${encodeURIComponent(d.id)}`, 'aria-label': `View delivery ${d.id}` }, 'View')),
            resend ? h('td', { 'data-label': 'Action' }, resendButton(d, `Re-send to ${d.label}`)) : null,
          ),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// One delivery

const DELIVERY_FULL = `id alertId destinationId label state success statusCode responseBody message
  attemptCount requestBody nextAttemptAt webhookId resendOf test createdAt dispatchedAt
  destination { id displayName } alert { title }
  attempts { number startedAt durationMs statusCode responseBody responseTruncated responseHeaders
    error url requestHeaders }`;

async function deliveryPage(id) {
  const still = thisRender();
  loading('Delivery');
  let d;
  try {
    d = (await gql(`query D($id: ID!) { delivery(id: $id) { ${DELIVERY_FULL} } }`, { id })).delivery;
  } catch (err) {
    if (still()) failed('Delivery', err, route);
    return;
  }
  if (!still()) return;
  if (!d) {
    page('Delivery not found', h('p', {}, 'There is no delivery with this id. ', h('a', { href: '#/destinations' }, 'Back to the destinations.')));
    return;
  }
  const summary = h('div');
  const attempts = h('div');
  const resends = h('div', { 'aria-live': 'polite' });
  const liveStatus = h('span', { class: 'live', role: 'status' });
  const resent = new Map();

  const renderDelivery = (x) => {
    replace(
      summary,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'State'), h('dd', { id: 'delivery-state' }, stateBadge(x.state)),
        h('dt', {}, 'Status code'), h('dd', {}, x.statusCode ?? '—'),
        h('dt', {}, 'Message'), h('dd', { class: 'message' }, x.message || '—'),
        h('dt', {}, 'Attempts'), h('dd', {}, x.attemptCount),
        x.nextAttemptAt ? [h('dt', {}, 'Next attempt'), h('dd', {}, time(x.nextAttemptAt))] : null,
        h('dt', {}, 'Alert'), h('dd', {}, h('a', { href: `#/alerts/${encodeURIComponent(x.alertId)}` }, x.alert?.title ?? x.alertId), x.test ? ' (test alert)' : ''),
        h('dt', {}, 'Destination'), h('dd', {}, x.destination ? h('a', { href: `#/destinations/${encodeURIComponent(x.destinationId)}` }, x.label) : `${x.label} (deleted)`),
        x.resendOf ? [h('dt', {}, 'Re-send of'), h('dd', {}, h('a', { href: `#/deliveries/${encodeURIComponent(x.resendOf)}` }, x.resendOf))] : null,
        h('dt', {}, 'webhook-id'), h('dd', {}, h('code', {}, x.webhookId)),
        h('dt', {}, 'Created'), h('dd', {}, time(x.createdAt)),
        h('dt', {}, 'Last sent'), h('dd', {}, time(x.dispatchedAt)),
      ),
    );
    replace(
      attempts,
      x.attempts.length === 0
        ? h('p', {}, 'No attempt yet.')
        : x.attempts.map((a) =>
            h(
              'article',
              { class: `attempt ${a.statusCode && a.statusCode < 300 ? '' : 'failing'}`, 'aria-labelledby': `attempt-${a.number}` },
              h('h3', { id: `attempt-${a.number}` }, `Attempt ${a.number}: `, a.statusCode ? `HTTP ${a.statusCode}` : 'no response'),
              h(
                'dl',
                { class: 'facts' },
                h('dt', {}, 'Sent'), h('dd', {}, time(a.startedAt)),
                h('dt', {}, 'Duration'), h('dd', {}, `${a.durationMs} ms`),
                h('dt', {}, 'Status code'), h('dd', {}, a.statusCode ?? '—'),
                a.error ? [h('dt', {}, 'Error'), h('dd', { class: 'bad-text' }, a.error)] : null,
                h('dt', {}, 'URL'), h('dd', { class: 'url' }, a.url || '—'),
              ),
              h('h4', {}, 'Response body', a.responseTruncated ? ' (first 64 KiB)' : ''),
              h('pre', { class: 'body', tabindex: '0' }, a.responseBody ? pretty(a.responseBody) : '(empty)'),
              h('details', {}, h('summary', {}, 'Response headers'), h('pre', { tabindex: '0' }, pretty(a.responseHeaders ?? {}))),
              h('details', {}, h('summary', {}, 'Request headers'), h('pre', { tabindex: '0' }, pretty(a.requestHeaders ?? {}))),
            ),
          ),
    );
  };
  const renderResends = () => {
    if (resent.size === 0) return replace(resends);
    replace(
      resends,
      h('h2', {}, 'Re-sends'),
      h('ul', { class: 'plain' }, [...resent.values()].map((r) => h('li', {}, h('a', { href: `#/deliveries/${encodeURIComponent(r.id)}` }, `Re-send ${r.id}`), ': ', stateBadge(r.state), r.statusCode ? ` HTTP ${r.statusCode}` : '', r.message ? ` · ${r.message}` : ''))),
    );
  };

  let resendButtonEl = null;
  if (isAdmin()) {
    resendButtonEl = h('button', { type: 'button', class: 'primary' }, 'Re-send');
    resendButtonEl.addEventListener('click', async () => {
      resendButtonEl.disabled = true;
      try {
        const data = await gql(`mutation R($id: ID!) { resendDelivery(input: { deliveryId: $id }) { delivery { id state statusCode message resendOf } } }`, { id });
        const r = data.resendDelivery.delivery;
        if (!resent.has(r.id) || resent.get(r.id).state === 'PENDING') resent.set(r.id, r);
        renderResends();
      } catch (err) {
        replace(resends, h('p', { class: 'error', role: 'alert' }, describe(err)));
      } finally {
        resendButtonEl.disabled = false;
      }
    });
  }

  // Live: this delivery and its re-sends, from the alert's stream.
  onLeave(
    subscribe(
      `subscription S($alertId: ID!) { deliveryUpdated(alertId: $alertId) { ${DELIVERY_FULL} } }`,
      { alertId: d.alertId },
      ({ deliveryUpdated: x }) => {
        if (x.id === id) renderDelivery(x);
        else if (x.resendOf === id) {
          resent.set(x.id, x);
          renderResends();
        }
      },
      (s) => replace(liveStatus, liveText(s)),
    ),
  );

  renderDelivery(d);
  page(
    `Delivery to ${d.label}`,
    h('p', { class: 'crumbs' }, h('a', { href: '#/destinations' }, 'Destinations'), ' / ', d.destination ? h('a', { href: `#/destinations/${encodeURIComponent(d.destinationId)}` }, d.label) : d.label, ' / delivery ', h('code', {}, d.id)),
    h('div', { class: 'toolbar' }, resendButtonEl, h('button', { type: 'button', onclick: route }, 'Refresh'), liveStatus),
    resends,
    h('section', { 'aria-labelledby': 'status-h' }, h('h2', { id: 'status-h' }, 'Status'), summary),
    h('section', { 'aria-labelledby': 'attempts-h' }, h('h2', { id: 'attempts-h' }, 'Attempts'), attempts),
    h(
      'section',
      { 'aria-labelledby': 'request-h' },
      h('h2', { id: 'request-h' }, 'Request body'),
      h('p', { class: 'help' }, 'The exact bytes signed and sent, the same on every attempt and re-send.'),
      h('pre', { class: 'body', tabindex: '0' }, pretty(d.requestBody)),
    ),
  );
  if (d.resendOf === null && isAdmin()) {
    // Re-sends made before this page opened.
    gql(`query Rs($alertId: ID!) { deliveries(first: 50, alertId: $alertId) { nodes { id state statusCode message resendOf } } }`, { alertId: d.alertId })
      .then((data) => {
        for (const r of data.deliveries.nodes) if (r.resendOf === id && !resent.has(r.id)) resent.set(r.id, r);
        renderResends();
      })
      .catch(() => {});
  }
}

function resendButton(d, label) {
  if (!isAdmin()) return '—';
  const b = h('button', { type: 'button', 'aria-label': label }, 'Re-send');
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await gql(`mutation R($id: ID!) { resendDelivery(input: { deliveryId: $id }) { delivery { id } } }`, { id: d.id });
      b.textContent = 'Re-sent';
    } catch (err) {
      b.replaceWith(h('span', { class: 'error', role: 'alert' }, describe(err)));
    }
  });
  return b;
}

// ---------------------------------------------------------------------------------------------
// One alert

const ALERT_DELIVERY = `id alertId destinationId label state statusCode message attemptCount createdAt test resendOf
  destination { id }`;

async function alertPage(id) {
  const still = thisRender();
  loading('Alert');
  let a;
  try {
    a = (await gql(
      `query A($id: ID!) { alert(id: $id) { id detectionId title severity type createdAt receivedAt payload logTypes
        deliveries { ${ALERT_DELIVERY} } } }`,
      { id },
    )).alert;
  } catch (err) {
    if (still()) failed('Alert', err, route);
    return;
  }
  if (!still()) return;
  if (!a) {
    page('Alert not found', h('p', {}, 'There is no alert with this id. ', h('a', { href: '#/destinations' }, 'Back to the destinations.')));
    return;
  }
  // Newest first, like the destination's list.
  let rows = [...a.deliveries].reverse();
  const table = h('div');
  const liveStatus = h('span', { class: 'live', role: 'status' });
  const render = () => replace(table, rows.length ? deliveriesTable(rows, { destinationColumn: true, resend: true }) : h('p', {}, 'This alert was routed to no destination.'));
  onLeave(
    subscribe(
      `subscription S($id: ID!) { deliveryUpdated(alertId: $id) { ${ALERT_DELIVERY} } }`,
      { id },
      (data) => {
        rows = upsert(rows, data.deliveryUpdated);
        render();
      },
      (s) => replace(liveStatus, liveText(s)),
    ),
  );
  render();
  page(
    a.title,
    h('p', { class: 'crumbs' }, 'Alert ', h('code', {}, a.id)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Severity'), h('dd', {}, a.severity),
      h('dt', {}, 'Type'), h('dd', {}, a.type),
      h('dt', {}, 'Detection'), h('dd', {}, h('code', {}, a.detectionId)),
      h('dt', {}, 'Log types'), h('dd', {}, a.logTypes.length ? a.logTypes.join(', ') : 'none'),
      h('dt', {}, 'Created'), h('dd', {}, time(a.createdAt)),
      h('dt', {}, 'Received'), h('dd', {}, time(a.receivedAt)),
    ),
    h('section', { 'aria-labelledby': 'ad-h' }, h('h2', { id: 'ad-h' }, 'Deliveries'), h('div', { class: 'toolbar' }, h('button', { type: 'button', onclick: route }, 'Refresh'), liveStatus), table),
    h('section', { 'aria-labelledby': 'payload-h' }, h('h2', { id: 'payload-h' }, 'Payload'), h('pre', { class: 'body', tabindex: '0' }, pretty(a.payload))),
  );
}
