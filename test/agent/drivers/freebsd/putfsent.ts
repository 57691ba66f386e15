/**
 * FreeBSD's putfsent() (sbin/mount/mount.c) as `mount -p` prints a line: device and
 * mount point each padded with 1-3 TABs to 24 columns, or ONE space when 24+ long;
 * fstype + TAB; options + TAB (< 8 chars) or a space; then TAB, "dump pass".
 */
export function putfsent(e: { source: string; target: string; fstype: string; options: readonly string[]; dump?: number; pass?: number }): string {
  const pad24 = (s: string) => s + (s.length < 8 ? '\t' : '') + (s.length < 16 ? '\t' : '') + (s.length < 24 ? '\t' : ' ');
  const opts = e.options.join(',');
  return `${pad24(e.source)}${pad24(e.target)}${e.fstype}\t${opts}${opts.length < 8 ? '\t' : ' '}\t${e.dump ?? 0} ${e.pass ?? 0}`;
}
