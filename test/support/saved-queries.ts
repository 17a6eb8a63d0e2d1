import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The rows of the README's table of saved Temporal Web queries: what each finds, and the query as printed. */
export function savedQueries(): { what: string; query: string }[] {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('| what | query |'));
  const rows: { what: string; query: string }[] = [];
  for (const line of table.split('\n').slice(2)) {
    const match = /^\|\s*([^|]+?)\s*\|\s*`([^`]+)`\s*\|$/.exec(line.trim());
    if (!match) break;
    rows.push({ what: match[1]!, query: match[2]! });
  }
  return rows;
}

/** A saved query with its example time (the "overdue" cutoff) replaced. */
export function withCutoff(query: string, cutoff: Date): string {
  return query.replace(/'\d{4}-\d{2}-\d{2}T[\d:.]+Z'/g, `'${cutoff.toISOString()}'`);
}
