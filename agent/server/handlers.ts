import type * as grpc from '@grpc/grpc-js';
import type { AgentServiceHandlers } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecRequest__Output } from '../../proto/gen/qfleet/agent/v1/ExecRequest.js';
import type { Container } from '../../proto/gen/qfleet/agent/v1/Container.js';
import type { ExecResponse } from '../../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { Engine, ExecSession } from '../engine/engine.js';
import { resolveInstallSpec } from '../engine/install-spec.js';
import { InvalidArgumentError } from '../errors.js';
import type { Logger } from '../log.js';
import type { CommandRunner, SpawnedCommand } from '../runner/command-runner.js';
import { containerToProto, methodFromProto, methodToProto, progressToProto, resultToProto } from './convert.js';
import { Admission, type Admitted, type CallInfo } from './admission.js';
import { toServiceError } from './status.js';

/** 2: mutating requests take validate_only (an agent before 2 would ignore it and act), errors carry an ErrorDetail. */
export const API_REVISION = 2;

export interface HandlerDeps {
  readonly engine: Engine;
  readonly runner: CommandRunner;
  readonly log: Logger;
  readonly agentVersion: string;
  /** Shared by every server of one agent, so a shutdown drains the calls of all of them. */
  readonly admission?: Admission;
}

/** Thin handlers: decode, call the engine, encode; every error goes through toServiceError. */
export function makeHandlers(deps: HandlerDeps): AgentServiceHandlers {
  const { engine, log } = deps;
  const driver = engine.hostDriver;
  const admission = deps.admission ?? new Admission();

  function unary<Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      fn(call.request).then(
        (res) => callback(null, res),
        (err) => callback(toServiceError(err)),
      );
    };
  }

  /** A call that changes the host: refused while the agent shuts down, answered in words if shutdown cuts it short. */
  function mutating<Req extends { names?: string[]; name?: string }, Res>(method: string, fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      let ticket: Admitted;
      try {
        ticket = admission.admit(callInfo(method, call.request));
      } catch (err) {
        callback(toServiceError(err));
        return;
      }
      let answered = false;
      const answer = (err: grpc.ServiceError | null, res?: Res) => {
        if (answered) return;
        answered = true;
        ticket.done();
        if (err) callback(err); else callback(null, res);
      };
      ticket.onAbandon((err) => answer(toServiceError(err)));
      fn(call.request).then((res) => answer(null, res), (err) => answer(toServiceError(err)));
    };
  }

  return {
    Version: unary(async () => {
      const facts = await driver.facts();
      const caps = driver.capabilities();
      const baseRelease = (await driver.installedRelease()) ?? '';
      return {
        agentVersion: deps.agentVersion,
        apiRevision: API_REVISION,
        os: facts.os,
        release: facts.release,
        machine: facts.machine,
        driver: driver.name,
        hostname: facts.hostname,
        capabilities: {
          installMethods: caps.installMethods.map(methodToProto),
          namespaces: caps.namespaces,
          sparseImages: caps.sparseImages,
          ipAliases: caps.ipAliases,
          console: caps.console,
        },
        baseRelease,
        rootDir: driver.layout.rootDir,
        baseBehind: (await driver.baseBehind?.(baseRelease)) ?? '',
      };
    }),

    Install: (call) => {
      const req = call.request;
      let ticket: Admitted;
      try {
        ticket = admission.admit({ method: 'Install', names: [] });
      } catch (err) {
        call.emit('error', toServiceError(err));
        return;
      }
      let ended = false;
      const end = (err?: unknown) => {
        if (ended) return;
        ended = true;
        ticket.done();
        if (err) call.emit('error', toServiceError(err)); else call.end();
      };
      ticket.onAbandon((err) => end(err));
      (async () => {
        const spec = resolveInstallSpec(
          { method: methodFromProto(req.method), source: req.source, mirror: req.mirror },
          driver.capabilities(),
        );
        log.info('install requested', { requestId: req.requestId, method: spec.method, source: spec.source, validateOnly: req.validateOnly });
        const out = await engine.install(spec, req.force, (e) => {
          if (!call.cancelled) call.write({ progress: progressToProto(e) });
        }, { validateOnly: req.validateOnly });
        if (ended) return;
        call.write({
          result: { baseRelease: out.baseRelease, sharedfsPath: driver.layout.sharedfs, templatePath: driver.layout.template, notes: [...out.notes] },
        });
        end();
      })().catch((err) => end(err));
    },

    Create: mutating('Create', async (req) => ({ container: containerToProto(await engine.create(req.name, req.requestId, { validateOnly: req.validateOnly })) })),
    List: unary(async () => ({ containers: await withBaseBehind(driver, (await engine.list()).map(containerToProto)) })),
    Get: unary(async (req) => ({ container: containerToProto(await engine.get(req.name)) })),
    Start: mutating('Start', async (req) => ({
      results: (await engine.start({ names: req.names, all: req.all }, req.requestId, { validateOnly: req.validateOnly })).map(resultToProto),
    })),
    Stop: mutating('Stop', async (req) => ({
      results: (
        await engine.stop({ names: req.names, all: req.all }, req.graceSeconds ? req.graceSeconds * 1000 : undefined, req.requestId, { validateOnly: req.validateOnly })
      ).map(resultToProto),
    })),
    Delete: mutating('Delete', async (req) => ({
      results: (await engine.delete({ names: req.names, all: req.all }, req.requestId, { validateOnly: req.validateOnly })).map(resultToProto),
    })),
    Configure: mutating('Configure', async (req) => ({
      container: containerToProto(await engine.configure(req.name, req.services, req.requestId, { validateOnly: req.validateOnly })),
    })),

    Exec: (call) => runExec(call, deps, admission),
  };
}

