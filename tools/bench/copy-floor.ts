/**
 * The floor of the ingest and large-submit measurements: PostgreSQL's own COPY FROM STDIN of the same rows into a
 * scratch table shaped like the real one (LIKE … INCLUDING ALL: keys, indexes, checks), the fastest of `runs`, each
 * after a CHECKPOINT (one that set off inside a timed COPY once made it twice as slow).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { sleep } from './context';

export async function fastestCopy(pool: Pool, options: { like: 'request_results' | 'batch_requests'; columns: string; chunks: Buffer[]; runs: number }) {
  const scratch = `bench_copy_${options.like}`;
  const client = await pool.connect();
  try {
    const runSeconds: number[] = [];
    let rows = 0;
    for (let run = 0; run < options.runs; run += 1) {
      await client.query(`DROP TABLE IF EXISTS ${scratch}`);
      await client.query(`CREATE TABLE ${scratch} (LIKE ${options.like} INCLUDING ALL)`);
      await client.query('CHECKPOINT');
      await sleep(500);
      const started = process.hrtime.bigint();
      await pipeline(Readable.from(options.chunks), client.query(copyFrom(`COPY ${scratch} (${options.columns}) FROM STDIN`)));
      runSeconds.push(Number(process.hrtime.bigint() - started) / 1e9);
      rows = Number((await client.query(`SELECT count(*) AS n FROM ${scratch}`)).rows[0].n);
    }
    await client.query(`DROP TABLE ${scratch}`);
    const seconds = Math.min(...runSeconds);
    return { rows, seconds, runSeconds, rowsPerSec: Math.round(rows / seconds), bytes: options.chunks.reduce((sum, chunk) => sum + chunk.length, 0) };
  } finally {
    client.release();
  }
}
