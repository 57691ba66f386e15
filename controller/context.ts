import * as grpc from '@grpc/grpc-js';
import type { Command } from 'commander';
import { defaultSocket, requestId, type AgentServiceClient } from './client.js';
import { connectUnix } from './transport/unix.js';
import { isServiceError } from './transport/call.js';
import { errorDetailOf } from './agent-error.js';
import type { ClientFactory } from './transport/factory.js';
import { systemClock, type Clock } from './fleet/clock.js';
import { DEFAULT_FORKS, formatSeconds, HostTimeoutError, needsResolving, type HostOutcome } from './fleet/fanout.js';
import type { HostTarget } from './fleet/host-target.js';
import { childNameResolver, passThroughResolver, preferredAddress, type NameResolver } from './fleet/resolve.js';
import { SelectionError } from './fleet/selection.js';
import { resolveTargets, TargetError, type Targets } from './fleet/targets.js';
import { boundedCount, boundedSeconds, LIMITS } from './durations.js';
import { checkSocketPath } from './socket-path.js';
import { loadRemoteFactory, perHostFactory, socketOf, unavailableRemoteFactory, unixSocketFactory } from './transport/factory.js';

/** Exit codes: 0 every target ok, 1 anything failed, 2 usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A mistake in the command line: printed as `qfleet: …`, exit 2. */
export class UsageError extends Error {}

/** What tests may put in place of the real world. */
export interface CliDeps {
  /** Makes each host's client (default: mutual TLS; the unix socket only for a local connection: no inventory, or qfleet_connection: local). */
  factory?: ClientFactory;
  clock?: Clock;
  env?: NodeJS.ProcessEnv;
  out?: (text: string) => void;
  err?: (text: string) => void;
  /** Draws the one progress line on a terminal ('' clears it); default: rewrites the line on stderr. */
  status?: (line: string) => void;
  stderrIsTTY?: boolean;
  /** Resolves host names (default: fleet/resolve.ts's child process). */
  resolver?: NameResolver;
}

export interface CliContext {
  /** The environment (CliDeps.env, else process.env): commands read $VARS from here, never process.env. */
  readonly env: NodeJS.ProcessEnv;
  /** The local agent's socket (the target when there is no inventory). */
  readonly socket: string;
  readonly json: boolean;
  /** Deadline for quick calls (list, version, config) and for exec and console to connect: --timeout, default 30 s. */
  readonly timeoutMs: number;
  readonly forks: number;
  /** --forks was given (a command with its own default, such as bootstrap, yields to it). */
  readonly forksGiven: boolean;
  readonly dryRun: boolean;
  /** One id for this whole command, sent with every host's mutating call, so each agent's log can be matched to it. */
  readonly requestId: string;
  readonly clock: Clock;
  /** Progress lines are for a person at a terminal: stderr is a TTY and not --json. */
  readonly progress: boolean;
  /** The targets: resolved on first use, so --help never reads an inventory. */
  targets(): Targets;
  /** True when an inventory is in use: output names its hosts. */
  fleet(): boolean;
  hosts(): readonly HostTarget[];
  /** The per-host deadline of a long operation: --timeout when given, else its own default. */
  longTimeoutMs(defaultMs: number): number;
  /** The client factory for these hosts (default: the targets): unix sockets, and mutual TLS only if one of them needs it. */
  factory(hosts?: readonly HostTarget[]): Promise<ClientFactory>;
  /** The local agent's client (single-host paths such as console and exec without an inventory). */
  client(): AgentServiceClient;
  /** Host names resolved in a killable child (fleet/resolve.ts), shared by every host of this command. */
  resolver(): NameResolver;
  /**
   * One host's client, connected within --timeout (exec, console: a stream
   * that may then run as long as its command does). Rejects with a
   * ConnectError when the name did not resolve or the connection was
   * not up by then; a connection that fails outright is left to the call,
   * which reports its real reason.
   */
  connect(host: HostTarget): Promise<AgentServiceClient>;
  /** The progress line on a terminal (only when `progress`): '' clears it. */
  status(line: string): void;
  /** A progress note on stderr (only when `progress`), written above the progress line. */
  note(line: string): void;
  /** Closes what this context opened. */
  close(): void;
  out(text: string): void;
  err(text: string): void;
  /** Where a host is: its socket or its address, for messages. */
  where(host: HostTarget): string;
}

