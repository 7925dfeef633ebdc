/**
 * One subscribed query as an application holds it: its columns and key, its rows (an exact
 * local cache), and its callbacks — insert, delete, update (a delete and an insert of one
 * primary key in one transaction) and the raw change of each transaction. The client feeds it;
 * the methods marked internal are the client's and are left out of the published types.
 */

import { pairByKey, RowCache, type RowChange } from "./cache.js";
import type { AppliedQuery, Column, Value } from "./protocol.js";

/** A committed transaction as a client sees it, once every cache holds it. */
export interface TransactionInfo {
  offset: number;
  timestampMicros: number;
  reducer: string;
  /**
   * The caller's identity (hex), shown to the database's owner and to the caller itself; empty
   * for the server's own transactions (e.g. a scheduled reducer) and for others' calls.
   */
  caller: string;
  /** Per changed query id: the rows that entered and left its result. */
  updates: { queryId: number; inserts: Value[][]; deletes: Value[][] }[];
  /**
   * True for the difference a resubscription made after a reconnect (not one transaction:
   * `timestampMicros` is 0 and `reducer` and `caller` are empty).
   */
  resync: boolean;
}

export type RowListener = (row: Value[], tx: TransactionInfo) => void;
export type UpdateListener = (oldRow: Value[], newRow: Value[], tx: TransactionInfo) => void;
export type ChangeListener = (change: { inserts: Value[][]; deletes: Value[][]; offset: number }) => void;

/** What a subscription needs of its client. @internal */
export interface SubscriptionHost {
  unsubscribe(subscription: Subscription): Promise<void>;
  /** Runs an application's callback; what it throws is reported, not passed on. */
  guard(callback: () => void): void;
}

export class Subscription {
  readonly #host: SubscriptionHost;
  readonly #sql: string;
  #queryId: number;
  #columns: Column[];
  #primaryKey: number[] | undefined;
  readonly #cache: RowCache;
  readonly #listeners = {
    insert: new Set<RowListener>(),
    delete: new Set<RowListener>(),
    update: new Set<UpdateListener>(),
    change: new Set<ChangeListener>(),
  };

  /** Made by `SluiceClient.subscribe`, from the server's answer. @internal */
  constructor(host: SubscriptionHost, applied: AppliedQuery) {
    this.#host = host;
    this.#sql = applied.sql;
    this.#queryId = applied.query_id;
    this.#columns = applied.columns;
    this.#primaryKey = applied.primary_key;
    this.#cache = new RowCache(applied.sql);
    this.#cache.reset(applied.rows, applied.columns.length);
  }

  /** The server's id of the query (shared by identical queries; new after a reconnect). */
  get queryId(): number {
    return this.#queryId;
  }

  get sql(): string {
    return this.#sql;
  }

  get columns(): Column[] {
    return this.#columns;
  }

  /** The columns holding a table's primary key, where the result keeps one row per key. */
  get primaryKey(): number[] | undefined {
    return this.#primaryKey;
  }

  /** The current result: rows repeated by multiplicity, in no particular order (frozen). */
  rows(): Value[][] {
    return this.#cache.rows();
  }

  /** How many rows the result has, counting duplicates. */
  get size(): number {
    return this.#cache.size;
  }

  /** Adds a callback; returns a function that removes it. */
  on(event: "insert", cb: RowListener): () => void;
  on(event: "delete", cb: RowListener): () => void;
  on(event: "update", cb: UpdateListener): () => void;
  on(event: "change", cb: ChangeListener): () => void;
  on(event: "insert" | "delete" | "update" | "change", cb: RowListener | UpdateListener | ChangeListener): () => void {
    const set = this.#listeners[event] as Set<unknown>;
    set.add(cb);
    return () => {
      set.delete(cb);
    };
  }

  /**
   * Ends the subscription: callbacks stop and `rows()` keeps the last result. The server is
   * told once no other Subscription of this client shares the query id.
   */
  unsubscribe(): Promise<void> {
    for (const set of Object.values(this.#listeners)) set.clear();
    return this.#host.unsubscribe(this);
  }

  /** Throws a protocol error unless `changes`, in order, are valid for the cache; changes nothing. @internal */
  check(changes: RowChange[]): void {
    this.#cache.check(changes);
  }

  /** Applies one transaction's change to the cache (throws on a protocol violation). @internal */
  apply(change: RowChange): void {
    this.#cache.apply(change);
  }

  /**
   * Takes a fresh answer to the same SQL (after a reconnect): the new query id, columns and
   * rows; returns how the rows differ from those held. @internal
   */
  reseat(applied: AppliedQuery): RowChange {
    this.#queryId = applied.query_id;
    this.#primaryKey = applied.primary_key;
    this.#columns = applied.columns;
    return this.#cache.reset(applied.rows, applied.columns.length);
  }

  /** Runs the callbacks for a change the cache holds: updates, deletes, inserts, then the change. @internal */
  emit(change: RowChange, tx: TransactionInfo): void {
    const l = this.#listeners;
    if (l.update.size + l.delete.size + l.insert.size > 0) {
      const paired = pairByKey(change, this.#primaryKey);
      for (const [oldRow, newRow] of paired.updates) for (const cb of [...l.update]) this.#host.guard(() => cb(oldRow, newRow, tx));
      for (const row of paired.deletes) for (const cb of [...l.delete]) this.#host.guard(() => cb(row, tx));
      for (const row of paired.inserts) for (const cb of [...l.insert]) this.#host.guard(() => cb(row, tx));
    }
    for (const cb of [...l.change]) this.#host.guard(() => cb({ inserts: change.inserts, deletes: change.deletes, offset: tx.offset }));
  }
}
