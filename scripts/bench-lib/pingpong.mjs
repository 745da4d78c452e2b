// UDP ping-pong for the relay benchmark: `node pingpong.mjs HOST PORT N WARMUP SIZE`.
// One datagram in flight; each round waits at most 2 s (then counts as lost and
// moves on). Prints one JSON line: {p50, p99, max, stalls, rps, lost} (µs, round
// trips/s; stalls: round trips over 10 ms, the mark of a delayed ACK or a hitch).
import { createSocket } from 'node:dgram';

const [host, portText, nText, warmText, sizeText] = process.argv.slice(2);
const port = Number(portText);
const n = Number(nText);
const warm = Number(warmText);
const payload = Buffer.alloc(Number(sizeText ?? 1300), 0x61);
const sock = createSocket('udp4');
let waiting;
sock.on('message', (msg) => {
  if (waiting && msg.readUInt32BE(0) === waiting.seq) {
    const w = waiting;
    waiting = undefined;
    clearTimeout(w.timer);
    w.resolve(true);
  }
});
let seq = 0;
const once = () =>
  new Promise((resolve) => {
    seq = (seq + 1) >>> 0;
    payload.writeUInt32BE(seq, 0);
    const timer = setTimeout(() => {
      waiting = undefined;
      resolve(false);
    }, 2000);
    waiting = { seq, resolve, timer };
    sock.send(payload, port, host);
  });

await new Promise((r) => sock.bind(0, r));
// First contact: retry until the path answers (the echo server may still be starting).
const deadline = Date.now() + 15000;
while (!(await once())) if (Date.now() > deadline) throw new Error(`no echo from ${host}:${port}`);
for (let i = 0; i < warm; i++) await once();
const rtts = [];
let lost = 0;
const start = process.hrtime.bigint();
for (let i = 0; i < n; i++) {
  const t = process.hrtime.bigint();
  if (await once()) rtts.push(Number(process.hrtime.bigint() - t) / 1e3);
  else lost++;
}
const secs = Number(process.hrtime.bigint() - start) / 1e9;
rtts.sort((a, b) => a - b);
const q = (p) => rtts[Math.min(rtts.length - 1, Math.floor(p * rtts.length))];
const stalls = rtts.filter((r) => r > 10_000).length;
console.log(
  JSON.stringify({ p50: q(0.5), p99: q(0.99), max: rtts.at(-1), stalls, rps: rtts.length / secs, lost }),
);
sock.close();
