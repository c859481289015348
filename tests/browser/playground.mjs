// The GraphQL playground in a real browser, as a person uses it: sign in with an API token, run
// a query, browse the schema in the Docs pane, and watch a test alert's delivery stream in over a
// subscription. Every request to a host other than Herald's is aborted and counted (must be 0).
//
// Environment (set by tests/tests/e2e/playground_browser.rs):
//   HERALD_URL      the server under test, e.g. http://127.0.0.1:PORT
//   HERALD_TOKEN    an ADMIN token
//   RECEIVER_URL    a receiver that answers 200
//   SCREENSHOT      where to save the full screenshot (target/browser-screenshots/playground.png)
//   DOCS_IMAGE      optional: where to save the README's copy (docs/images/playground.png)
import { graphql, isolate, launch, required } from './harness.mjs';

const herald = new URL(required('HERALD_URL'));
const token = required('HERALD_TOKEN');
const receiverUrl = required('RECEIVER_URL');
const screenshot = required('SCREENSHOT');
const docsImage = process.env.DOCS_IMAGE;

function step(what) {
  console.log(`playground: ${what}`);
}

// The API from the test's side (not the page's): set-up and the trigger.
const api = (query, variables) => graphql(herald, token, query, variables);

// Polls until the locator's visible text matches, or fails with what it last showed.
async function waitForText(locator, pattern, what, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let last = '';
  while (Date.now() < deadline) {
    last = (await locator.innerText().catch(() => '')) ?? '';
    if (pattern.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: expected ${pattern}, saw:\n${last}`);
}

const external = [];
const problems = [];
const browser = await launch();
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // Every request and WebSocket to another host is refused and counted: the page must need none.
  await isolate(context, herald.host, external);
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  step('the destination the subscription will watch, created through the API');
  const created = await api(
    `mutation($name: String!, $url: String!) {
       createDestination(input: {displayName: $name, url: $url}) { destination { id } }
     }`,
    { name: `Playground sink ${Date.now()}`, url: receiverUrl },
  );
  const destinationId = created.createDestination.destination.id;

  step('the page asks for a token');
  await page.goto(new URL('/graphql', herald).href);
  const tokenField = page.getByLabel('API token');
  await tokenField.waitFor();
  await page.screenshot({ path: screenshot.replace(/\.png$/, '-sign-in.png') });
  const signIn = page.getByRole('button', { name: 'Sign in' });

  step('a wrong token is refused with a message');
  await tokenField.fill('hrld_not_a_real_token');
  await signIn.click();
  await waitForText(page.getByRole('alert'), /refused/i, 'the refusal');
  // The failed sign-in logged the 401 as a console error; it is expected, not a problem.
  problems.length = 0;

  step('the real token is accepted');
  await tokenField.fill(token);
  await signIn.click();
  const runButton = page.getByRole('button', { name: /execute query/i });
  await runButton.waitFor({ timeout: 20000 });
  await waitForText(page.getByRole('banner'), /playground-admin \(ADMIN\)/, 'who is signed in');

  const queryEditor = page.locator('.graphiql-query-editor .CodeMirror');
  const result = page.getByRole('region', { name: /result window/i });
  async function setQuery(text) {
    await queryEditor.click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // Inserted as one input, so the editor's bracket auto-closing does not double the braces.
    await page.keyboard.insertText(text);
    // GraphiQL parses the document a moment after an edit and, until then, judges whether the
    // operation is a subscription (sent over the WebSocket) by the previous text: pause as a
    // person would before running it.
    await new Promise((r) => setTimeout(r, 1000));
  }

  step('a query runs and its result shows');
  await setQuery('{ viewer { tokenName role } }');
  await runButton.click();
  await waitForText(result, /"tokenName": "playground-admin"[\s\S]*"role": "ADMIN"/, 'the query result');

  step('completion offers the schema\'s fields');
  await setQuery('{ vie');
  await page.keyboard.press('Control+Space');
  await waitForText(page.locator('.CodeMirror-hints'), /viewer/, 'the completion list');
  await page.keyboard.press('Escape');

  step('the Docs pane shows the schema');
  await page.getByRole('button', { name: /show documentation explorer/i }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await waitForText(docs, /Root Types[\s\S]*query:\s*Query/, 'the root types');
  await docs.getByRole('link', { name: 'Query', exact: true }).click();
  await waitForText(docs, /destinations/, "Query's fields");
  await docs.getByRole('link', { name: 'Destination', exact: true }).first().click();
  await waitForText(docs, /signingSecret/, "Destination's fields");

  step('a subscription from the page streams a test alert\'s delivery');
  await setQuery(
    `subscription {\n  deliveryUpdated(destinationId: "${destinationId}") {\n    id\n    state\n  }\n}\n`,
  );
  // The alert goes out once the page's socket has sent its `subscribe` (after connection_init
  // was acknowledged), plus a moment for the server to start the stream.
  const subscribed = new Promise((resolve) => {
    page.on('websocket', (ws) => {
      if (!ws.url().endsWith('/graphql/ws')) return;
      ws.on('framesent', (frame) => {
        if (String(frame.payload).includes('"subscribe"')) resolve();
      });
    });
  });
  await runButton.click();
  await page.getByRole('button', { name: /stop query/i }).waitFor();
  await Promise.race([
    subscribed,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no subscribe frame sent')), 20000)),
  ]);
  await new Promise((r) => setTimeout(r, 500));
  const sent = await api(
    `mutation($id: ID!) { sendTestAlert(input: {destinationId: $id}) { delivery { id state } } }`,
    { id: destinationId },
  );
  const deliveryId = sent.sendTestAlert.delivery.id;
  await waitForText(
    result,
    new RegExp(`"id": "${deliveryId}"[\\s\\S]*"state": "SUCCEEDED"`),
    'the SUCCEEDED update',
  );

  step("GraphiQL's fonts (inline in its stylesheet) loaded");
  const fonts = await page.evaluate(() =>
    [...document.fonts].filter((f) => f.status === 'loaded').map((f) => f.family),
  );
  for (const family of ['Roboto', 'Fira Code']) {
    if (!fonts.some((f) => f.includes(family))) {
      throw new Error(`${family} did not load; loaded: ${fonts.join(', ')}`);
    }
  }

  step("GraphiQL's dialogs open under the CSP (settings, keyboard shortcuts)");
  const before = problems.length;
  for (const name of [/open settings dialog/i, /open short keys dialog/i]) {
    await page.getByRole('button', { name }).click();
    await page.getByRole('dialog').waitFor();
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
  }
  // A dialog's scroll lock (react-remove-scroll-bar, inside GraphiQL) adds a <style> element,
  // which `style-src 'self'` refuses: kept refused on purpose, since the page's body never
  // scrolls there is nothing to lock. Those refusals, and only those, are expected here.
  const dialogProblems = problems.splice(before);
  const unexpected = dialogProblems.filter((p) => !/Applying inline style violates/.test(p));
  problems.push(...unexpected);
  step(`  (${dialogProblems.length - unexpected.length} refused inline <style> from the dialogs' scroll lock)`);

  step('the token is in sessionStorage only');
  const storage = await page.evaluate(() => ({
    local: JSON.stringify(localStorage),
    session: sessionStorage.getItem('herald.token'),
  }));
  if (storage.local.includes(token)) throw new Error('the token is in localStorage');
  if (storage.session !== token) throw new Error('the token is not in sessionStorage');

  step(`screenshot: ${screenshot}`);
  await page.screenshot({ path: screenshot });
  if (docsImage) await page.screenshot({ path: docsImage });

  step('sign out forgets the token and asks again');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  if (await page.evaluate(() => sessionStorage.getItem('herald.token'))) {
    throw new Error('the token survived Sign out');
  }
  if (!(await page.getByRole('link', { name: 'Console' }).getAttribute('href'))?.startsWith('/')) {
    throw new Error('no link to the console');
  }

  if (problems.length) throw new Error(`the page reported problems:\n${problems.join('\n')}`);
} catch (e) {
  failed = true;
  console.error(`playground: FAILED: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(`playground: requests to other hosts: ${external.length}`);
if (external.length) {
  console.error(`playground: the page asked other hosts for:\n${external.join('\n')}`);
  failed = true;
}
process.exit(failed ? 1 : 0);
