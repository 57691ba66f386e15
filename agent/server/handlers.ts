import type * as grpc from '@grpc/grpc-js';
import { AsyncResource } from 'node:async_hooks';
import type { AgentServiceHandlers } from '../../proto/gen/qfleet/agent/v1/AgentService.js';
import type { ExecRequest__Output } from '../../proto/gen/qfleet/agent/v1/ExecRequest.js';
import type { ExecResponse } from '../../proto/gen/qfleet/agent/v1/ExecResponse.js';
import type { Engine } from '../engine/engine.js';
import type { Session } from '../engine/sessions.js';
import { InvalidArgumentError } from '../errors.js';
import { inRequest, type Logger } from '../log.js';
import type { ConfigureRequest__Output } from '../../proto/gen/qfleet/agent/v1/ConfigureRequest.js';
import { capabilitiesToProto, configFromProto, containerToProto, listToProto, oneContainerToProto, methodFromProto, progressToProto, resultToProto } from './convert.js';
import { Admission, type Admitted, type CallInfo } from './admission.js';
import { toServiceError } from './status.js';

/**
 * Configure: without an update_mask, qchroot config (the services replaced);
 * with one, only the fields it names ("services" among them).
 */
function configure(engine: Engine, req: ConfigureRequest__Output) {
  const paths = req.updateMask?.paths ?? [];
  const opts = { validateOnly: req.validateOnly };
  if (paths.length === 0) return engine.configure(req.name, req.services, req.requestId, opts);
  const fields = paths.filter((p) => p !== 'services');
  return engine.configure(
    req.name,
    paths.includes('services') ? req.services : undefined,
    req.requestId,
    opts,
    fields.length ? { mask: fields, config: configFromProto(req.config) } : undefined,
  );
}

/**
 * 2: mutating requests take validate_only (an agent before 2 would ignore it and act), errors carry an ErrorDetail.
 * 3: isolation modes, container config (Create.config, Configure.update_mask), the Capabilities RPC.
 */
export const API_REVISION = 3;

export interface HandlerDeps {
  readonly engine: Engine;
  readonly log: Logger;
  readonly agentVersion: string;
  /** Shared by every server of one agent, so a shutdown drains the calls of all of them. */
  readonly admission?: Admission;
}

/** Thin handlers: decode, call the engine, encode; every error goes through toServiceError. */
export function makeHandlers(deps: HandlerDeps): AgentServiceHandlers {
  const { engine, log } = deps;
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

  const handlers: AgentServiceHandlers = {
    Version: unary(async () => {
      const v = await engine.version();
      return {
        agentVersion: deps.agentVersion,
        apiRevision: API_REVISION,
        os: v.facts.os,
        release: v.facts.release,
        machine: v.facts.machine,
        driver: v.driver,
        hostname: v.facts.hostname,
        capabilities: capabilitiesToProto(v.capabilities),
        baseRelease: v.baseRelease ?? '',
        rootDir: v.rootDir,
        baseBehind: v.baseBehind ?? '',
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
        const spec = engine.resolveInstallSpec({ method: methodFromProto(req.method), source: req.source, mirror: req.mirror });
        log.info('install requested', { requestId: req.requestId, method: spec.method, source: spec.source, validateOnly: req.validateOnly });
        const out = await engine.install(spec, req.force, (e) => {
          if (!call.cancelled) call.write({ progress: progressToProto(e) });
        }, { validateOnly: req.validateOnly });
        if (ended) return;
        call.write({
          result: { baseRelease: out.baseRelease, sharedfsPath: engine.basePaths.sharedfs, templatePath: engine.basePaths.template, notes: [...out.notes] },
        });
        end();
      })().catch((err) => end(err));
    },

    Capabilities: unary(async () => ({ capabilities: capabilitiesToProto(await engine.capabilities()) })),
    Create: mutating('Create', async (req) =>
      oneContainerToProto(await engine.create(req.name, req.requestId, { validateOnly: req.validateOnly }, configFromProto(req.config)))),
    List: unary(async () => {
      const views = await engine.list();
      return listToProto(views, await engine.basesBehind(views.map((v) => v.baseRelease)));
    }),
    Get: unary(async (req) => oneContainerToProto(await engine.get(req.name))),
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
    Configure: mutating('Configure', async (req) => oneContainerToProto(await configure(engine, req))),

    Exec: (call) => runExec(call, deps, admission),
  };
  return inRequests(handlers, log);
}

/**
 * Serves every call as one request (agent/log.ts inRequest): its log lines,
 * the engine's included, carry its request id, the caller's or one made up
 * here, which the request then carries on (into state files' pending markers
 * and busy answers too).
 */
