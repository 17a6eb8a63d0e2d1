/**
 * Numbered parameters for one statement assembled from parts that several stores contribute (data-modifying CTEs),
 * so a step's writes to several tables cost one round trip and one commit instead of one each.
 */
export class SqlParams {
  readonly values: unknown[] = [];

  /** Adds a value and returns its placeholder ($n). */
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

/** A part of a larger statement: the SQL of one CTE body, its parameters numbered in `params`. */
export type StatementPart = (params: SqlParams) => string;
