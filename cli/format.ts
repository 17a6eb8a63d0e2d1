/** Human output (aligned tables, label/value blocks, times) and the JSON form of --json. */

export function toJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}

export const dash = (value: unknown): string => (value === null || value === undefined || value === '' ? '-' : String(value));

export function truncate(text: string | null | undefined, max = 60): string {
  if (!text) return '-';
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/** 2025-01-31 12:00:00Z, or "-". */
export function time(value: Date | string | null | undefined): string {
  if (!value) return '-';
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

export function duration(ms: number): string {
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(abs)}ms`;
  const units: [string, number][] = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];
  const parts: string[] = [];
  let rest = Math.round(abs / 1000) * 1000;
  for (const [unit, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join(' ');
}

/** A time with how far away it is: "2025-01-31 12:00:00Z (in 3h 5m)". */
export function timeWithDistance(value: Date | string | null | undefined, now = Date.now()): string {
  if (!value) return '-';
  const at = new Date(value).getTime();
  const distance = at - now;
  return `${time(value)} (${distance >= 0 ? `in ${duration(distance)}` : `${duration(distance)} ago`})`;
}

/** Aligned columns; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** "label:  value" lines, labels aligned; continuation lines of a multi-line value line up under it. */
export function fields(pairs: [string, string][], indent = '  '): string {
  const width = Math.max(...pairs.map(([label]) => label.length)) + 1;
  const continuation = '\n' + ' '.repeat(indent.length + width + 2);
  return pairs
    .map(([label, value]) => `${indent}${`${label}:`.padEnd(width)}  ${value.split('\n').join(continuation)}`)
    .join('\n');
}

export function indent(text: string, prefix = '  '): string {
  return text.split('\n').map((line) => (line ? prefix + line : line)).join('\n');
}

/** Small event details as key=value. */
export function compact(detail: Record<string, unknown> | null | undefined): string {
  if (!detail) return '';
  return Object.entries(detail)
    .filter(([, value]) => value !== null && value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ');
}

export function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}
