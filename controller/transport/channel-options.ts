import type { ChannelOptions } from '@grpc/grpc-js';

/**
 * grpc-js tuned for one short-lived channel per host: channelz bookkeeping is
 * pure cost for a CLI that talks to hundreds of hosts once and exits, and so
 * is the process-wide subchannel pool (shared only between channels to the
 * same address; grpc-js sweeps all of it as channels close).
 */
export const FLEET_CHANNEL_OPTIONS: ChannelOptions = {
  'grpc.enable_channelz': 0,
  'grpc.use_local_subchannel_pool': 1,
  // One attempt per call (grpc-js keeps its retry layer, without retries or their buffering): the fan-out reports the failure.
  'grpc.enable_retries': 0,
  // No service config comes from DNS TXT records (an ipv4: target has none to look up anyway).
  'grpc.service_config_disable_resolution': 1,
  // Agents are dialled directly, never through $https_proxy: no per-channel look at the proxy variables.
  'grpc.enable_http_proxy': 0,
};
