// The console in a real browser, as an operator uses it. Run by the Rust test
// tests/tests/e2e/console_browser.rs, which starts `herald serve` and a receiver and passes:
//   HERALD_URL, ADMIN_TOKEN, VIEWER_TOKEN, RECEIVER_URL, SCREENSHOT_DIR, DOCS_IMAGE_DIR
// The receiver answers 200 `success` at first. To change it, this script prints a line
// `@@receiver <state>` (`failing` or `fixed`) and waits for the harness to answer `ok` on stdin.
// Every request to a host other than Herald's is aborted and counted: the count must be 0.

import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { graphql, isolate, launch, required } from './harness.mjs';

const HERALD = required('HERALD_URL');
const ADMIN = required('ADMIN_TOKEN');
const VIEWER = required('VIEWER_TOKEN');
const RECEIVER = required('RECEIVER_URL');
const SHOTS = required('SCREENSHOT_DIR');
const DOCS = process.env.DOCS_IMAGE_DIR;
const heraldHost = new URL(HERALD).host;
const STEP_TIMEOUT = 15_000;

// The whole run is bounded; the harness bounds it too.
const watchdog = setTimeout(() => {
  console.error('console.mjs: timed out after 100 s');
  process.exit(3);
}, 100_000);

const lines = createInterface({ input: process.stdin });
const answers = [];
const waiting = [];
lines.on('line', (l) => (waiting.length ? waiting.shift()(l) : answers.push(l)));
async function receiver(state) {
  console.log(`@@receiver ${state}`);
  const answer = answers.length ? answers.shift() : await new Promise((r) => waiting.push(r));
  if (answer.trim() !== 'ok') throw new Error(`the harness answered ${answer} to ${state}`);
}

// GraphQL straight to Herald, for what an automation would do beside the operator (send alerts).
const api = (query, variables) => graphql(HERALD, ADMIN, query, variables);

const expect = (cond, what) => {
  if (!cond) throw new Error(`expected: ${what}`);
};
let step = 0;
const log = (what) => console.log(`step ${++step}: ${what}`);

mkdirSync(SHOTS, { recursive: true });
if (DOCS) mkdirSync(DOCS, { recursive: true });

const browser = await launch();
let external = [];
const problems = [];
let exitCode = 0;

async function newPage(viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  await isolate(context, heraldHost, external);
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  // A CSP violation or a script error is a bug even when the page looks right. (The 401 of the
  // bad sign-in is the browser logging an expected answer.)
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return page;
}

async function shot(page, name, { docs = null, full = true } = {}) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: full });
  if (DOCS && docs) await page.screenshot({ path: join(DOCS, docs), fullPage: false });
}

