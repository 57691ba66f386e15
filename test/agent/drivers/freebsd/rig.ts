import { FreeBSDDriver, type FreeBSDDriverOptions } from '../../../../agent/drivers/freebsd/freebsd-driver.js';
import type { InstallSpec, ProgressSink } from '../../../../agent/drivers/host-driver.js';
import { FakeRunner, type FakeHandler, type FakeReply } from '../../../support/fake-runner.js';
import { SimulatedFreeBSD, type SimulatedHostOptions } from './simulated-host.js';
import { ref } from '../../../support/container-ref.js';

export const ROOT = '/q';
export const LOG = '/var/log/qfleet';
export const C = '/q/containers/web';
/** mktemp(1) in the simulated host names its first directory this way. */
export const S1 = '/q/.staging/base.s1000000';
export const DOWNLOAD: InstallSpec = { method: 'download', source: '', mirror: '' };
export const quiet: ProgressSink = () => undefined;

/** A driver on a simulated host, with per-test overrides answered before the model. */
export class Rig {
  readonly host: SimulatedFreeBSD;
  readonly runner: FakeRunner;
  readonly driver: FreeBSDDriver;
  private readonly overrides: FakeHandler[] = [];

  constructor(opts: SimulatedHostOptions = {}, driverOpts: Partial<Omit<FreeBSDDriverOptions, 'runner' | 'rootDir' | 'logDir'>> = {}) {
    this.host = new SimulatedFreeBSD(opts);
    this.runner = new FakeRunner()
      .handle((spec) => {
        for (const h of this.overrides) {
          const r = h(spec);
          if (r) return r;
        }
        return undefined;
      })
      .handle(this.host.handler, 'the simulated FreeBSD host');
    this.driver = new FreeBSDDriver({ runner: this.runner, rootDir: ROOT, logDir: LOG, ...driverOpts });
  }

  /** Answer commands starting with `prefix` with `reply` instead of the model. */
  when(prefix: readonly string[], reply: FakeReply): this {
    this.overrides.push((s) => (prefix.every((p, i) => s.argv[i] === p) ? reply : undefined));
    return this;
  }

  /** The commands run since the last take(), one line each. */
  take(): string[] {
    const t = this.runner.transcript;
    this.runner.calls.splice(0);
    return t;
  }

  async installed(): Promise<this> {
    const b = await this.driver.prepareBase(DOWNLOAD, quiet);
    await this.driver.activateBase(b, quiet);
    this.take();
    return this;
  }

  async created(): Promise<this> {
    await this.installed();
    await this.driver.createContainer('web');
    this.take();
    return this;
  }

  async mounted(): Promise<this> {
    await this.created();
    await this.driver.mountContainer('web');
    this.take();
    return this;
  }

  async running(service = 'cron'): Promise<this> {
    await this.mounted();
    await this.driver.startService(ref('web'), service);
    this.take();
    return this;
  }
}