function inRequests(handlers: AgentServiceHandlers, log: Logger): AgentServiceHandlers {
  const scoped: Record<string, unknown> = {};
  for (const [method, handler] of Object.entries(handlers)) {
    scoped[method] = (call: { request?: { requestId?: string } }, ...rest: unknown[]) => {
      const req = call.request; // none on Exec's stream: its id is made up
      return inRequest(log, req?.requestId, method, (_log, id) => {
        if (req && 'requestId' in req) req.requestId = id;
        return (handler as (...args: unknown[]) => unknown)(call, ...rest);
      });
    };
  }
  return scoped as unknown as AgentServiceHandlers;
}

function callInfo(method: string, req: { names?: string[]; name?: string }): CallInfo {
  return { method, names: req.names?.length ? req.names.slice(0, 20) : req.name ? [req.name] : [] };
}

/**
 * Exec/console over one bidirectional stream: the first message starts the
 * session (the engine's); then stdin, eof, resizes and signals flow in while
 * output flows out; the last message is the exit status.
 */
function runExec(call: grpc.ServerDuplexStream<ExecRequest__Output, ExecResponse>, deps: HandlerDeps, admission: Admission): void {
  let session: Session | undefined;
  let finished = false;
  let ticket: Admitted | undefined;

  const fail = (err: unknown) => {
    ticket?.done();
    if (finished) return;
    finished = true;
    call.emit('error', toServiceError(err));
  };

  // Input that arrives while the container is still being prepared waits here, in order.
  const early: ExecRequest__Output[] = [];
  const deliver = (s: Session, msg: ExecRequest__Output) => {
    switch (msg.event) {
      case 'stdin':
        if (msg.stdin) s.write(msg.stdin);
        break;
      case 'stdinEof':
        s.endInput();
        break;
      case 'signal':
        s.signal(msg.signal ?? 0);
        break;
      case 'resize':
        s.resize(msg.resize?.rows ?? 0, msg.resize?.cols ?? 0);
        break;
      default:
        break;
    }
  };

  const onFirst = async (msg: ExecRequest__Output) => {
    const start = msg.start;
    if (!start) throw new InvalidArgumentError('Error; the first Exec message must be `start`.');
    ticket = admission.admit({ method: start.console ? 'Console' : 'Exec', names: [start.name] });
    ticket.onAbandon((err) => {
      session?.signal('SIGHUP');
      fail(err);
    });
    const req = {
      name: start.name,
      console: start.console,
      argv: start.argv,
      tty: start.tty,
      env: Object.fromEntries(Object.entries(start.env ?? {})),
      ...(start.size ? { rows: start.size.rows || undefined, cols: start.size.cols || undefined } : {}),
    };
    if (start.validateOnly) {
      // The checks the command would pass, and the container it would run in; nothing is spawned or mounted.
      const view = await deps.engine.sessions.validate(req);
      ticket.done();
      if (!finished) {
        finished = true;
        call.write({ validated: containerToProto(view) });
        call.end();
      }
      return;
    }
    const s = await deps.engine.sessions.open(req, () => call.cancelled);
    if (!s) {
      ticket.done();
      return;
    }
    session = s;
    for (const m of early.splice(0)) deliver(s, m);
    // Backpressure: a slow client pauses the command's output instead of growing the agent's memory.
    const send = (m: ExecResponse) => {
      if (!call.write(m)) {
        s.stdout.pause();
        s.stderr.pause();
      }
    };
    call.on('drain', () => {
      s.stdout.resume();
      s.stderr.resume();
    });
    s.stdout.on('data', (b: Buffer) => send({ stdout: b }));
    s.stderr.on('data', (b: Buffer) => send({ stderr: b }));
    const exit = await s.exited;
    ticket.done();
    if (!finished) {
      finished = true;
      call.write({ exit });
      call.end();
    }
  };

  let first = true;
  // The stream's events arrive in grpc-js's context; bound, they run in this request's (its logger's).
  call.on('data', AsyncResource.bind((msg: ExecRequest__Output) => {
    if (first) {
      first = false;
      onFirst(msg).catch(fail);
      return;
    }
    if (session) deliver(session, msg);
    else early.push(msg);
  }));
  call.on('end', () => (session ? session.endInput() : early.push({ event: 'stdinEof', stdinEof: true })));
  // Before the session has started, the engine notices call.cancelled itself and ends the session unstarted.
  call.on('cancelled', () => session?.signal('SIGHUP'));
}

