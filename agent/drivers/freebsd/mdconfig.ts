/** One attached md(4) unit from `mdconfig -l -v`. */
export interface MdUnit {
  readonly unit: string;
  readonly type: string;
  /** Humanized size as printed ("1024M", "2.0G"). */
  readonly size: string;
  /** Backing file, or undefined for malloc/swap/null ("-"). */
  readonly file: string | undefined;
  readonly label: string | undefined;
}

/**
 * `mdconfig -l -v`: `mdN<TAB>type<TAB>%6s size<TAB>file[<TAB>label]` (13+ add the
 * label column, so an unlabelled line ends with a TAB; older ones stop at file).
 */
export function parseMdconfigList(text: string): MdUnit[] {
  const out: MdUnit[] = [];
  for (const raw of text.split('\n')) {
    const f = raw.replace(/\r$/, '').split('\t');
    if (f.length < 4 || !/^md\d+$/.test(f[0]!)) continue;
    const file = f[3]!.trim();
    const label = (f[4] ?? '').trim();
    out.push({ unit: f[0]!, type: f[1]!.trim(), size: f[2]!.trim(), file: file === '-' || file === '' ? undefined : file, label: label || undefined });
  }
  return out;
}
