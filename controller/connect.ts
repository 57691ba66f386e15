import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import type { ClientFactory } from './fleet/client-factory.js';
import { unbracket, type HostTarget } from './fleet/host-target.js';
import { PkiError } from './pki/errors.js';
import { UsageError } from './context.js';
import { h2UnaryClient } from './h2-unary-client.js';
import { packageVersion } from './version.js';
import type { AgentServiceClient } from './client.js';
import { pkiPath } from './pki/paths.js';

export { defaultPkiDir } from './pki/paths.js';
import { agentService } from '../proto/agent-service.js';

/**
 * The names an agent's certificate must hold for mtlsClientFactory to accept
 * it: the host's inventory name and the address the controller dials
 * (ansible_host). Bootstrap passes these to signAgentCsr.
 */
export function agentCertNames(host: Pick<HostTarget, 'name' | 'address'>): string[] {
  return [...new Set([host.name, host.address])];
}

/**
 * Checks an agent's certificate (already verified against the fleet CA by TLS)
 * against the host it was meant to be: its SAN must cover both the address
 * dialled and the inventory name. A certificate the CA signed for any other
 * host fails, even one presented from the right address.
 */
export function checkAgentIdentity(host: Pick<HostTarget, 'name' | 'address'>, cert: PeerCertificate): Error | undefined {
  for (const name of agentCertNames(host)) {
    const err = checkServerIdentity(name, cert);
    if (err) return new Error(`the agent's certificate is not for host ${host.name} (${name}): ${err.message}`);
  }
  return undefined;
}

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
 * Clients over mutual TLS: the fleet CA (pki/ca.crt) as the only root, the
 * controller's operator certificate (pki/client.crt/.key) as the client
 * identity, and the agent's certificate checked by checkAgentIdentity against
 * both the host's inventory name and the address dialled.
 *
 * grpc.ssl_target_name_override is set only when the address is an IP and the
 * name is not, and only so that TLS's SNI carries the host's name: an IP in
 * SNI is forbidden by RFC 6066 (Node warns, DEP0123). It does not weaken the
 * check: grpc-js hands the override to our checkServerIdentity, which ignores
 * it and checks the name and the address itself.
 *
 * The PKI files are read at the first connection, so a missing PKI fails each
 * remote host with a clear reason and leaves unix-socket hosts alone.
 *
 * Unary calls go over h2UnaryClient (one HTTP/2 connection, no grpc-js
 * channel: see controller/h2-unary-client.ts for why), with the same TLS
 * context, SNI and identity check; streams go over a grpc-js channel made when
 * first needed. `unary: 'grpc-js'` (QFLEET_UNARY_TRANSPORT=grpc-js) sends
 * every call through grpc-js, to compare or to rule the lean path out.
 */
export interface MtlsFactoryOptions {
  readonly channelOptions?: grpc.ChannelOptions;
  readonly unary?: UnaryTransport;
}

export type UnaryTransport = 'h2' | 'grpc-js';

export function unaryTransportOf(env: NodeJS.ProcessEnv): UnaryTransport {
  const v = env.QFLEET_UNARY_TRANSPORT;
  if (v === undefined || v === '' || v === 'h2') return 'h2';
  if (v === 'grpc-js') return 'grpc-js';
  throw new UsageError(`QFLEET_UNARY_TRANSPORT must be h2 or grpc-js, not ${JSON.stringify(v)}.`);
}

export function mtlsClientFactory(pkiDir: string, opts: MtlsFactoryOptions = {}): ClientFactory {
  // One TLS context for every host (parsing the key and CA is most of a context's cost);
  // per host only the identity check differs.
  let context: SecureContext | undefined;
  const load = (): SecureContext => {
    if (context) return context;
    const need = [pkiPath(pkiDir, 'caCert'), pkiPath(pkiDir, 'clientKey'), pkiPath(pkiDir, 'clientCert')];
    const missing = need.filter((f) => !existsSync(f));
    if (missing.length) throw new PkiError(`no controller PKI in ${pkiDir} (missing ${missing.join(', ')}): run \`qfleet pki init\`.`);
    const [ca, key, cert] = need.map((f) => readFileSync(f)) as [Buffer, Buffer, Buffer];
    return (context = createSecureContext({ ca, key, cert }));
  };
  const { Client: Service, definition } = agentService();
  const userAgent = `qfleet/${packageVersion()}`;
  return (host, dial) => {
    const secureContext = load();
    const checkServerIdentity = (_sni: string, peer: PeerCertificate) => checkAgentIdentity(host, peer);
    const address = unbracket(host.address);
    const sniName = isIP(address) ? (isIP(host.name) ? undefined : host.name) : address;
    // A name resolved by the caller (fleet/resolve.ts) is dialled by its IP; identity and SNI stay the name's.
    const dialled = dial ? unbracket(dial.ip) : address;
    const channel = (): AgentServiceClient => {
      const creds = grpc.credentials.createFromSecureContext(secureContext, { checkServerIdentity });
      const sni = isIP(dialled) && sniName ? { 'grpc.ssl_target_name_override': sniName } : {};
      return new Service(agentTarget({ address: dialled, agentPort: host.agentPort }), creds, { ...FLEET_CHANNEL_OPTIONS, ...sni, ...opts.channelOptions });
    };
    if (opts.unary === 'grpc-js') return channel();
    return h2UnaryClient<AgentServiceClient>({
      host: dialled,
      port: host.agentPort,
      tls: { secureContext, checkServerIdentity, ...(sniName ? { servername: sniName } : {}) },
      service: definition,
      fallback: channel,
      userAgent,
    });
  };
}

/**
 * One short-lived channel per host: channelz bookkeeping is pure cost for a CLI
 * that talks to hundreds of hosts once and exits, and so is the process-wide
 * subchannel pool (shared only between channels to the same address; grpc-js
 * sweeps all of it as channels close).
 */
const FLEET_CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.enable_channelz': 0, 'grpc.use_local_subchannel_pool': 1 };

