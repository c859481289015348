// A small graphql-transport-ws client for Herald's subscriptions at /graphql/ws. Browsers cannot
// set headers on a WebSocket, so the token goes in the connection_init payload, as the server
// reads it there.

import { token } from './api.js';

/**
 * Subscribes to `query` with `variables`; calls `onData(data)` for each event and
 * `onStatus(text)` when the connection changes ('connecting', 'live', 'reconnecting', 'refused').
 * Reconnects with a growing delay while the page lasts. Returns a function that stops it.
 */
export function subscribe(query, variables, onData, onStatus = () => {}) {
  let ws = null;
  let stopped = false;
  let failures = 0;
  let timer = null;

  const open = () => {
    onStatus('connecting');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    ws = new WebSocket(`${scheme}://${location.host}/graphql/ws`, 'graphql-transport-ws');
    ws.addEventListener('open', () => {
      const payload = { Authorization: `Bearer ${token.get() ?? ''}` };
      ws.send(JSON.stringify({ type: 'connection_init', payload }));
    });
    ws.addEventListener('message', (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      switch (msg.type) {
        case 'connection_ack':
          failures = 0;
          ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query, variables } }));
          onStatus('live');
          break;
        case 'next':
          if (msg.payload?.data) onData(msg.payload.data);
          break;
        case 'ping':
          ws.send(JSON.stringify({ type: 'pong' }));
          break;
        case 'error':
          onStatus('refused');
          stopped = true;
          ws.close(1000);
          break;
        default:
          break;
      }
    });
    ws.addEventListener('close', (event) => {
      if (stopped) return;
      // 4403 and 4401: the server refused the token; retrying would not change that.
      if (event.code === 4403 || event.code === 4401) {
        onStatus('refused');
        return;
      }
      failures += 1;
      onStatus('reconnecting');
      timer = setTimeout(open, Math.min(10000, 250 * 2 ** failures));
    });
  };

  open();
  return () => {
    stopped = true;
    clearTimeout(timer);
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
  };
}
