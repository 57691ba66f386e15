import { FailedPreconditionError } from '../errors.js';
import type { ContainerRef } from './container-config.js';
import type { DriverCapabilities } from './host-driver.js';

/** Refuses a mode or limit the host does not offer, saying why it is missing and what else there is. Never silently ignored. */
export function refuseUnoffered(ref: ContainerRef, caps: DriverCapabilities): void {
  const mode = ref.config.isolation;
  if (!caps.isolation.includes(mode)) {
    const why = caps.missing.filter((m) => m.startsWith(`${mode}:`)).map((m) => m.slice(mode.length + 1).trim());
    throw new FailedPreconditionError(
      `Error; this host cannot run ${ref.name} with isolation ${mode}${why.length ? ` (${why.join('; ')})` : ''}; ` +
        `it offers ${caps.isolation.join(', ')}.`,
      { reason: 'unsupported', fields: { container: ref.name, isolation: mode, offered: caps.isolation.join(',') } },
    );
  }
  const { memoryBytes, cpus, pids } = ref.config.limits;
  const asked = [
    ...(memoryBytes > 0 && !caps.limits.memory ? ['memory'] : []),
    ...(cpus > 0 && !caps.limits.cpu ? ['cpu'] : []),
    ...(pids > 0 && !caps.limits.pids ? ['pids'] : []),
  ];
  if (asked.length) {
    const why = caps.missing.filter((m) => asked.some((a) => m.startsWith(`limit ${a}:`)));
    throw new FailedPreconditionError(
      `Error; this host cannot enforce the ${asked.join(', ')} limit${asked.length > 1 ? 's' : ''} asked of ${ref.name}` +
        `${why.length ? ` (${why.join('; ')})` : ''}; remove ${asked.length > 1 ? 'them' : 'it'} (qfleet config ${ref.name} --${asked[0] === 'cpu' ? 'cpus' : asked[0]} 0) or enable it on the host.`,
      { reason: 'unsupported', fields: { container: ref.name, limits: asked.join(',') } },
    );
  }
}
