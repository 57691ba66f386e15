/**
 * Ansible's host ranges, as its inventory expands them (expand_hostname_range):
 * `www[01:50].example.com` → www01 … www50 (a begin with a leading zero sets
 * the width, and then begin and end must have the same length), `[a:f]` for
 * letters, an optional stride `[1:10:2]`, an empty begin meaning 0, and several
 * ranges in one name expanded left to right.
 */
export class HostRangeError extends Error {}

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

export function hasHostRange(name: string): boolean {
  const open = name.indexOf('[');
  return open >= 0 && name.indexOf(']', open) > open;
}

export function expandHostRange(name: string): string[] {
  if (!hasHostRange(name)) return [name];
  const open = name.indexOf('[');
  const close = name.indexOf(']', open);
  const head = name.slice(0, open);
  const range = name.slice(open + 1, close);
  const tail = name.slice(close + 1);
  const bounds = range.split(':');
  if (bounds.length !== 2 && bounds.length !== 3) throw new HostRangeError(`host range must be begin:end or begin:end:step: ${name}`);
  const beg = bounds[0] || '0';
  const end = bounds[1] ?? '';
  if (!end) throw new HostRangeError(`host range must specify an end value: ${name}`);
  const stepText = bounds[2] ?? '1';
  if (!/^[0-9]+$/.test(stepText) || Number(stepText) < 1) throw new HostRangeError(`host range step must be a positive integer: ${name}`);
  const step = Number(stepText);

  let seq: string[];
  const ib = beg.length === 1 ? LETTERS.indexOf(beg) : -1;
  const ie = end.length === 1 ? LETTERS.indexOf(end) : -1;
  if (ib >= 0 && ie >= 0) {
    if (ib > ie) throw new HostRangeError(`host range must have begin <= end: ${name}`);
    seq = [];
    for (let i = ib; i <= ie; i += step) seq.push(LETTERS[i]!);
  } else {
    if (!/^[0-9]+$/.test(beg) || !/^[0-9]+$/.test(end)) throw new HostRangeError(`host range must be numeric or single letters: ${name}`);
    const width = beg.length > 1 && beg.startsWith('0') ? beg.length : 0;
    if (width && width !== end.length) throw new HostRangeError(`host range must specify equal-length begin and end formats: ${name}`);
    const b = Number(beg);
    const e = Number(end);
    if (b > e) throw new HostRangeError(`host range must have begin <= end: ${name}`);
    if ((e - b) / step > 100_000) throw new HostRangeError(`host range is too large: ${name}`);
    seq = [];
    for (let i = b; i <= e; i += step) seq.push(width ? String(i).padStart(width, '0') : String(i));
  }
  return seq.flatMap((s) => expandHostRange(`${head}${s}${tail}`));
}