const depsOf = new WeakMap<Command, CliDeps>();

export function setDeps(program: Command, deps: CliDeps): void {
  depsOf.set(program, deps);
}


export function contextFrom(program: Command): CliContext {
  const deps = depsOf.get(program) ?? {};
  const env = deps.env ?? process.env;
  const o = program.opts<{ socket?: string; json?: boolean; timeout?: string; inventory?: string; hosts?: string; forks?: string; dryRun?: boolean }>();
  const socket = checkSocketPath(o.socket ?? (env.QFLEET_SOCKET || defaultSocket()), o.socket !== undefined ? '--socket' : '$QFLEET_SOCKET');
  const timeoutS = o.timeout === undefined ? undefined : boundedSeconds(o.timeout, '--timeout', LIMITS.timeoutSeconds);
  const forks = o.forks === undefined ? DEFAULT_FORKS : boundedCount(o.forks, '--forks', LIMITS.forks);
  const json = Boolean(o.json);
  let targets: Targets | undefined;
  let remote: Promise<ClientFactory> | undefined;
  let client: AgentServiceClient | undefined;
  let resolver: NameResolver | undefined;
  const opened: AgentServiceClient[] = [];
  let statusShown = false;
  let lastStatus = '';
  // One terminal row, cut to its width: a wrapped line could not be cleared with \r and erase-line.
  const drawStatus = deps.status ?? ((line: string) => void process.stderr.write(`\r\x1b[K${line.slice(0, Math.max(10, (process.stderr.columns || 80) - 1))}`));
  const out = deps.out ?? ((t: string) => void process.stdout.write(t.endsWith('\n') ? t : `${t}\n`));
  const err = deps.err ?? ((t: string) => void process.stderr.write(t.endsWith('\n') ? t : `${t}\n`));
  const ctx: CliContext = {
    env,
    socket,
    json,
    timeoutMs: (timeoutS ?? 30) * 1000,
    forks,
    forksGiven: o.forks !== undefined,
    dryRun: Boolean(o.dryRun),
    requestId: requestId(),
    clock: deps.clock ?? systemClock,
    progress: !json && (deps.stderrIsTTY ?? Boolean(process.stderr.isTTY)),
    targets: () => {
      if (targets) return targets;
      targets = resolveTargets({ inventory: o.inventory, hosts: o.hosts, socket }, env);
      // Like Ansible, an inventory's oddities are warned about, not fatal; --json keeps stderr for errors.
      if (!json) for (const w of targets.inventory?.warnings ?? []) err(`qfleet: warning: ${w}`);
      return targets;
    },
    fleet: () => ctx.targets().fleet,
    hosts: () => ctx.targets().hosts,
    longTimeoutMs: (d) => (timeoutS !== undefined ? timeoutS * 1000 : d),
    factory: (forHosts = ctx.hosts()) => {
      if (deps.factory) return Promise.resolve(deps.factory);
      const unix = unixSocketFactory(socket);
      if (forHosts.every((h) => h.connection === 'local')) return Promise.resolve(perHostFactory(unavailableRemoteFactory('no remote host was targeted'), unix));
      return (remote ??= loadRemoteFactory(env).then((r) => perHostFactory(r, unix)));
    },
    client: () => (client ??= connectUnix(socket)),
    // An injected factory fakes the connections, names included: its hosts are not looked up.
    resolver: () => (resolver ??= deps.resolver ?? (deps.factory ? passThroughResolver : childNameResolver({ parallel: forks }))),
    connect: async (host) => {
      const factory = await ctx.factory([host]);
      const timeoutMs = ctx.timeoutMs;
      const deadlineAt = Date.now() + timeoutMs;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      try {
        let ip: string | undefined;
        if (needsResolving(host)) {
          try {
            ip = preferredAddress(await ctx.resolver().lookup(host.address, abort.signal));
          } catch (e) {
            if (abort.signal.aborted) throw new ConnectError(`${host.name}: ${host.address} did not resolve within ${formatSeconds(timeoutMs)}.`);
            throw new ConnectError(`${host.name}: cannot resolve ${host.address}: ${(e as Error).message}`);
          }
        }
        const c = factory(host, ip ? { ip } : undefined);
        opened.push(c);
        await connectedBy(c, deadlineAt).catch(() => {
          throw new ConnectError(`${host.name}: no connection to the agent at ${ctx.where(host)} within ${formatSeconds(timeoutMs)}.`);
        });
        return c;
      } finally {
        clearTimeout(timer);
      }
    },
    status: (line) => {
      if (!ctx.progress || (!line && !statusShown)) return;
      statusShown = line !== '';
      lastStatus = line;
      drawStatus(line);
    },
    note: (line) => {
      if (!ctx.progress) return;
      const redraw = statusShown ? lastStatus : '';
      if (statusShown) drawStatus('');
      err(line);
      if (redraw) drawStatus(redraw);
    },
    close: () => {
      client?.close();
      for (const c of opened) c.close();
      resolver?.close();
    },
    out,
    err,
    where: (h) => socketOf(h, socket) ?? `${h.address}:${h.agentPort}`,
  };
  return ctx;
}

