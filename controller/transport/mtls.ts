import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import type { ClientFactory, Dial } from './factory.js';
import { unbracket, type HostTarget } from '../fleet/host-target.js';
import { PkiError } from '../pki/errors.js';
import { pkiPath } from '../pki/paths.js';
import { agentService } from '../../proto/agent-service.js';
import { checkAgentIdentity } from './identity.js';
import { FLEET_CHANNEL_OPTIONS } from './channel-options.js';

/**
 * The gRPC target for a host. An IP address is given grpc-js's `ipv4:` or
 * `ipv6:` scheme: with the default `dns:` scheme every channel builds its own
 * DNS resolver (a c-ares channel, reading resolv.conf) just to find that the
 * name is already an address, which at hundreds of hosts is measurable.
 */
export function agentTarget(host: Pick<HostTarget, 'address' | 'agentPort'>): string {
  const a = unbracket(host.address);
  switch (isIP(a)) {
    case 4: return `ipv4:${a}:${host.agentPort}`;
    case 6: return `ipv6:[${a}]:${host.agentPort}`;
    default: return `${a}:${host.agentPort}`;
  }
}

/**
 * The fleet's TLS context: the fleet CA (pki/ca.crt) as the only root, the
 * controller's operator certificate (pki/client.crt/.key) as the client
 * identity. Read at the first use and kept (parsing the key and CA is most of
 * a context's cost), so a missing PKI fails each remote host with a clear
 * reason and leaves unix-socket hosts alone.
 */
export function fleetTlsContext(pkiDir: string): () => SecureContext {
  let context: SecureContext | undefined;
  return () => {
    if (context) return context;
    const need = [pkiPath(pkiDir, 'caCert'), pkiPath(pkiDir, 'clientKey'), pkiPath(pkiDir, 'clientCert')];
    const missing = need.filter((f) => !existsSync(f));
    if (missing.length) throw new PkiError(`no controller PKI in ${pkiDir} (missing ${missing.join(', ')}): run \`qfleet pki init\`.`);
    const [ca, key, cert] = need.map((f) => readFileSync(f)) as [Buffer, Buffer, Buffer];
    return (context = createSecureContext({ ca, key, cert }));
  };
}

/** Everything a grpc-js client needs to reach one agent over mutual TLS. */
export interface MtlsChannel {
  readonly target: string;
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
}

/**
 * The one mutual-TLS builder: the fleet's TLS context and the identity rule
 * (identity.ts: the agent's certificate must name the host's inventory name
 * and the address dialled), for the agent service and the health probe alike.
 *
 * grpc.ssl_target_name_override is set only when the address is an IP and the
 * name is not, and only so that TLS's SNI carries the host's name: an IP in
 * SNI is forbidden by RFC 6066 (Node warns, DEP0123). It does not weaken the
 * check: grpc-js hands the override to our checkServerIdentity, which ignores
 * it and checks the name and the address itself.
 */
export function mtlsChannel(secureContext: SecureContext, host: Pick<HostTarget, 'name' | 'address' | 'agentPort'>, dial?: Dial): MtlsChannel {
  const checkServerIdentity = (_sni: string, peer: PeerCertificate) => checkAgentIdentity(host, peer);
  const address = unbracket(host.address);
  const servername = isIP(address) ? (isIP(host.name) ? undefined : host.name) : address;
  // A name resolved by the caller (fleet/resolve.ts) is dialled by its IP; identity and SNI stay the name's.
  const dialled = dial ? unbracket(dial.ip) : address;
  const sni = isIP(dialled) && servername ? { 'grpc.ssl_target_name_override': servername } : {};
  return {
    target: agentTarget({ address: dialled, agentPort: host.agentPort }),
    credentials: grpc.credentials.createFromSecureContext(secureContext, { checkServerIdentity }),
    options: { ...FLEET_CHANNEL_OPTIONS, ...sni },
  };
}

/**
 * Clients of the agent service over mutual TLS (mtlsChannel): one grpc-js
 * channel per host, for unary calls and streams alike. grpc-js was measured
 * against @connectrpc/connect-node's gRPC transport and the hand-written
 * HTTP/2 client that was here before: see the README's benchmark section.
 */
export function mtlsClientFactory(pkiDir: string): ClientFactory {
  const context = fleetTlsContext(pkiDir);
  const { Client: Service } = agentService();
  return (host, dial) => {
    const ch = mtlsChannel(context(), host, dial);
    return new Service(ch.target, ch.credentials, ch.options);
  };
}
