/**
 * `qfleet list | head`: when the reader goes away, writing to stdout fails
 * with EPIPE (Node ignores SIGPIPE). Instead of crashing with a stack trace,
 * drop the rest of the output and let the command finish: its exit status
 * (set once every host has answered, after the output) still tells what
 * happened. Any other error on the stream is still thrown.
 */
export function dropOutputWhenReaderGoes(stream: NodeJS.EventEmitter): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') throw e;
  });
}
