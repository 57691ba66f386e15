/**
 * The floor under any grpc-js fleet client on this machine: a new node process
 * that, per host, opens one grpc-js channel tuned as qfleet's
 * (controller/transport/mtls.ts: no retries, no service-config lookup, no
 * proxy, channelz off, a local subchannel pool, an `ipv4:` target) over the
 * same mutual TLS as bench/tls-floor.ts (Node's own identity check of the
 * host's name), makes one unary call, grpc.health.v1.Health/Check, with raw
 * bytes (no protobuf), and closes it. No inventory, no CLI, no decoding: what
 * is left is the transport itself. `npm run bench` times it beside qfleet list
 * and the TLS floor, so the figures say how much of a list is grpc-js and how
 * much is qfleet. Run bundled as the CLI is, with its one change to grpc-js
 * (fleet-list.ts).
 *
 *   node grpc-floor.js PKI_DIR PORT NAME=ADDR [NAME=ADDR ...]
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';

const [pkiDir, portText, ...hosts] = process.argv.slice(2);
if (!pkiDir || !portText || !hosts.length) throw new Error('usage: grpc-floor PKI_DIR PORT NAME=ADDR ...');
const secureContext = createSecureContext({
  ca: readFileSync(join(pkiDir, 'ca.crt')),
  key: readFileSync(join(pkiDir, 'client.key')),
  cert: readFileSync(join(pkiDir, 'client.crt')),
});
const raw = (b: Buffer) => b;
const Health = grpc.makeGenericClientConstructor(
  { Check: { path: '/grpc.health.v1.Health/Check', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
  'Health',
);
// The same options as qfleet's channels (FLEET_CHANNEL_OPTIONS in controller/transport/mtls.ts).
const options: grpc.ChannelOptions = {
  'grpc.enable_channelz': 0,
  'grpc.use_local_subchannel_pool': 1,
  'grpc.enable_retries': 0,
  'grpc.service_config_disable_resolution': 1,
  'grpc.enable_http_proxy': 0,
};
let failed = 0;
// Not a top-level await: the bench bundles this as CommonJS, as the CLI is.
void Promise.all(
  hosts.map((h) => {
    const [name, addr] = h.split('=') as [string, string];
    const client = new Health(`ipv4:${addr}:${portText}`, grpc.credentials.createFromSecureContext(secureContext), { ...options, 'grpc.ssl_target_name_override': name });
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
  if (failed) {
    process.stderr.write(`grpc-floor: ${failed} of ${hosts.length} calls failed\n`);
    process.exitCode = 1;
  }
});
