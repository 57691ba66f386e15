import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../agent/config.js';
import { FreeBSDDriver } from '../../../agent/drivers/freebsd/freebsd-driver.js';
import { makeDriver } from '../../../agent/drivers/select-driver.js';
import { FailedPreconditionError } from '../../../agent/errors.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { SimulatedFreeBSD } from './freebsd/simulated-host.js';
import { quiet } from './freebsd/rig.js';

describe('makeDriver (the driver, set up from the agent config)', () => {
  const mirror = 'http://mirror.example.org/pub/FreeBSD/releases';
  const url = `${mirror}/amd64/amd64/14.1-RELEASE/MANIFEST`;
  const download = { method: 'download' as const, source: '', mirror };
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'qf-select-driver-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The FreeBSD driver on a simulated host, from a qfleetd.conf with `text`. */
  const driverFrom = (host: SimulatedFreeBSD, text: string) => {
    writeFileSync(join(dir, 'qfleetd.conf'), `root_dir="/q"\nlog_dir="/var/log/qfleet"\n${text}`);
    const cfg = loadConfig({ os: 'freebsd', configFile: join(dir, 'qfleetd.conf'), flags: {} });
    return makeDriver(cfg, new FakeRunner().handle(host.handler, 'the simulated FreeBSD host'));
  };

  it('freebsd_manifest_sha256 in qfleetd.conf reaches the FreeBSD driver: the pinned plain-http mirror is used', async () => {
    const host = new SimulatedFreeBSD({ mirror });
    const driver = driverFrom(host, `freebsd_manifest_sha256="${url}=${SimulatedFreeBSD.sha256(host.remote.get(url)!).toUpperCase()}"\n`);
    assert.ok(driver instanceof FreeBSDDriver);
    const base = await driver.prepareBase(download, quiet);
    assert.match(base.release, /^14\.1-RELEASE/);
  });

  it('without the setting the same mirror is refused', async () => {
    const driver = driverFrom(new SimulatedFreeBSD({ mirror }), '');
    await assert.rejects(driver.prepareBase(download, quiet), (e: unknown) =>
      e instanceof FailedPreconditionError && e.message.includes('refusing the plain-http mirror'));
  });

  it('a pin for another URL does not open this mirror', async () => {
    const driver = driverFrom(new SimulatedFreeBSD({ mirror }), `freebsd_manifest_sha256="${url.replace('14.1', '14.2')}=${'0'.repeat(64)}"\n`);
    await assert.rejects(driver.prepareBase(download, quiet), /refusing the plain-http mirror/);
  });
});
