import protobuf from 'protobufjs';
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

/**
 * Answers whose repeated message fields carry each message already encoded
 * (Uint8Array), with the carrier type to encode them through: the same message
 * with those fields as `bytes`. On the wire an embedded message is a
 * length-delimited field, the same as bytes holding its encoding, so a client
 * reads the answer as it reads any other (protobufjs writes both, and the tag
 * and length of each). The agent keeps each quiet container's encoding
 * (agent/server/convert.ts) and so encodes a thousand-container List mostly
 * by copying.
 */
const carried = new WeakMap<object, protobuf.Type>();

/** Marks `message` as carried by `carrier` (see above); returns it. */
export function encodedThrough<T extends object>(message: T, carrier: protobuf.Type): T {
  carried.set(message, carrier);
  return message;
}

export function carrierOf(message: object): protobuf.Type | undefined {
  return carried.get(message);
}

/**
 * The carrier of a message whose fields are all repeated messages: each as
 * repeated `bytes` of the same number. Any other kind of field is refused
 * here, when the module loads: the carrier would drop it.
 */
export function carrierType(type: protobuf.Type): protobuf.Type {
  const carrier = new protobuf.Type(`${type.name}Carrier`);
  for (const f of type.fieldsArray) {
    if (!f.repeated || !(f.resolve().resolvedType instanceof protobuf.Type)) throw new Error(`${type.fullName}.${f.name} is not a repeated message: no carrier for it`);
    carrier.add(new protobuf.Field(f.name, f.id, 'bytes', 'repeated'));
  }
  new protobuf.Root().add(carrier).resolveAll();
  return carrier;
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
