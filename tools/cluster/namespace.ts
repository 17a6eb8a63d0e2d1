/**
 * A namespace ready for batchkeeper on a Temporal server with SQL visibility: registered, with our search attributes
 * (domain/search-attributes.ts) mapped to SQL visibility's pre-allocated columns, and usable by every host.
 *
 * Why the probe: on SQL visibility a search attribute is a namespace alias, and each host sees it only after its
 * namespace cache refreshes. We no longer force that refresh on every read (a dev-only dynamic-config flag, see
 * deploy/temporal/dynamicconfig.yaml), so the namespace counts as ready once a workflow started with every attribute
 * is found by a query on every attribute: the frontend accepted them and a history host wrote them to visibility.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { msToTs } from '@temporalio/common/lib/time';
import { ALL_SEARCH_ATTRIBUTES, DEADLINE, DEAD_LETTERED, TRY_COUNT } from '../../domain/search-attributes';

/** gRPC status ALREADY_EXISTS. */
const ALREADY_EXISTS = 6;
const PROBE_TASK_QUEUE = 'batchkeeper-namespace-probe';
const PROBE_DEADLINE = new Date('2000-01-01T00:00:00.000Z');

export interface PrepareNamespaceOptions {
  address: string;
  namespace: string;
  retentionDays?: number;
  timeoutMs?: number;
  log?: (message: string) => void;
}

export async function prepareNamespace(options: PrepareNamespaceOptions): Promise<void> {
  const { namespace } = options;
  const log = options.log ?? (() => undefined);
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  const connection = await Connection.connect({ address: options.address });
  try {
    await retry(deadline, 'register the namespace', () => registerNamespace(connection, namespace, options.retentionDays ?? 7));
    await retry(deadline, 'register the search attributes', () => registerSearchAttributes(connection, namespace));
    log(`namespace ${namespace}: ${ALL_SEARCH_ATTRIBUTES.length} search attributes registered; waiting until every host uses them`);
    await probe(new Client({ connection, namespace }), deadline);
  } finally {
    await connection.close();
  }
}

async function registerNamespace(connection: Connection, namespace: string, retentionDays: number): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs(`${retentionDays} days`),
    });
  } catch (error) {
    if ((error as { code?: number }).code !== ALREADY_EXISTS) throw error;
  }
  // Registered is not yet known to the frontend's namespace cache.
  await connection.workflowService.describeNamespace({ namespace });
}

/** Adds what is missing, then checks every type: SQL visibility silently keeps an existing alias of another type. */
async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const wanted = Object.fromEntries(ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]));
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: wanted });
  const { customAttributes = {} } = await connection.operatorService.listSearchAttributes({ namespace });
  for (const [name, type] of Object.entries(wanted)) {
    if (customAttributes[name] === undefined) throw new Error(`search attribute ${name} is not registered yet`);
    if (customAttributes[name] !== type) {
      throw new Error(`search attribute ${name} exists in namespace ${namespace} with another type (${customAttributes[name]}, want ${type}): ` +
        'remove it (temporal operator search-attribute remove) or use another namespace');
    }
  }
}

/** A workflow carrying every attribute, found again through a query on all of them; then terminated and deleted. */
async function probe(client: Client, deadline: number): Promise<void> {
  const workflowId = `batchkeeper-namespace-probe-${randomUUID()}`;
  const attributes = ALL_SEARCH_ATTRIBUTES.map((key) => {
    if (key === DEAD_LETTERED) return { key, value: false };
    if (key === TRY_COUNT) return { key, value: 0 };
    if (key === DEADLINE) return { key, value: PROBE_DEADLINE };
    return { key, value: 'probe' };
  }) as SearchAttributePair[];
  const query = [
    `WorkflowId = '${workflowId}'`,
    ...ALL_SEARCH_ATTRIBUTES.map((key) => {
      if (key === DEAD_LETTERED) return `${key.name} = false`;
      if (key === TRY_COUNT) return `${key.name} = 0`;
      if (key === DEADLINE) return `${key.name} = '${PROBE_DEADLINE.toISOString()}'`;
      return `${key.name} = 'probe'`;
    }),
  ].join(' AND ');
  await retry(deadline, 'start a probe workflow with every search attribute', () =>
    client.workflow.start('batchkeeperNamespaceProbe', { taskQueue: PROBE_TASK_QUEUE, workflowId, typedSearchAttributes: attributes }));
  await retry(deadline, 'find the probe workflow by its search attributes', async () => {
    if ((await client.workflow.count(query)).count !== 1) throw new Error('probe not visible yet');
  });
  const handle = client.workflow.getHandle(workflowId);
  await handle.terminate('namespace probe done');
  await client.connection.workflowService.deleteWorkflowExecution({
    namespace: client.options.namespace,
    workflowExecution: { workflowId },
  });
}

async function retry<T>(deadline: number, what: string, fn: () => Promise<T>): Promise<T> {
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (error) {
      lastError = error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(`could not ${what}: ${(lastError as Error)?.message ?? lastError}`);
}
