// What the browser tests share: the environment they are given, Debian's Chromium launched the
// way these machines need, a browser context that may talk to Herald only, and GraphQL from the
// test's side (what an automation does beside the person at the page).
import { chromium } from 'playwright-core';

/** An environment variable the Rust harness must set. */
export function required(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/**
 * Debian's headless Chromium (playwright-core's own browser download needs the internet). The
 * flags keep it from calling Google's hosts at start, which the closed network would refuse.
 */
export function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Aborts every request and WebSocket of `context` to a host other than `host` and pushes its URL
 * to `external`: the pages must need no other host, so the test fails unless it stays empty.
 */
export async function isolate(context, host, external) {
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.host !== host) {
      external.push(url.href);
      return route.abort();
    }
    return route.continue();
  });
  await context.routeWebSocket(
    (url) => url.host !== host,
    (ws) => {
      external.push(ws.url());
      ws.close();
    },
  );
}

/** A GraphQL operation sent to Herald with `token`; its `data`, or an error with the errors. */
export async function graphql(base, token, query, variables = {}) {
  const r = await fetch(new URL('/graphql', base), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json();
  if (body.errors) throw new Error(`API error: ${JSON.stringify(body.errors)}`);
  return body.data;
}
