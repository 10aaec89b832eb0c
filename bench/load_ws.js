// Load client for ratchetpy's benchmarks, on npm `ws` (fast enough that the
// Python server, not the client, is the bottleneck).
//
//   node load_ws.js --url ws://127.0.0.1:PORT/ --mode echo|broadcast|idle|handshake
//        -c CONNECTIONS -s SIZE -d SECONDS [--warmup SECONDS] [--binary]
//
// echo: each connection keeps one message in flight (send, wait for the echo,
//   send again). broadcast: connection 0 sends one message at a time to
//   /broadcast and waits until every connection received it (each delivery
//   counts). idle: open C connections and hold them until stdin closes.
//   handshake: open and close connections, DEPTH (=c) at a time.
// Prints "MEASURE" when the measured window starts and "RESULT {json}" at
// its end; the runner samples the server's CPU time at both.
'use strict';
const WebSocket = require('ws');

const args = process.argv.slice(2);
function opt(name, dflt) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
}
const url = opt('--url', 'ws://127.0.0.1:9000/');
const mode = opt('--mode', 'echo');
const conns = parseInt(opt('-c', '100'), 10);
const size = parseInt(opt('-s', '32'), 10);
const duration = parseFloat(opt('-d', '5'));
const warmup = parseFloat(opt('--warmup', '1'));
const binary = args.includes('--binary') || mode === 'broadcast';

const payload = binary ? Buffer.alloc(size, 0x61) : 'a'.repeat(size);
let measuring = false;
let count = 0;
let t0 = 0;

function finish(extra) {
  const secs = (Date.now() - t0) / 1000;
  console.log('RESULT ' + JSON.stringify(Object.assign({ mode, conns, size, count, secs, rate: count / secs }, extra || {})));
  process.exit(0);
}

function startWindow() {
  setTimeout(() => {
    measuring = true;
    count = 0;
    t0 = Date.now();
    console.log('MEASURE');
    setTimeout(() => finish(), duration * 1000);
  }, warmup * 1000);
}

function openAll(path, n, cb) {
  const sockets = [];
  let open = 0;
  let started = 0;
  // open in batches so the listen backlog is not overrun
  function more() {
    while (started < n && started - open < 200) {
      started++;
      const ws = new WebSocket(url.replace(/\/?$/, path), { perMessageDeflate: false });
      ws.on('open', () => {
        open++;
        if (open === n) cb(sockets);
        else more();
      });
      ws.on('error', (e) => { console.error('ws error', e.message); process.exit(2); });
      sockets.push(ws);
    }
  }
  more();
}

if (mode === 'echo') {
  openAll('/', conns, (sockets) => {
    for (const ws of sockets) {
      ws.on('message', () => {
        if (measuring) count++;
        ws.send(payload);
      });
      ws.send(payload);
    }
    startWindow();
  });
} else if (mode === 'broadcast') {
  openAll('/broadcast', conns, (sockets) => {
    let pending = 0;
    const sender = sockets[0];
    function round() {
      pending = sockets.length;
      sender.send(payload);
    }
    for (const ws of sockets) {
      ws.on('message', () => {
        if (measuring) count++;
        if (--pending === 0) round();
      });
    }
    round();
    startWindow();
  });
} else if (mode === 'idle') {
  openAll('/', conns, (sockets) => {
    console.log('OPEN ' + sockets.length);
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  });
} else if (mode === 'handshake') {
  let stop = false;
  let inflight = 0;
  function one() {
    if (stop) return;
    inflight++;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.on('open', () => { if (measuring) count++; ws.terminate(); });
    ws.on('close', () => { inflight--; one(); });
    ws.on('error', () => {});
  }
  for (let i = 0; i < conns; i++) one();
  startWindow();
} else {
  console.error('unknown mode ' + mode);
  process.exit(2);
}
