/**
 * The floor under any grpc-js fleet client on this machine: a new node process
 * that, per host, opens one grpc-js channel tuned as qfleet's (its very
 * options, controller/transport/channel-options.ts: no retries, no
 * service-config lookup, no proxy, channelz off, a local subchannel pool;
 * an `ipv4:` target) over the same mutual TLS as bench/tls-floor.ts (Node's own identity check of the
 * host's name), makes one unary call, grpc.health.v1.Health/Check, with raw
 * bytes (no protobuf), and closes it. No inventory, no CLI, no decoding: what
 * is left is the transport itself. `npm run bench` times it beside qfleet list
 * and the TLS floor, so the figures say how much of a list is grpc-js and how
 * much is qfleet. Run bundled as the CLI is (bundleLikeCli in
 * deploy/bundle/build.ts, called by fleet-list.ts).
 *
 *   node grpc-floor.js PKI_DIR PORT NAME=ADDR [NAME=ADDR ...]
 */
import * as grpc from '@grpc/grpc-js';
import { FLEET_CHANNEL_OPTIONS } from '../controller/transport/channel-options.js';
import { floorArgs } from './floor-args.js';

const { secureContext, port, hosts } = floorArgs('grpc-floor');
const raw = (b: Buffer) => b;
const Health = grpc.makeGenericClientConstructor(
  { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
  'Health',
);
let failed = 0;
// Not a top-level await: the bench bundles this as CommonJS, as the CLI is.
void Promise.all(
  hosts.map(({ name, addr }) => {
    const client = new Health(`ipv4:${addr}:${port}`, grpc.credentials.createFromSecureContext(secureContext), { ...FLEET_CHANNEL_OPTIONS, 'grpc.ssl_target_name_override': name });
    return new Promise<void>((resolve) => {
      // An empty HealthCheckRequest is zero bytes.
      (client as unknown as { Check: (req: Buffer, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void }).Check(Buffer.alloc(0), { deadline: Date.now() + 60_000 }, (err) => {
        if (err) {
          failed++;
          if (failed === 1) process.stderr.write(`grpc-floor: ${name}: ${err.message}\n`);
        }
        client.close();
        resolve();
      });
    });
  }),
).then(() => {
  if (failed) process.stderr.write(`grpc-floor: ${failed} of ${hosts.length} calls failed\n`);
  // Out at once, as qfleet is (controller/main.ts runAsProgram): its connections' teardown is not timed either.
  process.exit(failed ? 1 : 0);
});
