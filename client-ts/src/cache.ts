/**
 * A subscribed query's rows as the client holds them: a multiset keyed by each row's
 * canonical JSON, changed by each transaction's deletes and then inserts exactly as the server
 * sends them, or replaced by a fresh result (after a reconnect) with the difference reported.
 * Also the pairing of one transaction's deletes and inserts into updates by primary key.
 */

import { SluiceError } from "./errors.js";
import type { Row } from "./protocol.js";

/** Rows that entered and left a result. */
export interface RowChange {
  inserts: Row[];
  deletes: Row[];
}

/** A row's identity in the multiset: its values as JSON. */
function canonical(row: Row): string {
  return JSON.stringify(row);
}

export class RowCache {
  /** Rows by canonical JSON, with their multiplicities. */
  #rows = new Map<string, { row: Row; count: number }>();
  #size = 0;
  /** The query's column count, which every row must have. */
  #width = 0;
  readonly #sql: string;

  /** `sql` names the query in errors. */
  constructor(sql: string) {
    this.#sql = sql;
  }

  /** How many rows, counting duplicates. */
  get size(): number {
    return this.#size;
  }

  /** Every row, repeated by multiplicity, in no particular order. */
  rows(): Row[] {
    const out: Row[] = [];
    for (const { row, count } of this.#rows.values()) {
      for (let i = 0; i < count; i++) out.push(row);
    }
    return out;
  }

  /**
   * Checks that `changes`, applied in order, are valid for this cache: every row has the
   * query's width, and every delete removes a row held (counting the earlier changes' effects).
   * Throws a protocol error otherwise; changes nothing either way.
   */
  check(changes: RowChange[]): void {
    const delta = new Map<string, number>();
    for (const change of changes) {
      for (const r of [...change.deletes, ...change.inserts]) {
        if (r.length !== this.#width) {
          throw new SluiceError(`protocol error: a row of ${this.#sql} has ${r.length} values for ${this.#width} columns`, { kind: "protocol" });
        }
      }
      for (const row of change.deletes) {
        const key = canonical(row);
        const n = delta.get(key) ?? 0;
        if ((this.#rows.get(key)?.count ?? 0) + n < 1) {
          throw new SluiceError(`protocol error: the server deleted a row the cache of ${this.#sql} does not hold: ${key}`, {
            kind: "protocol",
          });
        }
        delta.set(key, n - 1);
      }
      for (const row of change.inserts) {
        const key = canonical(row);
        delta.set(key, (delta.get(key) ?? 0) + 1);
      }
    }
  }

  /**
   * Applies one transaction's change: deletes, then inserts. A change `check` refuses (a
   * delete of a row the cache does not hold, a row of the wrong width) throws, and the cache
   * is left as it was.
   */
  apply(change: RowChange): void {
    this.check([change]);
    for (const row of change.deletes) {
      const key = canonical(row);
      const entry = this.#rows.get(key)!;
      entry.count -= 1;
      if (entry.count === 0) this.#rows.delete(key);
    }
    for (const row of change.inserts) this.#add(canonical(row), row, 1);
    this.#size += change.inserts.length - change.deletes.length;
  }

  #add(key: string, row: Row, n: number): void {
    const entry = this.#rows.get(key);
    if (entry) entry.count += n;
    else this.#rows.set(key, { row, count: n });
  }

  /**
   * Replaces the rows with a fresh result of `width` columns (whose widths the decoder
   * checked); returns how that differs from what was held.
   */
  reset(rows: Row[], width: number): RowChange {
    this.#width = width;
    const old = this.#rows;
    this.#rows = new Map();
    for (const row of rows) this.#add(canonical(row), row, 1);
    this.#size = rows.length;
    const surplus = (a: Map<string, { row: Row; count: number }>, b: Map<string, { row: Row; count: number }>): Row[] => {
      const out: Row[] = [];
      for (const [key, { row, count }] of a) {
        for (let i = b.get(key)?.count ?? 0; i < count; i++) out.push(row);
      }
      return out;
    };
    return { inserts: surplus(this.#rows, old), deletes: surplus(old, this.#rows) };
  }
}

/** A change as callbacks see it: updates (a delete and an insert of one key), then the rest. */
export interface PairedChange {
  updates: [oldRow: Row, newRow: Row][];
  inserts: Row[];
  deletes: Row[];
}

/**
 * Pairs each insert with a delete of the same primary key (the values of the `key` columns)
 * as an update; without a key, every delete and insert stands alone.
 */
export function pairByKey(change: RowChange, key: number[] | undefined): PairedChange {
  if (key === undefined) return { updates: [], inserts: change.inserts, deletes: change.deletes };
  const keyOf = (r: Row): string => canonical(key.map((k) => r[k] ?? null));
  const waiting = new Map<string, number[]>();
  change.deletes.forEach((r, i) => {
    const k = keyOf(r);
    const queue = waiting.get(k);
    if (queue) queue.push(i);
    else waiting.set(k, [i]);
  });
  const paired = new Set<number>();
  const updates: [Row, Row][] = [];
  const inserts: Row[] = [];
  for (const r of change.inserts) {
    const i = waiting.get(keyOf(r))?.shift();
    if (i === undefined) {
      inserts.push(r);
    } else {
      paired.add(i);
      updates.push([change.deletes[i], r]);
    }
  }
  return { updates, inserts, deletes: change.deletes.filter((_, i) => !paired.has(i)) };
}
