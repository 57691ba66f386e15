/**
 * The floor under any Node.js fleet CLI on this machine: a new node process
 * that makes N mutual-TLS handshakes (the controller's certificate, the fleet
 * CA, checked as Node checks every server) against the same simulated agents
 * and closes them, sending nothing. `npm run bench` times it beside qfleet
 * list, so the figures say how much of a list is TLS and process start-up.
 *
 *   node dist/bench/tls-floor.js PKI_DIR PORT NAME=ADDR [NAME=ADDR ...]
 */
import { connect } from 'node:tls';
import { floorArgs } from './floor-args.js';

const { secureContext, port, hosts } = floorArgs('tls-floor');
let failed = 0;
await Promise.all(
  hosts.map(({ name, addr }) => {
    return new Promise<void>((resolve) => {
      const s = connect({ host: addr, port, servername: name, secureContext, ALPNProtocols: ['h2'] }, () => {
        s.destroy();
        resolve();
      });
      s.on('error', () => {
        failed++;
        resolve();
      });
    });
  }),
);
if (failed) process.stderr.write(`tls-floor: ${failed} of ${hosts.length} handshakes failed\n`);
// Out at once, as qfleet and the grpc-js floor are.
process.exit(failed ? 1 : 0);
