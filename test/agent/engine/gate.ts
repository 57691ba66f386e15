/**
 * Holds an operation at a point of the test's choosing until the test opens
 * it: ordering, not timing. The held code awaits pass(); the test awaits
 * `reached`, does what it checks meanwhile, then calls open().
 */
export function gate(): { reached: Promise<void>; pass: () => Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  let arrive!: () => void;
  const reached = new Promise<void>((r) => (arrive = r));
  return { reached, open, pass: () => { arrive(); return opened; } };
}
