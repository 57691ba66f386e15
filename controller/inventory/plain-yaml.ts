import { Document, isScalar, type CollectionTag, type DocumentOptions, type ParseOptions, type ScalarTag, type SchemaOptions } from 'yaml';

/**
 * A fast reader for the plainest inventories (what bootstrap writes, what most
 * people write): nested block mappings of `key:` and `key: value` lines,
 * indented with spaces, full-line comments, every key and value one plain
 * word. Anything else (quotes, flow collections, lists, anchors, tags,
 * multi-line scalars, inline comments, tabs, non-ASCII, duplicate keys,
 * host:port keys, ranges...) gives up and returns undefined, and the caller
 * reads the text with `yaml` as always.
 *
 * Why: `yaml`'s parseDocument builds a full syntax tree, about 0.3 ms per host
 * of a plain inventory, the largest per-host cost of `qfleet list` after TLS
 * and gRPC. Here a line costs one regular expression.
 *
 * Why it reads the same documents the same way: the structure it accepts has
 * one reading in YAML (a block mapping per indentation level, a key with no
 * value and no deeper line is null), and each word is resolved by the same
 * schema `yaml` would use (the caller's tags: YAML 1.1 with PyYAML's
 * booleans), by `yaml`'s own rule for a plain scalar: the first default tag
 * whose test matches resolves it, through that tag's own resolve; none
 * matching, it is a string. A key that would not resolve to a string, or a
 * value that would not resolve to a string, number, boolean or null, gives up
 * too. test/controller/inventory/plain-yaml.test.ts holds both readers equal.
 */
export function parsePlainYaml(text: string, options: YamlOptions): Record<string, unknown> | undefined {
  // Only printable ASCII without YAML's indicators (" ' [ ] { } , & * ! | > % @ ` ? < = ; \ ~ ^ +) and newlines.
  if (!PLAIN_TEXT.test(text)) return undefined;
  const schema = schemaOf(options);
  const root: Record<string, unknown> = {};
  /** The open mappings, innermost last, each with its indentation (-1: not yet known, the next line sets it). */
  const stack: { indent: number; map: Record<string, unknown> }[] = [{ indent: 0, map: root }];
  /** The key of the previous line when it had no value: its mapping opens if the next line is deeper. */
  let open: { map: Record<string, unknown>; key: string; indent: number } | undefined;
  let lines = 0;
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) {
      if (BLANK_OR_COMMENT.test(line)) continue;
      return undefined;
    }
    lines++;
    const indent = m[1]!.length;
    let top = stack[stack.length - 1]!;
    if (open && indent > open.indent) {
      // The previous key's value is this deeper mapping.
      const map: Record<string, unknown> = {};
      open.map[open.key] = map;
      stack.push((top = { indent, map }));
    } else {
      while (indent < top.indent) {
        stack.pop();
        top = stack[stack.length - 1]!;
        if (!top) return undefined;
      }
      // Between two levels: not a plain nesting.
      if (indent !== top.indent) return undefined;
    }
    open = undefined;
    const key = resolvePlain(m[2]!, schema, true);
    // Over 1024 characters an implicit key is an error in YAML.
    if (m[2]!.length > 1024) return undefined;
    if (typeof key !== 'string' || key === '__proto__' || Object.prototype.hasOwnProperty.call(top.map, key)) return undefined;
    if (m[3] === undefined) {
      top.map[key] = null;
      open = { map: top.map, key, indent };
    } else {
      const value = resolvePlain(m[3], schema, false);
      if (value === GIVE_UP) return undefined;
      top.map[key] = value;
    }
  }
  return lines ? root : undefined;
}

const PLAIN_TEXT = /^[A-Za-z0-9_.:/#\- \n]*$/;
/** Indentation, a key (a word not starting with an indicator or `-`), a colon, and maybe one word of value; trailing spaces allowed. */
const LINE = /^( *)([A-Za-z0-9_][A-Za-z0-9_./-]*):(?: +(-?[A-Za-z0-9_./][A-Za-z0-9_./-]*))? *$/;
const BLANK_OR_COMMENT = /^ *(?:#.*)?$/;
const GIVE_UP = Symbol('give up');

type Scalar = string | number | boolean | null;
type YamlOptions = DocumentOptions & SchemaOptions & ParseOptions;
interface Schema {
  readonly tags: readonly (CollectionTag | ScalarTag)[];
  readonly options: Document['options'];
}

/** yaml's rule for a plain scalar (compose-scalar.js, findScalarTagByTest), through the tag's own resolve with the document's options. */
function resolvePlain(word: string, schema: Schema, atKey: boolean): Scalar | typeof GIVE_UP {
  const tag = schema.tags.find((t) => (t.default === true || (atKey && t.default === 'key')) && t.test?.test(word)) as ScalarTag | undefined;
  if (!tag) return word;
  let failed = false;
  let v: unknown;
  try {
    v = tag.resolve(word, () => (failed = true), schema.options as never);
  } catch {
    return GIVE_UP;
  }
  if (failed) return GIVE_UP;
  // A tag may resolve to a Scalar node (YAML 1.1's booleans do); its value is what toJS gives.
  if (isScalar(v)) v = v.value;
  return v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : GIVE_UP;
}

const schemaCache = new WeakMap<YamlOptions, Schema>();

/** The schema `yaml` builds for a document read with these options (and its options, as a tag's resolve gets them). */
function schemaOf(options: YamlOptions): Schema {
  let s = schemaCache.get(options);
  if (!s) {
    const doc = new Document(null, options);
    schemaCache.set(options, (s = { tags: doc.schema.tags, options: doc.options }));
  }
  return s;
}
