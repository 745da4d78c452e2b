// A UDP echo server for the relay benchmark: `node udp-echo.mjs PORT`. Runs in
// a lab namespace (started with lab.spawn, stopped by pid at destroy).
import { createSocket } from 'node:dgram';

const sock = createSocket('udp4');
sock.on('message', (msg, from) => sock.send(msg, from.port, from.address));
sock.bind(Number(process.argv[2]), '0.0.0.0');
