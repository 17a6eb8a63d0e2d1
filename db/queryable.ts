import type { Pool, PoolClient } from 'pg';

/** A pool or a client inside a transaction: store functions accept either. */
export type Queryable = Pool | PoolClient;
