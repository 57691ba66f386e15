import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../support/repo-root.js';

/**
 * The agent's API is typed end to end: a controller call that names a method
 * the service lacks, misspells a request field or reads a response field that
 * does not exist must fail to compile. Each file under test/must-not-compile
 * marks the lines that must fail (`// must fail: TSnnnn`); the test compiles it
 * with the project's own compiler options and checks that exactly those lines
 * fail, each with that diagnostic.
 */
describe('the typed call contract (compile time)', function () {
  this.timeout(60_000);

  const root = (): string => repoRoot();
  const options = (): ts.CompilerOptions => {
    const cfg = ts.readConfigFile(join(root(), 'tsconfig.json'), (p) => ts.sys.readFile(p));
    if (cfg.error) throw new Error(ts.flattenDiagnosticMessageText(cfg.error.messageText, '\n'));
    // typeRoots pinned to the repository's: the default walks every ancestor's node_modules/@types.
    return { ...ts.parseJsonConfigFileContent(cfg.config, ts.sys, root()).options, noEmit: true, typeRoots: [join(root(), 'node_modules', '@types')] };
  };

  for (const name of ['call-request-fields.ts']) {
    it(`${name}: fails exactly on its marked lines`, () => {
      const file = join(root(), 'test', 'must-not-compile', name);
      const expected = new Map<number, string>();
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const m = /\/\/ must fail: (TS\d+)/.exec(line);
          if (m) expected.set(i + 1, m[1]!);
        });
      assert.ok(expected.size > 0, 'the file marks no line that must fail');

      // The compiler looks for node_modules in every ancestor; a bare clone has
      // none beside it, so the host answers only for paths inside the repository.
      const host = ts.createCompilerHost(options());
      const inside = (p: string): boolean => p === root() || p.startsWith(`${root()}/`);
      const { fileExists, directoryExists } = host;
      host.fileExists = (p) => inside(p) && fileExists.call(host, p);
      host.directoryExists = (p) => inside(p) && (directoryExists?.call(host, p) ?? true);
      const program = ts.createProgram([file], options(), host);
      const got = new Map<number, string[]>();
      for (const d of ts.getPreEmitDiagnostics(program)) {
        const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line + 1 : 0;
        const text = `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
        assert.ok(d.file?.fileName === file && expected.has(where), `unexpected diagnostic at ${d.file?.fileName ?? '?'}:${where}: ${text}`);
        got.set(where, [...(got.get(where) ?? []), text]);
      }
      for (const [line, code] of expected) {
        const texts = got.get(line) ?? [];
        assert.ok(texts.some((t) => t.startsWith(`${code}:`)), `line ${line} must fail with ${code}; got ${texts.join(' | ') || 'no error'}`);
      }
    });
  }
});
