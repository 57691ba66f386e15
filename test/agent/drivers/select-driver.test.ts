import { strict as assert } from 'node:assert';
import { FreeBSDDriver } from '../../../agent/drivers/freebsd/freebsd-driver.js';
import { makeDriver } from '../../../agent/drivers/select-driver.js';
import { FailedPreconditionError } from '../../../agent/errors.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { SimulatedFreeBSD } from './freebsd/simulated-host.js';
import { quiet } from './freebsd/rig.js';

describe('makeDriver', () => {
  const mirror = 'http://mirror.example.org/pub/FreeBSD/releases';
  const url = `${mirror}/amd64/amd64/14.1-RELEASE/MANIFEST`;
  const driverOn = (host: SimulatedFreeBSD, pinnedManifests?: Record<string, string>) =>
    makeDriver('freebsd', { runner: new FakeRunner().handle(host.handler, 'the simulated FreeBSD host'), rootDir: '/q', logDir: '/var/log/qfleet', pinnedManifests });

  it('gives the FreeBSD driver the pinned MANIFEST digests (config freebsd_manifest_sha256): a pinned plain-http mirror is used', async () => {
    const host = new SimulatedFreeBSD({ mirror });
    const driver = driverOn(host, { [url]: SimulatedFreeBSD.sha256(host.remote.get(url)!) });
    assert.ok(driver instanceof FreeBSDDriver);
    const base = await driver.prepareBase({ method: 'download', source: '', mirror }, quiet);
    assert.match(base.release, /^14\.1-RELEASE/);
  });

  it('without a pin the same mirror is refused', async () => {
    const driver = driverOn(new SimulatedFreeBSD({ mirror }));
    await assert.rejects(driver.prepareBase({ method: 'download', source: '', mirror }, quiet), (e: unknown) =>
      e instanceof FailedPreconditionError && e.message.includes('refusing the plain-http mirror'));
  });
});
