// Load client for bench/scaleout.py (hub channels across processes), on npm `ws`.
//
//   node load_hub.js --urls ws://127.0.0.1:P1/sub[,ws://127.0.0.1:P2/sub...]
//        --mode broadcast|sink -c CONNECTIONS -s SIZE -d SECONDS
//        [--warmup SECONDS] [--interval MS] [--round-timeout MS]
//
// Connection i goes to urls[i % urls.length]; the server joins each one to
// one hub channel. When all are open it prints "OPEN n" and waits for a line
// on stdin (the runner checks that every node has subscribed in Redis).
//
// broadcast: connection 0 (on urls[0]) sends one binary message at a time
//   (SIZE bytes: a send time in ns and a round number first); the server
//   publishes it to the channel; the next round starts once every connection
//   received it (after --interval ms if given). Every delivery counts, and its
//   latency (receive time - send time, one clock: this process) is kept per
//   url. A round not complete within --round-timeout ms is counted as lost and
//   the next one starts (late copies of it are ignored).
// sink: hold the connections and count what they receive between the first
//   line on stdin and its end (the runner aligns that with another client's
//   window), then print "RESULT {json}".
//
// broadcast prints "MEASURE" when the measured window starts and
// "RESULT {json}" at its end; the runner samples the servers' CPU time at both.
'use strict';
const WebSocket = require('ws');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}
const urls = opt('--urls', 'ws://127.0.0.1:9000/sub').split(',');
const mode = opt('--mode', 'broadcast');
const conns = parseInt(opt('-c', '1000'), 10);
const size = Math.max(12, parseInt(opt('-s', '32'), 10));
const duration = parseFloat(opt('-d', '5'));
const warmup = parseFloat(opt('--warmup', '1'));
const interval = parseFloat(opt('--interval', '0'));
const roundTimeout = parseFloat(opt('--round-timeout', '2000'));

let measuring = false;
let count = 0;
let t0 = 0;
const latencies = urls.map(() => []); // microseconds, per url, measured window only
const counts = urls.map(() => 0);

function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

function summary(list) {
  const sorted = Float64Array.from(list).sort();
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1] : null,
  };
}

function finish(extra) {
  const secs = (Date.now() - t0) / 1000;
  const result = Object.assign(
    { mode, conns, size, count, secs, rate: count / secs, per_url: counts },
    extra || {},
  );
  if (mode === 'broadcast') result.latency_us = latencies.map(summary);
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(0);
}

function startWindow(extra) {
  setTimeout(() => {
    measuring = true;
    count = 0;
    counts.fill(0);
    t0 = Date.now();
    console.log('MEASURE');
    setTimeout(() => finish(extra && extra()), duration * 1000);
  }, warmup * 1000);
}

function openAll(n, cb) {
  const sockets = [];
  let open = 0;
  let started = 0;
  // open in batches so the listen backlogs are not overrun
  function more() {
    while (started < n && started - open < 200) {
      const index = started % urls.length;
      started++;
      const ws = new WebSocket(urls[index], { perMessageDeflate: false });
      ws.urlIndex = index;
      ws.on('open', () => {
        open++;
        if (open === n) cb(sockets);
        else more();
      });
      ws.on('error', (e) => { console.error('ws error', e.message); process.exit(2); });
      ws.on('close', (code) => {
        if (!finished) { console.error('connection closed by the server', code); process.exit(2); }
      });
      sockets.push(ws);
    }
  }
  more();
}

let finished = false;
process.on('exit', () => { finished = true; });

function afterGo(cb) {
  // the runner writes a line once every node is subscribed in Redis
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    buf += d;
    if (buf.includes('\n') && cb) { const f = cb; cb = null; f(); }
  });
  process.stdin.on('end', () => process.exit(0));
}

if (mode === 'broadcast') {
  openAll(conns, (sockets) => {
    const sender = sockets[0];
    const payload = Buffer.alloc(size, 0x61);
    let seq = 0;
    let pending = 0;
    let timer = null;
    let lost = 0;
    let rounds = 0;
    function round() {
      seq = (seq + 1) >>> 0;
      pending = sockets.length;
      payload.writeBigUInt64LE(process.hrtime.bigint(), 0);
      payload.writeUInt32LE(seq, 8);
      timer = setTimeout(() => {
        if (measuring) lost += pending;
        next();
      }, roundTimeout);
      sender.send(payload);
    }
    function next() {
      if (timer) clearTimeout(timer);
      timer = null;
      if (interval > 0) setTimeout(round, interval);
      else round();
    }
    for (const ws of sockets) {
      ws.on('message', (data) => {
        if (data.readUInt32LE(8) !== seq) return; // a late copy of a lost round
        if (measuring) {
          const sent = data.readBigUInt64LE(0);
          latencies[ws.urlIndex].push(Number(process.hrtime.bigint() - sent) / 1000);
          count++;
          counts[ws.urlIndex]++;
        }
        if (--pending === 0) {
          if (measuring) rounds++;
          next();
        }
      });
    }
    console.log('OPEN ' + sockets.length);
    afterGo(() => {
      round();
      startWindow(() => ({ rounds, lost }));
    });
  });
} else if (mode === 'sink') {
  openAll(conns, (sockets) => {
    for (const ws of sockets) {
      ws.on('message', () => {
        if (measuring) { count++; counts[ws.urlIndex]++; }
      });
    }
    console.log('OPEN ' + sockets.length);
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', () => {
      if (!measuring) { measuring = true; t0 = Date.now(); }
    });
    process.stdin.on('end', () => finish());
  });
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
