/**
 * For test/cluster/*.test.ts, which run-tests.ts runs against a Temporal cluster (tools/cluster): its frontend, and
 * a fresh namespace prepared exactly as the cluster prepares its own.
 */
import { randomUUID } from 'node:crypto';
import { prepareNamespace } from '../../tools/cluster/namespace';

function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run cluster tests through \`npm run test:cluster\` (or \`npm test\`), which starts the cluster`);
  return value;
}

export function clusterAddress(): string {
  return requiredEnv('BATCHKEEPER_TEST_TEMPORAL_ADDRESS');
}

/** A namespace of the test's own, with batchkeeper's search attributes, so that visibility holds only its workflows. */
export async function freshNamespace(prefix: string): Promise<string> {
  const namespace = `${prefix}-${randomUUID().slice(0, 8)}`;
  await prepareNamespace({ address: clusterAddress(), namespace, retentionDays: 1 });
  return namespace;
}