function callInfo(method: string, req: { names?: string[]; name?: string }): CallInfo {
  return { method, names: req.names?.length ? req.names.slice(0, 20) : req.name ? [req.name] : [] };
}

const MAX_ENV = 64;

/**
 * Exec/console over one bidirectional stream: the first message starts the
 * command; then stdin, eof and signals flow in while output flows out; the
 * last message is the exit status.
 */
function runExec(call: grpc.ServerDuplexStream<ExecRequest__Output, ExecResponse>, deps: HandlerDeps, admission: Admission): void {
  let child: SpawnedCommand | undefined;
  let session: ExecSession | undefined;
  let finished = false;
  let onSpawn: (c: SpawnedCommand) => void = () => undefined;
  let tty = false;
  let ticket: Admitted | undefined;

  const fail = (err: unknown) => {
    ticket?.done();
    if (finished) return;
    finished = true;
    call.emit('error', toServiceError(err));
  };

  const onFirst = async (msg: ExecRequest__Output) => {
    const start = msg.start;
    if (!start) throw new InvalidArgumentError('Error; the first Exec message must be `start`.');
    ticket = admission.admit({ method: start.console ? 'Console' : 'Exec', names: [start.name] });
    ticket.onAbandon((err) => {
      child?.kill('SIGHUP');
      fail(err);
    });
    tty = start.tty;
    const env = Object.fromEntries(Object.entries(start.env ?? {}));
    if (Object.keys(env).length > MAX_ENV || Object.keys(env).some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) {
      throw new InvalidArgumentError('Error; exec environment names must be shell identifiers (at most 64 of them).');
    }
    if (start.validateOnly) {
      // The checks the command would pass, and the container it would run in; nothing is spawned or mounted.
      const view = start.console ? await deps.engine.validateConsole(start.name) : await deps.engine.validateExec(start.name, start.argv);
      ticket.done();
      if (!finished) {
        finished = true;
        call.write({ validated: containerToProto(view) });
        call.end();
      }
      return;
    }
    const size = start.size ? { rows: start.size.rows || undefined, cols: start.size.cols || undefined } : {};
    session = start.console
      ? await deps.engine.console(start.name, { tty: start.tty, env, ...size })
      : await deps.engine.exec(start.name, start.argv, { tty: start.tty, env, ...size });
    if (call.cancelled) {
      await session.end();
      ticket.done();
      return;
    }
    const c = deps.runner.spawn(session.spec);
    child = c;
    onSpawn(c);
    // Backpressure: a slow client pauses the command's output instead of growing the agent's memory.
    const send = (m: ExecResponse) => {
      if (!call.write(m)) {
        c.stdout.pause();
        c.stderr.pause();
      }
    };
    call.on('drain', () => {
      c.stdout.resume();
      c.stderr.resume();
    });
    c.stdout.on('data', (b: Buffer) => send({ stdout: b }));
    c.stderr.on('data', (b: Buffer) => send({ stderr: b }));
    c.stdin.on('error', () => undefined); // the command may exit before reading all input
    const { code, signal } = await c.exited;
    await session.end().catch((e) => deps.log.error('console clean-up failed', { container: start.name, error: String(e) }));
    ticket.done();
    if (!finished) {
      finished = true;
      call.write({ exit: { code: code ?? -1, signal: signal ?? '' } });
      call.end();
    }
  };

  // Input that arrives while the container is still being prepared waits here, in order.
  const early: ExecRequest__Output[] = [];
  const deliver = (c: SpawnedCommand, msg: ExecRequest__Output) => {
    switch (msg.event) {
      case 'stdin':
        if (msg.stdin) c.stdin.write(msg.stdin);
        break;
      case 'stdinEof':
        c.stdin.end();
        break;
      case 'signal':
        if (msg.signal && msg.signal > 0 && msg.signal < 65) c.kill(msg.signal);
        break;
      case 'resize':
        if (tty && c.pid && msg.resize?.rows && msg.resize.cols) {
          deps.engine.hostDriver
            .resizeTerminal(c.pid, msg.resize.rows, msg.resize.cols)
            .catch((e) => deps.log.warn('terminal resize failed', { error: String(e) }));
        }
        break;
      default:
        break;
    }
  };
  onSpawn = (c) => {
    for (const m of early.splice(0)) deliver(c, m);
  };

  let first = true;
  call.on('data', (msg: ExecRequest__Output) => {
    if (first) {
      first = false;
      onFirst(msg).catch(fail);
      return;
    }
    if (child) deliver(child, msg);
    else early.push(msg);
  });
  call.on('end', () => (child ? child.stdin.end() : early.push({ event: 'stdinEof', stdinEof: true })));
  call.on('cancelled', () => {
    child?.kill('SIGHUP');
    if (!child) void session?.end();
  });
}

/** Marks containers whose base is behind the host's kernel; asks the driver once per distinct release. */
async function withBaseBehind(driver: Engine['hostDriver'], containers: Container[]): Promise<Container[]> {
  if (!driver.baseBehind) return containers;
  const byRelease = new Map<string, Promise<string | undefined>>();
  const behind = (r: string) => byRelease.get(r) ?? byRelease.set(r, driver.baseBehind!(r)).get(r)!;
  return Promise.all(containers.map(async (c) => ({ ...c, baseBehind: (await behind(c.baseRelease ?? '')) ?? '' })));
}
