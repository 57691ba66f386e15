import { InvalidArgumentError, type Command } from 'commander';
import { action } from '../context.js';
import { runExecOn } from '../exec-run.js';
import { oneContainer } from '../fleet/one-container.js';
import { dryRun, execSteps } from '../fleet/dry-run.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * One `-e NAME=value`, added to those before it. Not a variadic option: a
 * variadic `-e` would swallow the container name in `exec -e K=V NAME -- CMD`.
 */
export function collectEnv(kv: string, previous: Record<string, string> = {}): Record<string, string> {
  const i = kv.indexOf('=');
  const name = i > 0 ? kv.slice(0, i) : '';
  if (!ENV_NAME.test(name)) {
    throw new InvalidArgumentError('expected NAME=value, NAME of letters, digits and _ not starting with a digit (e.g. -e LANG=C.UTF-8).');
  }
  return { ...previous, [name]: kv.slice(i + 1) };
}

export function register(program: Command): void {
  program
    .command('exec')
    .description('run a command inside a started container; its exit code becomes ours (with --json, its output and exit status are in the JSON)')
    .usage('[-t] [-e NAME=value]... [host/]name -- command [args...]')
    .argument('<[host/]name>', 'HOST/NAME with an inventory (NAME alone when -H selects one host)')
    .argument('<command...>', 'the command and its arguments, after -- (everything after -- is the command\'s, options included)')
    .option('-t, --tty', 'run on a pseudo-terminal')
    .option('-e, --env <NAME=value>', 'environment for the command (repeatable)', collectEnv)
    .showHelpAfterError("(exec's own options go before --, the command and its options after it: qfleet exec [-t] [-e NAME=value] NAME -- ls -l)")
    .action(
      action(program, async (ctx, arg: string, argv: string[], opts: { tty?: boolean; env?: Record<string, string> }) => {
        const { host, name } = oneContainer(ctx, arg);
        const env: Record<string, string> = { ...opts.env };
        if (opts.tty && process.env.TERM) env.TERM ??= process.env.TERM;
        const start = { name, argv, tty: Boolean(opts.tty), console: false, env };
        const what = `exec ${argv.join(' ')}`;
        if (ctx.dryRun) return dryRun(ctx, 'exec', (c) => execSteps(c, start, what), { hosts: [host], container: name, action: what });
        return runExecOn(ctx, host, start);
      }),
    );
}
