// A counting reverse proxy for the benchmarks (Node 20, no packages): every request to the proxy's
// port is forwarded unchanged to the target (method, path and query, headers and body, streamed),
// and its response streamed back. The Host header is passed on as the client sent it: SigV4 signs
// it, so the client addresses the proxy and the target checks the signature over the same Host.
//
// A separate control port answers:
//   GET  /__count   {"count": N, "methods": {"GET": n, ...}} since the last reset
//   POST /__reset   the same, then sets the counts to zero
//
// Usage: node count-proxy.mjs --target http://127.0.0.1:PORT [--port 0] [--control-port 0]
// Prints one JSON line when both ports listen: {"port": P, "control": C}.

import http from 'node:http';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const target = new URL(option('target', ''));
if (!target.hostname || target.protocol !== 'http:') {
  console.error('count-proxy: --target http://host:port is required');
  process.exit(2);
}

let count = 0;
let methods = {};
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

const proxy = http.createServer((req, res) => {
  count++;
  methods[req.method] = (methods[req.method] ?? 0) + 1;
  const upstream = http.request({
    host: target.hostname,
    port: target.port || 80,
    method: req.method,
    path: req.url,
    headers: req.headers, // Host included, as the client sent (and signed) it
    agent,
  }, (up) => {
    res.writeHead(up.statusCode, up.statusMessage, up.rawHeaders);
    up.pipe(res);
  });
  upstream.on('error', (err) => {
    if (!res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`count-proxy: ${err.message}`);
    } else {
      res.destroy(err);
    }
  });
  req.pipe(upstream);
});
proxy.keepAliveTimeout = 30_000;

const control = http.createServer((req, res) => {
  const body = JSON.stringify({ count, methods });
  if (req.method === 'GET' && req.url === '/__count') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  } else if (req.method === 'POST' && req.url === '/__reset') {
    count = 0;
    methods = {};
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  } else {
    res.writeHead(404).end();
  }
});

const listen = (server, port) => new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(port), '127.0.0.1', () => resolve(server.address().port));
});

const port = await listen(proxy, option('port', '0'));
const controlPort = await listen(control, option('control-port', '0'));
console.log(JSON.stringify({ port, control: controlPort }));
