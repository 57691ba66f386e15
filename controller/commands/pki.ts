import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { action, EXIT, UsageError } from '../context.js';
import { clientNameProblem } from '../pki/client-name.js';
import { defaultPkiDir } from '../pki/paths.js';

/**
 * `qfleet pki init [--force]` and `qfleet pki issue NAME [--read-only] [--days N] [--csr FILE] [--out DIR]`.
 * The PKI lives in $QFLEET_HOME/pki (else ~/.config/qfleet/pki); --pki-dir overrides it.
 */
export function register(program: Command): void {
  const pki = program
    .command('pki')
    .description("the fleet's certificate authority: agents accept only client certificates it signed")
    .option('--pki-dir <dir>', 'PKI directory (default $QFLEET_HOME/pki, else ~/.config/qfleet/pki)');
  const dirOf = () => pki.opts<{ pkiDir?: string }>().pkiDir ?? defaultPkiDir();

  pki
    .command('init')
    .description('make the CA (ECDSA P-256, 10 years) and the controller\'s operator certificate')
    .option('--force', 'replace an existing CA (every agent must then be bootstrapped again)')
    .action(
      action(program, async (ctx, o: { force?: boolean }) => {
        const { initPki } = await import('../pki/ca.js'); // the X.509 code, only when needed
        const r = await initPki(dirOf(), { force: Boolean(o.force) });
        if (ctx.json) ctx.out(JSON.stringify(r));
        else ctx.out(`CA ${r.caCert}\noperator certificate ${r.clientCert}\nkeys are mode 0600 in ${r.pkiDir} (0700); back up ca.key: agents trust only this CA.`);
        return EXIT.ok;
      }),
    );

  pki
    .command('issue')
    .description('issue a client certificate for other tooling (operator, or --read-only: list/get/health/version/reflection only)')
    .argument('<name>', "the certificate's name (its subject CN)", parseClientName)
    .option('--read-only', 'monitoring role: no call that changes anything')
    .option('--days <n>', 'validity in days', parseDays, 365)
    .option('--csr <file>', "sign this certificate request (ECDSA P-256) instead of making a key here: the tool's key never leaves its host")
    .option('--out <dir>', 'where NAME.crt, NAME.key (0600) and ca.crt go (default PKI_DIR/clients)')
    .option('--force', 'replace existing files')
    .action(
      action(program, async (ctx, name: string, o: { readOnly?: boolean; days: number; csr?: string; out?: string; force?: boolean }) => {
        const role = o.readOnly ? 'read-only' : 'operator';
        const { issueClientFiles, signClientCsrFiles } = await import('../pki/ca.js');
        if (o.csr) {
          let csr: Buffer;
          try {
            csr = readFileSync(o.csr);
          } catch (e) {
            throw new UsageError(`cannot read the certificate request ${o.csr}: ${(e as Error).message}`);
          }
          const files = await signClientCsrFiles(dirOf(), name, csr, { role, days: o.days, outDir: o.out, force: Boolean(o.force) });
          if (ctx.json) ctx.out(JSON.stringify({ name, role, ...files }));
          else ctx.out(`${role} certificate ${files.cert} (for the key of ${o.csr}, which stays where it was made)\nCA ${files.ca}`);
          return EXIT.ok;
        }
        const files = await issueClientFiles(dirOf(), name, { role, days: o.days, outDir: o.out, force: Boolean(o.force) });
        if (ctx.json) ctx.out(JSON.stringify({ name, role, ...files }));
        else ctx.out(`${role} certificate ${files.cert}\nkey ${files.key} (0600)\nCA ${files.ca}`);
        return EXIT.ok;
      }),
    );
}

function parseClientName(v: string): string {
  const problem = clientNameProblem(v);
  if (problem) throw new InvalidArgumentError(problem);
  return v;
}

function parseDays(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 3650) throw new InvalidArgumentError('days must be a whole number from 1 to 3650.');
  return n;
}