try {
  const page = await newPage();
  const text = (t) => page.getByText(t);

  // --- Sign in: a bad token first
  log('sign in with a bad token');
  await page.goto(`${HERALD}/`);
  await page.getByLabel('API token').fill('hrld_not_a_real_token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'not accepted' }).waitFor();
  expect(await page.getByLabel('API token').getAttribute('aria-invalid') === 'true', 'the token field is marked invalid');
  await shot(page, '01-sign-in-bad-token');

  log('sign in with the admin token');
  await page.getByLabel('API token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Destinations', level: 1 }).waitFor();
  await text('No destinations yet').waitFor();
  expect(await page.locator('.who').innerText().then((t) => t.includes('ADMIN')), 'the role is shown');
  expect(await page.evaluate(() => sessionStorage.getItem('herald.token')) === ADMIN, 'the token is in sessionStorage');
  expect(await page.evaluate(() => localStorage.length) === 0, 'nothing in localStorage');
  await page.getByRole('link', { name: 'Playground' }).waitFor();
  await shot(page, '02-destinations-empty');

  // --- Add Destination, a bad URL first
  log('add a destination with a bad URL: the error sits next to URL');
  await page.getByRole('button', { name: 'Add Destination' }).click();
  await page.getByRole('heading', { name: 'Add Destination' }).waitFor();
  await page.getByLabel('Display Name').fill('Pager');
  await page.getByLabel('URL', { exact: true }).fill('not a url');
  await page.getByRole('checkbox', { name: 'INFO' }).uncheck();
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Header 1 name').fill('X-Team');
  await page.getByLabel('Header 1 value').fill('sec-ops-value');
  expect(await page.getByLabel('Header 1 value').getAttribute('type') === 'password', 'header values are password inputs');
  await page.getByRole('button', { name: 'Add Destination' }).click();
  const url = page.getByLabel('URL', { exact: true });
  await page.waitForFunction(() => document.getElementById('f-url').getAttribute('aria-invalid') === 'true');
  const described = await url.getAttribute('aria-describedby');
  expect(described.includes('err-url'), `URL's aria-describedby names its error (${described})`);
  const urlError = await page.locator('#err-url').innerText();
  expect(urlError.length > 0, 'an error under URL');
  console.log(`  the URL error: ${urlError}`);
  await shot(page, '03-add-destination-url-error');

  log('fix the URL: added; Send Test Alert shows 200 and success');
  await url.fill(RECEIVER);
  await page.getByRole('button', { name: 'Add Destination' }).click();
  await page.getByRole('heading', { name: 'Destination added' }).waitFor();
  await page.getByRole('button', { name: 'Send Test Alert' }).click();
  const result = page.locator('.test-result');
  await result.getByText('The receiver accepted the test alert').waitFor();
  const resultText = await result.innerText();
  expect(/Status code\s*200/.test(resultText), `status 200 shown: ${resultText}`);
  expect(/Response body\s*success/.test(resultText), `body "success" shown: ${resultText}`);
  expect(/Duration\s*\d+ ms/.test(resultText), `duration shown: ${resultText}`);
  await shot(page, '04-destination-added-test-alert');

  log('Finish Setup goes to the destination');
  await page.getByRole('button', { name: 'Finish Setup' }).click();
  await page.getByRole('heading', { name: 'Pager', level: 1 }).waitFor();
  await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
  await page.locator('.deliveries').getByText('SUCCEEDED').first().waitFor();
  const dest = decodeURIComponent(new URL(page.url()).hash.replace('#/destinations/', ''));
  await text('Live: updates appear').waitFor();

  // Another destination, so the list has a healthy row beside a failing one; it takes only
  // low severities, so the HIGH alert below does not go there.
  await api(`mutation($url: String!) { createDestination(input: {displayName: "Archive", url: $url, severities: [INFO, LOW]}) { destination { id } } }`, { url: RECEIVER });

  // --- A failing receiver
  log('the receiver fails: an alert ends FAILED, shown live with every attempt\'s body');
  await receiver('failing');
  const sent = await api(
    `mutation { sendAlert(input: {detectionId: "AWS.Root.Login", title: "Root account login", severity: HIGH, context: {sourceIp: "198.51.100.7"}}) { alert { id } deliveries { id destinationId } } }`,
  );
  const alertId = sent.sendAlert.alert.id;
  const failedDelivery = sent.sendAlert.deliveries.find((x) => x.destinationId === dest).id;
  await page.locator('.deliveries tr', { hasText: 'Root account login' }).getByText('FAILED').waitFor({ timeout: 30_000 });
  await shot(page, '05-destination-failed-delivery');
  await page.getByRole('link', { name: `View delivery ${failedDelivery}` }).click();
  await page.getByRole('heading', { name: 'Delivery to Pager' }).waitFor();
  await page.locator('#delivery-state').getByText('FAILED').waitFor();
  const attempts = page.locator('article.attempt');
  const n = await attempts.count();
  expect(n === 11, `11 attempts shown (got ${n})`);
  for (let i = 0; i < n; i++) {
    const body = await attempts.nth(i).locator('pre.body').innerText();
    expect(body.includes('receiver down: database locked'), `attempt ${i + 1} shows its response body (${body})`);
  }
  const req = await page.getByRole('region', { name: 'Request body' }).innerText();
  expect(req.includes('Root account login') && req.includes('198.51.100.7'), 'the request body is shown');
  await shot(page, '06-delivery-failed', { docs: 'console-delivery.png' });

  // --- Fixed: Re-send leads to SUCCEEDED without a reload
  log('fix the receiver; Re-send: SUCCEEDED arrives live');
  await receiver('fixed');
  await page.evaluate(() => (window.__noReload = true));
  await page.getByRole('button', { name: 'Re-send' }).click();
  await page.getByRole('heading', { name: 'Re-sends' }).waitFor();
  await page.locator('[aria-live]', { hasText: 'Re-send' }).getByText('SUCCEEDED').waitFor({ timeout: 30_000 });
  expect(await page.evaluate(() => window.__noReload === true), 'the page was not reloaded');
  await shot(page, '07-delivery-resent-succeeded');

  log('the alert page: payload and each destination\'s delivery');
  await page.getByRole('link', { name: 'Root account login' }).click();
  await page.getByRole('heading', { name: 'Root account login', level: 1 }).waitFor();
  await page.getByRole('region', { name: 'Payload' }).getByText('198.51.100.7').waitFor();
  await page.getByRole('button', { name: 'Re-send to Pager' }).first().waitFor();
  await shot(page, '08-alert');

  log('the destinations list: the failing one is marked in text');
  await page.getByRole('link', { name: 'Destinations' }).first().click();
  const pagerRow = page.getByRole('row', { name: /Pager/ });
  await pagerRow.getByText(/⚠ Failed 1/).waitFor();
  await page.getByRole('row', { name: /Archive/ }).getByText('Enabled').waitFor();
  await shot(page, '09-destinations', { docs: 'console-destinations.png' });

  log('View Signing Secret shows the whsec_ value; rotate with a grace period');
  await page.getByRole('link', { name: 'Pager' }).click();
  await page.getByRole('heading', { name: 'Pager', level: 1 }).waitFor();
  expect((await page.locator('.secret-value').count()) === 0, 'the secret is hidden until asked');
  await page.getByRole('button', { name: 'View Signing Secret' }).click();
  const secret = await page.locator('.secret-value').innerText();
  expect(/^whsec_[A-Za-z0-9+/=]{40,}$/.test(secret), `a whsec_ secret is shown (${secret.slice(0, 8)}…)`);
  await page.getByLabel('Grace period (seconds)').fill('3600');
  await page.getByRole('button', { name: 'Rotate Signing Secret' }).click();
  await text('The previous secret keeps signing until').waitFor();
  const rotated = await page.locator('.secret-value').innerText();
  expect(rotated.startsWith('whsec_') && rotated !== secret, 'the shown secret is the new one');
  await page.getByRole('button', { name: 'Hide Signing Secret' }).click();

  log('Edit: the same form, prefilled; Disable/Enable; the Delete dialog');
  await page.getByRole('button', { name: 'Edit' }).click();
  await page.getByRole('heading', { name: 'Edit destination' }).waitFor();
  expect((await page.getByLabel('Display Name').inputValue()) === 'Pager', 'prefilled name');
  expect((await page.getByLabel('Header 1 name').inputValue()) === 'X-Team', 'prefilled header');
  expect(!(await page.getByRole('checkbox', { name: 'INFO' }).isChecked()), 'prefilled severities');
  await page.getByLabel('Display Name').fill('Pager duty');
  await page.getByRole('button', { name: 'Save Changes' }).click();
  await page.getByRole('heading', { name: 'Pager duty', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('button', { name: 'Enable' }).waitFor();
  await text('Disabled', { exact: true }).first().waitFor();
  await page.getByRole('button', { name: 'Enable' }).click();
  await page.getByRole('button', { name: 'Disable' }).waitFor();
  // By keyboard: Enter opens the dialog with focus on Cancel, Escape closes it, focus returns.
  const del = page.getByRole('button', { name: 'Delete', exact: true });
  await del.focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Delete Pager duty?' });
  await dialog.waitFor();
  expect(await dialog.getByRole('button', { name: 'Cancel' }).evaluate((b) => b === document.activeElement), 'Cancel has the focus');
  await shot(page, '10-delete-dialog', { full: false });
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  expect(await del.evaluate((b) => b === document.activeElement), 'focus back on Delete');
  await page.getByRole('heading', { name: 'Pager duty', level: 1 }).waitFor();

  log('a narrow window: the list reflows');
  const narrow = await newPage({ width: 400, height: 800 });
  await narrow.goto(`${HERALD}/`);
  await narrow.getByLabel('API token').fill(ADMIN);
  await narrow.getByRole('button', { name: 'Sign in' }).click();
  await narrow.getByRole('row', { name: /Archive/ }).waitFor();
  const width = await narrow.evaluate(() => document.documentElement.scrollWidth);
  expect(width <= 400, `no sideways scrolling at 400 px (page is ${width} px wide)`);
  await shot(narrow, '11-destinations-narrow');
  await narrow.goto(`${HERALD}/#/deliveries/${encodeURIComponent(failedDelivery)}`);
  await narrow.locator('article.attempt').first().waitFor();
  const deliveryWidth = await narrow.evaluate(() => document.documentElement.scrollWidth);
  expect(deliveryWidth <= 400, `a delivery fits 400 px (page is ${deliveryWidth} px wide)`);
  await shot(narrow, '11-delivery-narrow', { full: false });
  await narrow.context().close();

  // --- Sign out, then a viewer
  log('Sign out forgets the token');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  expect((await page.evaluate(() => sessionStorage.getItem('herald.token'))) === null, 'the token is forgotten');

  log('a viewer sees the same pages read-only: no secret, no mutating button');
  await page.getByLabel('API token').fill(VIEWER);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.who').getByText('VIEWER', { exact: true }).waitFor();
  const mutating = ['Add Destination', 'Edit', 'Delete', 'Re-send', 'View Signing Secret', 'Rotate Signing Secret', 'Send Test Alert', 'Disable', 'Enable', 'Save Changes', 'Finish Setup'];
  const noMutatingButtons = async (where) => {
    for (const name of mutating) {
      const c = await page.getByRole('button', { name, exact: true }).count();
      expect(c === 0, `no ${name} button for a viewer on ${where}`);
    }
    const any = await page.getByRole('button', { name: /^Re-send/ }).count();
    expect(any === 0, `no Re-send button for a viewer on ${where}`);
    expect((await page.locator('.secret-value').count()) === 0, `no secret on ${where}`);
    expect(!(await page.content()).includes('whsec_'), `no whsec_ in ${where}`);
  };
  // Signing in returns to the page that was open (Pager duty's); the list is one link away.
  await page.getByRole('heading', { name: 'Pager duty', level: 1 }).waitFor();
  await page.getByRole('navigation').getByRole('link', { name: 'Destinations' }).click();
  await page.getByRole('row', { name: /Pager duty/ }).waitFor();
  await noMutatingButtons('the destinations list');
  await shot(page, '12-viewer-destinations');
  await page.getByRole('link', { name: 'Pager duty' }).click();
  await page.getByRole('heading', { name: 'Pager duty', level: 1 }).waitFor();
  await page.locator('.deliveries').getByText('SUCCEEDED').first().waitFor();
  await text('Only an ADMIN token can see or rotate it').waitFor();
  await noMutatingButtons('a destination');
  await shot(page, '13-viewer-destination');
  await page.goto(`${HERALD}/#/deliveries/${encodeURIComponent(failedDelivery)}`);
  await page.getByRole('heading', { name: 'Delivery to Pager' }).waitFor();
  await page.locator('article.attempt').first().waitFor();
  await noMutatingButtons('a delivery');
  await shot(page, '14-viewer-delivery');
  await page.goto(`${HERALD}/#/alerts/${encodeURIComponent(alertId)}`);
  await page.getByRole('heading', { name: 'Root account login', level: 1 }).waitFor();
  await noMutatingButtons('an alert');
  await page.goto(`${HERALD}/#/destinations/new`);
  await text('Only an ADMIN token can add or change destinations').waitFor();
  await noMutatingButtons('the add form');

  log('admin again: delete through the dialog');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.goto(`${HERALD}/#/destinations/${encodeURIComponent(dest)}`);
  await page.getByRole('heading', { name: 'Pager duty', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Delete', exact: true }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Delete Destination' }).click();
  await text('Pager duty was deleted.').waitFor();
  expect((await page.getByRole('row', { name: /Pager duty/ }).count()) === 0, 'the deleted destination is gone from the list');

  expect(problems.length === 0, `no console errors or CSP violations:\n${problems.join('\n')}`);
} catch (err) {
  console.error(`FAILED at step ${step}: ${err.stack ?? err}`);
  if (problems.length) console.error(`browser problems:\n${problems.join('\n')}`);
  exitCode = 1;
} finally {
  await browser.close();
}

console.log(`requests to other hosts: ${external.length}`);
if (external.length) {
  console.error(`the page reached for other hosts:\n${external.join('\n')}`);
  exitCode = exitCode || 1;
}
clearTimeout(watchdog);
process.exit(exitCode);
