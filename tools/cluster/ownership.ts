/**
 * Who serves what, read from Temporal's own PostgreSQL tables, to see a failover happen: history shards record
 * their owner (`<host gRPC address>-<sequence>-<uuid>`) and a range id that grows each time a host acquires the shard;
 * task queue partitions record only that range id, which grows each time a matching host takes the partition over.
 */
import type { Pool } from 'pg';

export interface ShardOwnership {
  shardId: number;
  rangeId: number;
  /** The owning history host's gRPC address, e.g. 127.0.0.1:27793. */
  owner: string | undefined;
}

export async function shardOwnership(temporalDb: Pool): Promise<ShardOwnership[]> {
  const { rows } = await temporalDb.query<{ shard_id: number; range_id: string; data: Buffer }>(
    'SELECT shard_id, range_id, data FROM shards ORDER BY shard_id',
  );
  return rows.map((row) => ({
    shardId: row.shard_id,
    rangeId: Number(row.range_id),
    owner: /(\d{1,3}(?:\.\d{1,3}){3}:\d+)-\d+-[0-9a-f]{8}-/.exec(row.data.toString('latin1'))?.[1],
  }));
}

/**
 * The sum of the range ids of a task queue's partitions (root and /_sys/<name>/N, every type): it grows whenever a
 * matching host acquires one of them. A partition id is the namespace id (16 bytes), the name, then a type byte.
 */
export async function taskQueueRangeSum(temporalDb: Pool, taskQueue: string): Promise<number> {
  const { rows } = await temporalDb.query<{ task_queue_id: Buffer; range_id: string }>('SELECT task_queue_id, range_id FROM task_queues');
  const escaped = taskQueue.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const partition = new RegExp(`^(?:${escaped}|/_sys/${escaped}/\\d+)[\\x00-\\xff]$`);
  return rows
    .filter((row) => partition.test(row.task_queue_id.subarray(16).toString('latin1')))
    .reduce((sum, row) => sum + Number(row.range_id), 0);
}
