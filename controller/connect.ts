import * as grpc from '@grpc/grpc-js';
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';
import type { ClientFactory } from './fleet/client-factory.js';
import type { HostTarget } from './fleet/host-target.js';
import { PkiError } from './pki/errors.js';
import { pkiPath } from './pki/paths.js';

export { defaultPkiDir } from './pki/paths.js';
import { loadAgentProto } from '../proto/loader.js';

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

/** `host:port`, with an IPv6 address in brackets. */
export function agentTarget(host: Pick<HostTarget, 'address' | 'agentPort'>): string {
  const a = unbracket(host.address);
  return isIP(a) === 6 ? `[${a}]:${host.agentPort}` : `${a}:${host.agentPort}`;
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
 */
export function mtlsClientFactory(pkiDir: string, channelOptions: grpc.ChannelOptions = {}): ClientFactory {
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
  const { proto } = loadAgentProto();
  return (host) => {
    const creds = grpc.credentials.createFromSecureContext(load(), {
      checkServerIdentity: (_sni, peer) => checkAgentIdentity(host, peer),
    });
    const sni = isIP(unbracket(host.address)) && !isIP(host.name) ? { 'grpc.ssl_target_name_override': host.name } : {};
    return new proto.qfleet.agent.v1.AgentService(agentTarget(host), creds, { ...FLEET_CHANNEL_OPTIONS, ...sni, ...channelOptions });
  };
}

/**
 * One short-lived channel per host: channelz bookkeeping is pure cost for a CLI
 * that talks to hundreds of hosts once and exits.
 */
const FLEET_CHANNEL_OPTIONS: grpc.ChannelOptions = { 'grpc.enable_channelz': 0 };

function unbracket(a: string): string {
  return a.replace(/^\[(.*)\]$/, '$1');
}
