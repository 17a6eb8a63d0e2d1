/**
 * Text PostgreSQL can store. `text` and `jsonb` refuse the NUL character (U+0000), and a lone UTF-16 surrogate has no
 * UTF-8 form (jsonb refuses its escape; a text column would get U+FFFD in its place, changing the value silently).
 * One rule for every string that reaches PostgreSQL: the client's input validation refuses such text naming the
 * field, and a provider's result that holds it fails only its own request.
 */

const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/** Why PostgreSQL cannot store `text`, or undefined when it can. */
export function unstorableText(text: string): string | undefined {
  const match = UNSTORABLE.exec(text);
  if (!match) return undefined;
  if (match[0] === '\u0000') return `holds a NUL character (\\u0000) at position ${match.index}, which PostgreSQL cannot store`;
  const code = match[0].charCodeAt(0).toString(16);
  return `holds a lone UTF-16 surrogate (\\u${code}) at position ${match.index}: not valid Unicode, so PostgreSQL cannot store it`;
}

/** The path (from `root`) and cause of the first string or object key in a JSON value that PostgreSQL cannot store. */
export function findUnstorableText(value: unknown, root: string): { path: string; problem: string } | undefined {
  if (typeof value === 'string') {
    const problem = unstorableText(value);
    return problem ? { path: root, problem } : undefined;
  }
  if (Array.isArray(value)) {
    for (const [index, item] of value.entries()) {
      const found = findUnstorableText(item, `${root}[${index}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const path = /^[A-Za-z_$][\w$]*$/.test(key) ? `${root}.${key}` : `${root}[${JSON.stringify(key)}]`;
      const keyProblem = unstorableText(key);
      if (keyProblem) return { path, problem: `has a key that ${keyProblem}` };
      const found = findUnstorableText(item, path);
      if (found) return found;
    }
  }
  return undefined;
}

/** JSON escapes of what PostgreSQL cannot store: NUL, and surrogates (a valid pair is not escaped, a lone one is). */
const SUSPECT_ESCAPE = /\\u0000|\\ud[89a-f][0-9a-f]{2}/i;

/**
 * A value as JSON text for a jsonb column, with the first text in it PostgreSQL cannot store. The JSON text is scanned
 * first, and the value walked for the path only when an escape in it looks suspect (a literal backslash can look so).
 * Throws what JSON.stringify throws (BigInt, a cycle).
 */
export function jsonForStorage(value: unknown, root: string): { json: string | undefined; unstorable?: { path: string; problem: string } } {
  const json = JSON.stringify(value);
  // includes() first: it scans 200 MB of request bodies in a few ms, the regex alone took 0.7 s.
  const unstorable = json !== undefined && json.includes('\\u') && SUSPECT_ESCAPE.test(json) ? findUnstorableText(value, root) : undefined;
  return unstorable ? { json, unstorable } : { json };
}

/** For diagnostic text only (a provider's error message): what PostgreSQL cannot store becomes U+FFFD. */
export function storableDiagnostic(text: string): string {
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE_ALL, '\ufffd') : text;
}
