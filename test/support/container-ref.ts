import { LEGACY_CONFIG, type ContainerConfig, type ContainerRef } from '../../agent/drivers/container-config.js';

/** A container as a driver is handed one: chroot (qchroot's mode) unless the test says otherwise. */
export function ref(name: string, config: Partial<ContainerConfig> = {}): ContainerRef {
  return { name, config: { ...LEGACY_CONFIG, ...config } };
}
