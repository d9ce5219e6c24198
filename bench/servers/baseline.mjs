// The conventional servers Lamina is compared with (plain Node, no tsx, no framework):
//   --mode bare    answers every request at once (the loopback ceiling for the warm test)
//   --mode serial  one request at a time, strictly in arrival order, even for a handler
//                  that only waits: the Elastic Beanstalk analogue of the elasticity test.
//                  The handler runs on one worker thread, so the main thread keeps reading
//                  requests while a call computes and the queue is truly first come, first served.
// --fn FILE imports a handler module (the same file Lamina runs); without it, echo the event.
// Prints `listening on URL` once ready; SIGTERM stops it.
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

async function loadHandler(fn) {
  const mod = fn ? await import(pathToFileURL(fn).href) : undefined;
  return mod ? (mod.handler ?? mod.default) : async (event) => event;
}

if (!isMainThread) {
  // The serial server's one worker: runs calls one after another as the main thread sends them.
  const handler = await loadHandler(workerData.fn);
  parentPort.on('message', async (event) => {
    try {
      parentPort.postMessage({ ok: true, value: await handler(event, {}) });
    } catch (err) {
      parentPort.postMessage({ ok: false, message: String(err?.message ?? err) });
    }
  });
} else {
  const { values: o } = parseArgs({ options: { mode: { type: 'string', default: 'bare' }, fn: { type: 'string' }, port: { type: 'string', default: '0' } } });

  function send(res, status, value) {
    const body = JSON.stringify(value ?? null);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  let run;
  if (o.mode === 'serial') {
    const worker = new Worker(new URL(import.meta.url), { workerData: { fn: o.fn } });
    const queue = [];
    let current;
    const next = () => {
      if (current || queue.length === 0) return;
      current = queue.shift();
      worker.postMessage(current.event);
    };
    worker.on('message', (m) => {
      const { res } = current;
      current = undefined;
      if (m.ok) send(res, 200, m.value);
      else send(res, 500, { error: { type: 'HandlerError', message: m.message } });
      next();
    });
    run = (event, res) => {
      queue.push({ event, res });
      next();
    };
  } else {
    const handler = await loadHandler(o.fn);
    run = async (event, res) => {
      try {
        send(res, 200, await handler(event, {}));
      } catch (err) {
        send(res, 500, { error: { type: 'HandlerError', message: String(err?.message ?? err) } });
      }
    };
  }

  // No request timeout: in the serial server a call may wait in line for many seconds.
  const server = http.createServer({ requestTimeout: 0, keepAliveTimeout: 120_000 }, (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let event = {};
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() !== '') {
        try {
          event = JSON.parse(text);
        } catch {
          return send(res, 400, { error: { type: 'BadRequest', message: 'invalid JSON' } });
        }
      }
      void run(event, res);
    });
  });
  server.listen(Number(o.port), '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
  process.on('SIGTERM', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 1000).unref();
  });
}
