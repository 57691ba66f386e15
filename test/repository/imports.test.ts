import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, posix } from 'node:path';
import { repoRoot } from '../support/repo-root.js';

/**
 * Who may import whom: the agent and the controller never import each other,
 * they meet in proto/ (the contract) and both may import common/. common/
 * imports nothing else of the repository: only node: built-ins and the npm
 * packages the product depends on; proto/ imports neither side either.
 */
const ROOMS = ['agent', 'controller', 'common', 'proto'] as const;
type Room = (typeof ROOMS)[number];

export interface SourceFile {
  /** Repository-relative, with '/'. */
  readonly path: string;
  readonly text: string;
}

/** Every module specifier of a file, with its line: static imports and re-exports, side-effect imports, dynamic import(). */
export function specifiers(text: string): { spec: string; line: number }[] {
  const out: { spec: string; line: number }[] = [];
  const patterns = [
    /^\s*(?:import|export)\s[^'"`;]*?\sfrom\s*['"]([^'"]+)['"]/gm, // import x from '…', export { x } from '…' (over several lines too)
    /^\s*import\s*['"]([^'"]+)['"]/gm, // import '…'
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, // import('…')
  ];
  for (const re of patterns) {
    for (const m of text.matchAll(re)) {
      const at = m.index + m[0].lastIndexOf(m[1]!);
      out.push({ spec: m[1]!, line: text.slice(0, at).split('\n').length });
    }
  }
  return out.sort((a, b) => a.line - b.line);
}

/** The package a bare specifier names: `@scope/name` or `name`. */
function packageOf(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/** Each import that breaks the rule, as `file:line: what`. */
export function violations(files: readonly SourceFile[], dependencies: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (const f of files) {
    const from = f.path.split('/')[0] as Room;
    if (!ROOMS.includes(from)) continue;
    for (const { spec, line } of specifiers(f.text)) {
      const where = `${f.path}:${line}: imports ${spec}`;
      if (spec.startsWith('.')) {
        const to = posix.normalize(posix.join(posix.dirname(f.path), spec)).split('/')[0];
        if (from === 'common' && to !== 'common') out.push(`${where}: common/ imports nothing of the repository outside it`);
        else if (from === 'proto' && to !== 'proto' && to !== 'common') out.push(`${where}: proto/ imports neither the agent nor the controller`);
        else if (from === 'agent' && to === 'controller') out.push(`${where}: the agent never imports the controller (share it through common/)`);
        else if (from === 'controller' && to === 'agent') out.push(`${where}: the controller never imports the agent (share it through common/)`);
      } else if (from === 'common' && !spec.startsWith('node:') && !builtinModules.includes(spec) && !dependencies.has(packageOf(spec))) {
        out.push(`${where}: common/ imports only node: built-ins and the packages in package.json's dependencies`);
      }
    }
  }
  return out;
}

function sources(root: string): SourceFile[] {
  const out: SourceFile[] = [];
  for (const room of ROOMS) {
    for (const rel of readdirSync(join(root, room), { recursive: true, encoding: 'utf8' })) {
      if (!rel.endsWith('.ts')) continue;
      const path = `${room}/${rel.split('\\').join('/')}`;
      out.push({ path, text: readFileSync(join(root, path), 'utf8') });
    }
  }
  return out;
}

describe('who imports whom: agent and controller never each other; common/ and proto/ neither; common/ only node: and npm packages', () => {
  const deps = new Set(['@peculiar/x509', 'reflect-metadata']);

  it('finds every form of import, with its line', () => {
    const text = [
      "import { a } from '../x.js';",
      'import {',
      '  b,',
      "} from './y.js';",
      "export { c } from './z.js';",
      "import 'side-effect';",
      "const m = await import('./lazy.js');",
      "export type { T } from './types.js';",
    ].join('\n');
    assert.deepEqual(specifiers(text), [
      { spec: '../x.js', line: 1 },
      { spec: './y.js', line: 4 },
      { spec: './z.js', line: 5 },
      { spec: 'side-effect', line: 6 },
      { spec: './lazy.js', line: 7 },
      { spec: './types.js', line: 8 },
    ]);
  });

  it('names the file and line of each import across the rooms, and leaves the allowed ones alone', () => {
    const found = violations([
      { path: 'agent/engine/x.ts', text: "import { ok } from '../../common/roles.js';\nimport { bad } from '../../controller/pki/ca.js';" },
      { path: 'controller/fleet/y.ts', text: "import { ok } from '../../proto/agent-service.js';\n\nconst m = await import('../../agent/tls/csr.js');" },
      { path: 'common/z.ts', text: "import 'reflect-metadata';\nimport { x } from 'node:fs';\nimport { y } from '../agent/errors.js';\nimport { z } from 'left-pad';\nimport { w } from './sibling.js';" },
      { path: 'proto/loader.ts', text: "import { a } from '../common/x509.js';\nimport { b } from '../agent/errors.js';" },
      { path: 'test/anything.ts', text: "import { a } from '../agent/x.js';\nimport { c } from '../controller/y.js';" },
    ], deps);
    assert.deepEqual(found, [
      'agent/engine/x.ts:2: imports ../../controller/pki/ca.js: the agent never imports the controller (share it through common/)',
      'controller/fleet/y.ts:3: imports ../../agent/tls/csr.js: the controller never imports the agent (share it through common/)',
      'common/z.ts:3: imports ../agent/errors.js: common/ imports nothing of the repository outside it',
      "common/z.ts:4: imports left-pad: common/ imports only node: built-ins and the packages in package.json's dependencies",
      'proto/loader.ts:2: imports ../agent/errors.js: proto/ imports neither the agent nor the controller',
    ]);
  });

  it('the repository keeps the rule', () => {
    const root = repoRoot();
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const files = sources(root);
    assert.ok(files.some((f) => f.path.startsWith('common/')) && files.some((f) => f.path.startsWith('agent/')), 'the rooms were read');
    assert.deepEqual(violations(files, new Set(Object.keys(pkg.dependencies ?? {}))), []);
  });
});