/** exec or console could not reach its host: the name did not resolve, or no connection by the deadline. */
export class ConnectError extends Error {}

/**
 * Resolves once the client's channel is READY, or has failed outright
 * (TRANSIENT_FAILURE: the call made next reports the real reason, such as a
 * refused connection or a certificate that does not match); rejects when it is
 * still connecting at the deadline (a host that drops packets).
 */
function connectedBy(client: AgentServiceClient, deadlineAt: number): Promise<void> {
  const ch = client.getChannel();
  return new Promise((resolve, reject) => {
    // Bounded: each turn waits for a state change, and the deadline ends the wait.
    const check = () => {
      const s = ch.getConnectivityState(true);
      if (s === grpc.connectivityState.READY || s === grpc.connectivityState.TRANSIENT_FAILURE) return resolve();
      if (s === grpc.connectivityState.SHUTDOWN) return reject(new Error('the channel was shut down'));
      ch.watchConnectivityState(s, deadlineAt, (e) => (e ? reject(e) : check()));
    };
    check();
  });
}

/**
 * How the agent's refusal is printed, by its reason (agent.proto's
 * ErrorDetail): the agent's own words when they are qchroot's `Error; …` line
 * (a refusal the operator acts on), else said to be the agent's or its host's
 * failure. Exhaustive over the reasons this qfleet knows; a newer one prints
 * as the agent's failure.
 */
const AGENT_LINE: Record<string, ((message: string) => string) | undefined> = {
  'invalid-argument': (m) => m,
  'name-invalid': (m) => m,
  'not-found': (m) => m,
  'already-exists': (m) => m,
  busy: (m) => m,
  running: (m) => m,
  stopped: (m) => m,
  broken: (m) => m,
  'no-base': (m) => m,
  'release-mismatch': (m) => m,
  'no-service-script': (m) => m,
  precondition: (m) => m,
  unsupported: (m) => m,
  'shutting-down': (m) => m,
  unauthenticated: (m) => `qfleet: the agent refused this client: ${m}`,
  'permission-denied': (m) => `qfleet: the agent refused this client: ${m}`,
  'command-failed': (m) => `qfleet: a command failed on the agent's host: ${m}`,
  internal: (m) => `qfleet: the agent failed: ${m}`,
};

/** The line for an agent's error that carries a detail. */
export function agentErrorLine(reason: string, message: string): string {
  return (AGENT_LINE[reason] ?? AGENT_LINE.internal!)(message);
}

