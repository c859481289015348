// A receiver as Herald's users write one: Node's http module and the stock verification libraries.
// Listens on 127.0.0.1 (port from argv, 0 = any), prints the port, answers 200 "success" when both
// libraries accept the signature, 401 with the reason otherwise. GET /verifications lists outcomes.
'use strict';
const http = require('http');
const { Webhook: StandardWebhook } = require('standardwebhooks');
const { Webhook: SvixWebhook } = require('svix');

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error('WEBHOOK_SECRET is required');
  process.exit(2);
}
const verifications = [];

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/verifications') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(verifications));
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    // Verify against the raw body: re-serialising would break the signature.
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = {
      'webhook-id': req.headers['webhook-id'],
      'webhook-timestamp': req.headers['webhook-timestamp'],
      'webhook-signature': req.headers['webhook-signature'],
    };
    const outcome = { webhookId: headers['webhook-id'] };
    for (const [name, Lib] of [['standardwebhooks', StandardWebhook], ['svix', SvixWebhook]]) {
      try {
        new Lib(secret).verify(raw, headers);
        outcome[name] = 'ok';
      } catch (e) {
        outcome[name] = String(e && e.message ? e.message : e);
      }
    }
    verifications.push(outcome);
    if (outcome.standardwebhooks === 'ok' && outcome.svix === 'ok') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('success');
    } else {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end(`signature rejected: ${JSON.stringify(outcome)}`);
    }
  });
});

server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(String(server.address().port));
});
