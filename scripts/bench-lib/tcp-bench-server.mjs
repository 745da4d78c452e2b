// TCP servers for the forward benchmark: `node tcp-bench-server.mjs SINK_PORT ECHO_PORT`,
// both on 127.0.0.1 (run in the target's namespace, started with lab.spawn and
// stopped by pid). The sink counts what a connection sends and, when the
// sender half-closes, answers the count as text; the echo sends back every byte.
import { createServer } from 'node:net';

const [sinkPort, echoPort] = process.argv.slice(2).map(Number);
createServer({ allowHalfOpen: true }, (c) => {
  let n = 0;
  c.on('data', (d) => (n += d.length));
  c.on('end', () => c.end(`${n}\n`));
  c.on('error', () => undefined);
}).listen(sinkPort, '127.0.0.1');
createServer((c) => {
  c.setNoDelay(true);
  c.on('error', () => undefined);
  c.pipe(c);
}).listen(echoPort, '127.0.0.1');
