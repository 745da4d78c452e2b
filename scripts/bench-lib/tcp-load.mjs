// The client side of the forward benchmark, run in the client namespace
// against a forward's local port (tcp-bench-server.mjs behind it). Prints one
// JSON line.
//   node tcp-load.mjs throughput HOST PORT BYTES   → {ms, bytes, mibs}: BYTES to the sink until it counted them
//   node tcp-load.mjs pingpong HOST PORT N WARM SIZE → {p50, p99, rps} (µs): one message in flight, one connection
//   node tcp-load.mjs recover HOST PORT TIMEOUT_MS → reads "go T0" (ms since the epoch) on stdin, then opens
//       a connection every 50 ms (earlier ones left to wait, as an application's would) until one
//       echoes: {ms: first echo - T0, attempts} or {ms: null} after TIMEOUT_MS
import { connect } from 'node:net';
import { createInterface } from 'node:readline';

const [mode, host, portText, ...rest] = process.argv.slice(2);
const port = Number(portText);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

function open() {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

async function throughput(bytes) {
  const t = process.hrtime.bigint();
  const s = await open();
  const chunk = Buffer.alloc(256 * 1024, 0x61);
  let reply = '';
  s.setEncoding('utf8').on('data', (d) => (reply += d));
  const closed = new Promise((r, j) => {
    s.on('close', r);
    s.on('error', j);
  });
  for (let left = bytes; left > 0; left -= chunk.length) {
    const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
    if (!s.write(part)) await new Promise((r) => s.once('drain', r));
  }
  s.end();
  await closed;
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (Number(reply.trim()) !== bytes) throw new Error(`the sink counted ${reply.trim()} of ${bytes} bytes`);
  out({ ms, bytes, mibs: bytes / 1048576 / (ms / 1000) });
}

async function pingpong(n, warm, size) {
  const s = await open();
  const msg = Buffer.alloc(size, 0x62);
  let got = 0;
  let wake;
  s.on('data', (d) => {
    got += d.length;
    if (got >= size && wake) {
      got -= size;
      const w = wake;
      wake = undefined;
      w();
    }
  });
  const once = () =>
    new Promise((r) => {
      wake = r;
      s.write(msg);
    });
  for (let i = 0; i < warm; i++) await once();
  const rtts = [];
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await once();
    rtts.push(Number(process.hrtime.bigint() - t) / 1e3);
  }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  s.destroy();
  rtts.sort((a, b) => a - b);
  const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))];
  out({ p50: q(0.5), p99: q(0.99), rps: n / secs });
}

/** One attempt: connect, send 8 bytes, resolve true when they come back (false on error or close). */
function attempt(sockets) {
  return new Promise((resolve) => {
    const s = connect({ host, port, noDelay: true });
    sockets.add(s);
    let got = 0;
    const done = (ok) => {
      sockets.delete(s);
      s.destroy();
      resolve(ok);
    };
    s.on('connect', () => s.write('ping-123'));
    s.on('data', (d) => {
      got += d.length;
      if (got >= 8) done(true);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

async function recover(timeoutMs) {
  const lines = createInterface({ input: process.stdin });
  out({ ready: true });
  const go = await new Promise((r) => lines.once('line', r));
  const t0 = Number(/^go (\d+)$/.exec(go)?.[1]);
  const sockets = new Set();
  let attempts = 0;
  let won;
  const first = new Promise((r) => (won = r));
  const timer = setInterval(() => {
    attempts++;
    void attempt(sockets).then((ok) => ok && won(Date.now()));
  }, 50);
  const at = await Promise.race([first, new Promise((r) => setTimeout(() => r(null), timeoutMs))]);
  clearInterval(timer);
  for (const s of sockets) s.destroy();
  out({ ms: at === null ? null : at - t0, attempts });
  process.exit(0);
}

if (mode === 'throughput') await throughput(Number(rest[0]));
else if (mode === 'pingpong') await pingpong(Number(rest[0]), Number(rest[1]), Number(rest[2]));
else if (mode === 'recover') await recover(Number(rest[0]));
else throw new Error(`tcp-load: unknown mode ${mode}`);