/** Prints a failure the way an operator can act on it and returns the exit code (the single-host, no-inventory form). */
export function reportError(ctx: Pick<CliContext, 'err' | 'socket'>, e: unknown, where = ctx.socket): number {
  if (e instanceof UsageError || e instanceof TargetError || e instanceof SelectionError) {
    ctx.err(`qfleet: ${e.message}`);
    return EXIT.usage;
  }
  if (e instanceof ConnectError) {
    ctx.err(`qfleet: ${e.message}`);
    return EXIT.failed;
  }
  if (e instanceof HostTimeoutError) {
    ctx.err(`qfleet: the agent at ${where} did not answer in time.`);
    return EXIT.failed;
  }
  if (isServiceError(e)) {
    const usage = e.code === grpc.status.INVALID_ARGUMENT ? EXIT.usage : EXIT.failed;
    const detail = errorDetailOf(e);
    if (detail) {
      ctx.err(agentErrorLine(detail.reason, e.details));
      return usage;
    }
    // No detail: the status came from the transport, a proxy, or an agent before API 2.
    if (e.code === grpc.status.UNAVAILABLE) {
      ctx.err(`qfleet: cannot reach the agent at ${where}: is qfleetd running? (${e.details})`);
      return EXIT.failed;
    }
    if (e.code === grpc.status.DEADLINE_EXCEEDED) {
      ctx.err(`qfleet: the agent at ${where} did not answer in time.`);
      return EXIT.failed;
    }
    ctx.err(`qfleet: ${e.details}`);
    return usage;
  }
  ctx.err(`qfleet: ${missingSideFile(e) ?? (e instanceof Error ? e.message : String(e))}`);
  return EXIT.failed;
}

/**
 * The bundled CLI keeps ssh2 and the X.509 code in files beside its program
 * (deploy/bundle/build.ts): a copy of the program without them (as bootstrap
 * puts on hosts) still lists, starts and stops, and says which file a command
 * needs that is not there.
 */
export function missingSideFile(e: unknown, self = process.argv[1]): string | undefined {
  if (!(e instanceof Error) || (e as NodeJS.ErrnoException).code !== 'MODULE_NOT_FOUND') return undefined;
  const file = /'\.\/(qfleet-[a-z0-9]+\.js)'/.exec(e.message)?.[1];
  if (!file) return undefined;
  return `this command needs ${file}, which is not beside ${self ?? 'qfleet.js'}: copy every file of dist/bundle/ together`;
}

/**
 * The exit code of a fan-out: 0 when every host is ok and `failedInside` finds
 * nothing wrong in its result; 2 when every host refused the request as
 * invalid (a usage error, such as a bad container name: the single-host rule
 * before the fleet); else 1 (an argument only some hosts refuse, such as an
 * install source missing on one host, is that host's failure).
 */
export function exitCodeOf<T>(outcomes: readonly HostOutcome<T>[], failedInside: (r: T) => boolean = () => false): number {
  const bad = outcomes.filter((o) => o.status !== 'ok' || (o.result !== undefined && failedInside(o.result)));
  if (bad.length === 0) return EXIT.ok;
  if (bad.length === outcomes.length && bad.every((o) => o.status === 'failed' && o.code === 'INVALID_ARGUMENT')) return EXIT.usage;
  return EXIT.failed;
}

/** Wraps a subcommand's action: its resolved number is the exit code. */
export function action<A extends unknown[]>(program: Command, fn: (ctx: CliContext, ...args: A) => Promise<number>) {
  return async (...args: A): Promise<void> => {
    let ctx: CliContext | undefined;
    try {
      ctx = contextFrom(program);
      process.exitCode = await fn(ctx, ...args);
    } catch (e) {
      const deps = depsOf.get(program);
      process.exitCode = reportError(ctx ?? { socket: '', err: deps?.err ?? ((t) => void process.stderr.write(`${t}\n`)) }, e);
    } finally {
      const c = ctx;
      if (c) setImmediate(() => c.close());
    }
  };
}
