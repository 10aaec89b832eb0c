// HTTP load client for the publish API (bench/scaleout.py), on Node's http.
//
//   node load_http.js --url http://127.0.0.1:PORT/push --key KEY --body JSON
//        -c CONCURRENCY -d SECONDS [--warmup SECONDS] [--expect N]
//
// CONCURRENCY loops each POST the body with "Authorization: Bearer KEY", one
// request per connection (the publish API answers and closes: no keep-alive),
// and start the next request when the answer is in. Counts answers by status,
// and with --expect N the 200 answers whose "delivered" is not N (a publish
// that did not reach every subscriber, or whose acks did not all arrive).
// Prints "MEASURE" when the measured window starts and "RESULT {json}" at its
// end (requests per second of 200 answers, latency percentiles in µs).
'use strict';
const http = require('http');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}
const url = new URL(opt('--url', 'http://127.0.0.1:8080/push'));
const key = opt('--key', '');
const body = Buffer.from(opt('--body', '{"channel":"bench","data":"hello"}'));
const concurrency = parseInt(opt('-c', '32'), 10);
const duration = parseFloat(opt('-d', '5'));
const warmup = parseFloat(opt('--warmup', '1'));
const expect = opt('--expect', null);

let measuring = false;
let stopped = false;
let t0 = 0;
let ok = 0;
let wrongCount = 0;
const statuses = {};
const errors = {};
const latencies = [];

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function one() {
  if (stopped) return;
  const start = process.hrtime.bigint();
  const req = http.request({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    agent: false, // a new connection per request
    headers: {
      'Authorization': 'Bearer ' + key,
      'Content-Type': 'application/json',
      'Content-Length': body.length,
    },
  }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      if (measuring) {
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        if (res.statusCode === 200) {
          ok++;
          latencies.push(Number(process.hrtime.bigint() - start) / 1000);
          if (expect !== null) {
            let delivered = null;
            try { delivered = JSON.parse(Buffer.concat(chunks)).delivered; } catch (e) { /* counted below */ }
            if (String(delivered) !== expect) wrongCount++;
          }
        }
      }
      one();
    });
  });
  req.on('error', (e) => {
    if (measuring) errors[e.code || e.message] = (errors[e.code || e.message] || 0) + 1;
    setTimeout(one, 10);
  });
  req.end(body);
}

for (let i = 0; i < concurrency; i++) one();
setTimeout(() => {
  measuring = true;
  t0 = Date.now();
  console.log('MEASURE');
  setTimeout(() => {
    measuring = false;
    stopped = true;
    const secs = (Date.now() - t0) / 1000;
    const sorted = Float64Array.from(latencies).sort();
    console.log('RESULT ' + JSON.stringify({
      count: ok, secs, rate: ok / secs, statuses, errors, wrong_count: wrongCount,
      latency_us: { n: sorted.length, p50: percentile(sorted, 50), p90: percentile(sorted, 90),
        p99: percentile(sorted, 99), max: sorted.length ? sorted[sorted.length - 1] : null },
    }));
    process.exit(0);
  }, duration * 1000);
}, warmup * 1000);
