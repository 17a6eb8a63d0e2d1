/**
 * SQL visibility gives each namespace a fixed number of custom search attribute columns per type (Temporal's
 * pre-allocated Keyword01..10, Bool01..03, ...). Ours (domain/search-attributes.ts) must fit beside what an operator
 * may add, and the limits the domain file states must be the server's.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection } from '@temporalio/client';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { ALL_SEARCH_ATTRIBUTES } from '../../domain/search-attributes';
import { clusterAddress, freshNamespace } from '../support/cluster';

/** As stated in domain/search-attributes.ts: SQL visibility allows 10 Keyword, 3 Bool, 3 Int, 3 Datetime per namespace. */
const LIMITS = { KEYWORD: 10, BOOL: 3, INT: 3, DATETIME: 3 } as const;

test('our search attributes are registered with their types, and each type takes exactly its SQL visibility limit', async () => {
  const namespace = await freshNamespace('bk-sa-limits');
  const connection = await Connection.connect({ address: clusterAddress() });
  try {
    const { customAttributes = {} } = await connection.operatorService.listSearchAttributes({ namespace });
    for (const key of ALL_SEARCH_ATTRIBUTES) {
      assert.equal(customAttributes[key.name], encodeSearchAttributeIndexedValueType(key.type), `${key.name} is a ${key.type}`);
    }
    for (const [type, limit] of Object.entries(LIMITS) as [keyof typeof LIMITS, number][]) {
      const used = ALL_SEARCH_ATTRIBUTES.filter((key) => key.type === type).length;
      assert.ok(used <= limit, `we use ${used} ${type} attributes of ${limit}`);
      const indexedType = encodeSearchAttributeIndexedValueType(type)!;
      const extra = Array.from({ length: limit - used }, (_, index) => `OperatorExtra${type}${index}`);
      if (extra.length) {
        await connection.operatorService.addSearchAttributes({
          namespace, searchAttributes: Object.fromEntries(extra.map((name) => [name, indexedType])),
        });
      }
      await assert.rejects(
        connection.operatorService.addSearchAttributes({ namespace, searchAttributes: { [`OperatorOneTooMany${type}`]: indexedType } }),
        new RegExp(`cannot have more than ${limit} search attribute`),
        `a ${limit + 1}th ${type} attribute is refused`,
      );
    }
  } finally {
    await connection.close();
  }
});
