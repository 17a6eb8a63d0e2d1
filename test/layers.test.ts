/**
 * The layout holds: each product folder imports only the layers below it (domain/ at the bottom, entry points at
 * the top), nothing in the product imports tooling or tests, and no module imports itself back through others.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '..');

/** Folder → the folders it may import from (besides itself). Type-only imports count: they are dependencies too. */
const LAYERS: Record<string, { mayImport: string[]; typeOnly?: string[] }> = {
  domain: { mayImport: [] },
  codec: { mayImport: ['domain'] },
  db: { mayImport: ['domain'] },
  providers: { mayImport: ['domain'] },
  testing: { mayImport: ['domain'] },
  config: { mayImport: ['domain', 'codec'], typeOnly: ['providers'] },
  activities: { mayImport: ['domain', 'db', 'providers'] },
  // Workflows call activities through proxyActivities and see only their types (the Temporal samples' pattern).
  workflows: { mayImport: ['domain'], typeOnly: ['activities'] },
  client: { mayImport: ['domain', 'db', 'codec', 'config'] },
  worker: { mayImport: ['domain', 'db', 'providers', 'codec', 'config', 'activities', 'workflows', 'client'] },
  cli: { mayImport: ['domain', 'db', 'codec', 'config', 'client'] },
  bin: { mayImport: ['cli', 'codec', 'config'] },
};

interface Import {
  from: string;
  target: string;
  typeOnly: boolean;
}

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) yield* tsFiles(full);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) yield full;
  }
}

function localImports(file: string): Import[] {
  const source = readFileSync(file, 'utf8');
  const found: Import[] = [];
  for (const match of source.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'";]*?from\s+['"](\.[^'"]+)['"]/gm)) {
    const base = path.resolve(path.dirname(file), match[2]!);
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find(existsSync);
    assert.ok(target, `${path.relative(ROOT, file)}: cannot resolve ${match[2]}`);
    found.push({ from: file, target, typeOnly: Boolean(match[1]) });
  }
  for (const match of source.matchAll(/\b(?:require|import)\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const base = path.resolve(path.dirname(file), match[1]!);
    const target = [`${base}.ts`, path.join(base, 'index.ts'), base].find(existsSync);
    if (target) found.push({ from: file, target, typeOnly: false });
  }
  return found;
}

const folderOf = (file: string) => path.relative(ROOT, file).split(path.sep)[0]!;

test('every product folder imports only the layers below it', () => {
  const offending: string[] = [];
  let checked = 0;
  for (const folder of Object.keys(LAYERS)) {
    for (const file of tsFiles(path.join(ROOT, folder))) {
      for (const { target, typeOnly } of localImports(file)) {
        checked += 1;
        const to = folderOf(target);
        if (to === folder) continue;
        const rule = LAYERS[folder]!;
        if (rule.mayImport.includes(to) || (typeOnly && rule.typeOnly?.includes(to))) continue;
        offending.push(`${path.relative(ROOT, file)} imports ${path.relative(ROOT, target)}${typeOnly ? ' (types)' : ''}`);
      }
    }
  }
  assert.ok(checked > 200, `walked the imports (${checked})`);
  assert.deepEqual(offending, []);
});

test('every top-level folder with code has a place in the layers, tooling or tests', () => {
  const withCode = readdirSync(ROOT).filter((name) => !name.startsWith('.') && name !== 'node_modules' && name !== 'dist'
    && statSync(path.join(ROOT, name)).isDirectory() && [...tsFiles(path.join(ROOT, name))].length > 0);
  assert.deepEqual(withCode.filter((name) => !(name in LAYERS) && !['tools', 'test', 'examples'].includes(name)), []);
});

test('no module imports itself back through others, in the product or the tooling', () => {
  const graph = new Map<string, string[]>();
  for (const file of tsFiles(ROOT)) {
    if (path.relative(ROOT, file).startsWith('examples')) continue;
    graph.set(file, localImports(file).map((entry) => entry.target));
  }
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next].map((entry) => path.relative(ROOT, entry)).join(' -> '));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  assert.ok(graph.size > 150);
  assert.deepEqual(cycles, []);
});
