import { AGENT_ROOT_JSON } from './gen/agent-root.js';

/**
 * Messages built ready for protobufjs's `encode`: enums as their numbers,
 * 64-bit integers as numbers, fields at their proto3 default left out (absent
 * and default read alike; `optional` fields keep their presence). The
 * serializer (agent-service.ts) encodes these as they are instead of copying
 * them through `fromObject` first, which turned a 1,000-container List answer
 * into a second tree of messages and Longs (a fifth of the agent's garbage per
 * List). Only objects marked here skip the copy: anything else, string enums
 * included, still goes through fromObject, so a response built the usual way
 * can never be encoded wrong.
 */
const ready = new WeakSet<object>();

/** Marks a whole response as built of wire-ready parts (see above); returns it. */
export function wireReady<T extends object>(message: T): T {
  ready.add(message);
  return message;
}

export function isWireReady(message: object): boolean {
  return ready.has(message);
}

interface EnumJson { readonly values: Readonly<Record<string, number>> }

/**
 * An enum's numbers by name, read from the built-in definition. `names` is the
 * enum's generated const object and `E` its generated type (proto/gen, both
 * of one name): every name is checked here, once, when the module loads, so a
 * renamed value fails at start, never on the wire.
 */
export function enumNumbers<N extends Readonly<Record<string, string>>, E>(fullName: string, names: N): { readonly [K in keyof N]: Extract<E, number> } {
  let node: unknown = AGENT_ROOT_JSON;
  for (const part of fullName.split('.')) node = (node as { nested?: Record<string, unknown> } | undefined)?.nested?.[part];
  const values = (node as EnumJson | undefined)?.values;
  if (!values) throw new Error(`${fullName} is no enum of the agent API`);
  const out: Record<string, number> = {};
  for (const name of Object.keys(names)) {
    const n = values[name];
    if (n === undefined) throw new Error(`${fullName} has no value ${name}`);
    out[name] = n;
  }
  return out as { readonly [K in keyof N]: Extract<E, number> };
}
