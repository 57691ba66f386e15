import { strict as assert } from 'node:assert';
import { FailedPreconditionError } from '../../../agent/errors.js';
import { isUnder, type HostDriver, type InstallSpec, type ProgressSink } from '../../../agent/drivers/host-driver.js';
import { ref } from '../../support/container-ref.js';

/**
 * What a driver needs to be put through the conformance suite: a driver on a
 * fresh root directory, a base it can install, and a service that base ships.
 * Harnesses exist for the FreeBSD driver on a simulated host (fake runner) and
 * for the Linux driver on a fake runner and for real (root).
 */
export interface ConformanceHarness {
  readonly driver: HostDriver;
  readonly base: InstallSpec;
  /** A service whose rc script the base has, and that really starts. */
  readonly service: string;
  /** Removes everything the harness made (mounts, directories, processes). */
  cleanup(): Promise<void>;
}

const quiet: ProgressSink = () => undefined;

/**
 * The behaviour every HostDriver promises the engine. Each `it` depends on the
 * ones before it (one container walks the whole lifecycle), so they run in order.
 */
export function describeDriverConformance(title: string, makeHarness: () => Promise<ConformanceHarness>): void {
  describe(`HostDriver conformance: ${title}`, function () {
    this.timeout(120_000);
    let h: ConformanceHarness;
    let d: HostDriver;
    const name = 'conf1';

    before(async () => {
      h = await makeHarness();
      d = h.driver;
    });
    after(async () => {
      await h?.cleanup();
    });

    const mountsUnder = async (root: string) => (await d.mounts()).filter((m) => isUnder(m.target, root));

    it('reports facts and capabilities of the host', async () => {
      const f = await d.facts();
      assert.ok(f.release.length > 0);
      assert.ok(f.machine.length > 0);
      assert.ok(d.capabilities().installMethods.length > 0);
    });

    it('has no installed release before install', async () => {
      assert.equal(await d.installedRelease(), undefined);
    });

    it('prepares a base in staging, reporting its release', async () => {
      const events: string[] = [];
      const base = await d.prepareBase(h.base, (e) => events.push(e.phase));
      assert.ok(base.release.length > 0);
      assert.ok(isUnder(base.stagingDir, d.layout.stagingDir), 'staging must be under the layout staging dir');
      assert.ok(events.length > 0, 'progress was reported');
      await d.activateBase(base, quiet);
      assert.equal(await d.installedRelease(), base.release);
    });

    it('re-installs over an existing base without error', async () => {
      const base = await d.prepareBase(h.base, quiet);
      const { notes } = await d.activateBase(base, quiet);
      assert.ok(Array.isArray(notes));
      assert.equal(await d.installedRelease(), base.release);
    });

    it('discards a staged base it will not use', async () => {
      const base = await d.prepareBase(h.base, quiet);
      await d.discardBase(base);
      assert.ok(await d.installedRelease());
    });

    it('creates a container that has the service script and nothing mounted', async () => {
      await d.createContainer(name);
      assert.equal(await d.hasServiceScript(name, h.service), true);
      assert.equal(await d.hasServiceScript(name, 'no_such_service'), false);
      assert.deepEqual(await mountsUnder(d.layout.containerRoot(name)), []);
    });

    it('mounts sharedfs (and what the OS needs) at the expected targets', async () => {
      await d.mountContainer(name);
      const root = d.layout.containerRoot(name);
      const targets = (await mountsUnder(root)).map((m) => m.target);
      const expected = d.expectedMounts(name);
      assert.ok(expected.length >= 1);
      assert.ok(expected.every((t) => isUnder(t, root)), 'expected mounts lie inside the container');
      for (const t of expected) assert.ok(targets.includes(t), `${t} is mounted`);
      const shared = (await d.mounts()).find((m) => m.target === expected[0]);
      assert.ok(shared?.options.includes('ro'), 'sharedfs is mounted read-only');
    });

    it('mounting again mounts nothing twice', async () => {
      const before = (await mountsUnder(d.layout.containerRoot(name))).length;
      await d.mountContainer(name);
      assert.equal((await mountsUnder(d.layout.containerRoot(name))).length, before);
    });

    it('refuses to remove a container while anything is mounted in it', async () => {
      await assert.rejects(d.removeContainer(name), (e: unknown) => e instanceof FailedPreconditionError && /mount/i.test(e.message));
    });

    it('starts a service that then probes as running', async () => {
      await d.startService(ref(name), h.service);
      const p = await d.probeService(ref(name), h.service);
      assert.equal(p.running, true);
    });

    it('finds the processes rooted in the container', async () => {
      const pids = await d.processesIn(name);
      assert.ok(pids.length > 0, 'a running service has processes rooted in the container');
    });

    it('stops the service', async () => {
      await d.stopService(ref(name), h.service);
      assert.equal((await d.probeService(ref(name), h.service)).running, false);
    });

    it('unmounts everything under the container, idempotently', async () => {
      await d.unmountContainer(name);
      assert.deepEqual(await mountsUnder(d.layout.containerRoot(name)), []);
      await d.unmountContainer(name);
    });

    it('measures the container disk use', async () => {
      assert.ok((await d.diskUsage(name)) > 0);
    });

    it('removes a stopped container', async () => {
      await d.removeContainer(name);
      assert.equal(await d.hasServiceScript(name, h.service), false);
    });
  });
}
