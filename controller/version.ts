import { readFileSync } from 'node:fs';

/**
 * qfleet's version from package.json (the controller may not import the agent's copy of this).
 * Kept apart from its twin (agent/version.ts, controller/version.ts) on purpose: deploy/bundle/build.ts swaps each file, by path, for a constant.
 */
export function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch { /* next location */ }
  }
  return '0.0.0';
}
