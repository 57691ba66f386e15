import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';

/** What both floors (tls-floor.ts, grpc-floor.ts) are given: PKI_DIR PORT NAME=ADDR [NAME=ADDR ...]. */
export interface FloorArgs {
  /** The controller's identity and the fleet CA, from the PKI, as qfleet's own context has them. */
  readonly secureContext: SecureContext;
  readonly port: number;
  readonly hosts: readonly { readonly name: string; readonly addr: string }[];
}

export function floorArgs(script: string, argv = process.argv.slice(2)): FloorArgs {
  const [pkiDir, portText, ...hosts] = argv;
  if (!pkiDir || !portText || !hosts.length) throw new Error(`usage: ${script} PKI_DIR PORT NAME=ADDR ...`);
  const secureContext = createSecureContext({
    ca: readFileSync(join(pkiDir, 'ca.crt')),
    key: readFileSync(join(pkiDir, 'client.key')),
    cert: readFileSync(join(pkiDir, 'client.crt')),
  });
  return {
    secureContext,
    port: Number(portText),
    hosts: hosts.map((h) => {
      const [name, addr] = h.split('=') as [string, string];
      return { name, addr };
    }),
  };
}
