/**
 * The WebSocket protocol's messages (docs/PROTOCOL.md) in its JSON encoding, subprotocol
 * `sluice.json.v1`: the types of what a client sends and receives, and the decoder that checks
 * every server frame's shape before anything acts on it (a frame that does not fit is a
 * protocol violation, never half-read).
 */

import { SluiceError } from "./errors.js";

/** The subprotocol this client speaks: JSON text frames. */
export const JSON_PROTOCOL = "sluice.json.v1";

/**
 * A value as JSON carries it. BYTES arrive as lowercase hex strings; INTEGER and UNSIGNED
 * values beyond ±2^53 lose precision, since JSON numbers are read as doubles.
 */
export type Value = null | boolean | number | string;

/** A row: values in column order. */
export type Row = Value[];

/** A result column: its name and SQL type (INTEGER, UNSIGNED, REAL, TEXT, BYTES, BOOLEAN, NULL). */
export interface Column {
  name: string;
  type: string;
}

/** What a client sends. */
export type ClientMessage =
  | { type: "Subscribe"; request_id: number; queries: string[] }
  | { type: "Unsubscribe"; request_id: number; query_id: number }
  | { type: "CallReducer"; request_id: number; reducer: string; args: unknown[] | Record<string, unknown> }
  | { type: "OneOffQuery"; request_id: number; sql: string };

/** One query of an applied subscription: its shared id, columns, key columns and rows. */
export interface AppliedQuery {
  query_id: number;
  sql: string;
  columns: Column[];
  primary_key?: number[];
  rows: Row[];
}

/** One query's rows that entered and left its result in one transaction. */
export interface QueryUpdate {
  query_id: number;
  inserts: Row[];
  deletes: Row[];
}

/** One committed transaction: every changed query the client subscribes to. */
export interface TransactionUpdate {
  type: "TransactionUpdate";
  offset: number;
  timestamp_micros: number;
  reducer: string;
  caller: string;
  updates: QueryUpdate[];
}

/** What the server sends. */
export type ServerMessage =
  | { type: "IdentityToken"; identity: string; token: string }
  | { type: "SubscribeApplied"; request_id: number; offset: number; queries: AppliedQuery[] }
  | { type: "UnsubscribeApplied"; request_id: number; query_id: number }
  | TransactionUpdate
  /** Several transactions' updates in one frame, in offset order. */
  | { type: "TransactionUpdates"; transactions: TransactionUpdate[] }
  | { type: "ReducerResult"; request_id: number; status: "committed"; offset: number }
  | { type: "ReducerResult"; request_id: number; status: "failed"; error: string }
  | { type: "SubscriptionError"; request_id: number; error: string }
  | { type: "QueryResult"; request_id: number; offset: number; columns: Column[]; rows: Row[] }
  | { type: "Error"; request_id?: number; error: string };

export function encodeClientMessage(message: ClientMessage): string {
  return JSON.stringify(message);
}

function violation(what: string): never {
  throw new SluiceError(`protocol error: ${what}`, { kind: "protocol" });
}

function isValue(v: unknown): v is Value {
  return v === null || typeof v === "boolean" || typeof v === "number" || typeof v === "string";
}

/** One JSON object of a frame, read field by field; `where` names it in errors. */
class Fields {
  readonly #o: Record<string, unknown>;
  readonly #where: string;

  constructor(v: unknown, where: string) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) violation(`${where} is not an object`);
    this.#o = v as Record<string, unknown>;
    this.#where = where;
  }

  #get(name: string): unknown {
    if (this.#o[name] === undefined) violation(`${this.#where} lacks "${name}"`);
    return this.#o[name];
  }

  has(name: string): boolean {
    return this.#o[name] !== undefined && this.#o[name] !== null;
  }

  str(name: string): string {
    const v = this.#get(name);
    return typeof v === "string" ? v : violation(`${this.#where}.${name} is not a string`);
  }

  /** A non-negative integer: ids and offsets. */
  count(name: string): number {
    const v = this.#get(name);
    return typeof v === "number" && Number.isInteger(v) && v >= 0
      ? v
      : violation(`${this.#where}.${name} is not a non-negative integer`);
  }

  list(name: string): unknown[] {
    const v = this.#get(name);
    return Array.isArray(v) ? v : violation(`${this.#where}.${name} is not an array`);
  }

  /** Each item as an object of its own. */
  objects(name: string): Fields[] {
    return this.list(name).map((v, i) => new Fields(v, `${this.#where}.${name}[${i}]`));
  }

  /**
   * Rows of scalar values, `width` each where it is known here; each row is frozen, since
   * caches and callbacks share them.
   */
  rows(name: string, width?: number): Row[] {
    return this.list(name).map((r) => {
      if (!Array.isArray(r) || !r.every(isValue)) violation(`${this.#where}.${name} holds a row that is not an array of values`);
      if (width !== undefined && r.length !== width) violation(`${this.#where}.${name} holds a row of ${r.length} values for ${width} columns`);
      return Object.freeze(r) as Row;
    });
  }

  columns(name: string): Column[] {
    return this.objects(name).map((c) => ({ name: c.str("name"), type: c.str("type") }));
  }
}

function appliedQuery(q: Fields): AppliedQuery {
  const columns = q.columns("columns");
  const applied: AppliedQuery = { query_id: q.count("query_id"), sql: q.str("sql"), columns, rows: q.rows("rows", columns.length) };
  if (q.has("primary_key")) {
    const key = q.list("primary_key");
    if (!key.every((k) => typeof k === "number" && Number.isInteger(k) && k >= 0 && k < applied.columns.length)) {
      violation(`the primary key of ${applied.sql} names columns it does not have`);
    }
    applied.primary_key = key as number[];
  }
  return applied;
}

function transactionUpdate(o: Fields): TransactionUpdate {
  return {
    type: "TransactionUpdate",
    offset: o.count("offset"),
    timestamp_micros: o.count("timestamp_micros"),
    reducer: o.str("reducer"),
    caller: o.str("caller"),
    updates: o.objects("updates").map((u) => ({ query_id: u.count("query_id"), inserts: u.rows("inserts"), deletes: u.rows("deletes") })),
  };
}

function reducerResult(o: Fields): ServerMessage {
  const request_id = o.count("request_id");
  const status = o.str("status");
  switch (status) {
    case "committed":
      return { type: "ReducerResult", request_id, status, offset: o.count("offset") };
    case "failed":
      return { type: "ReducerResult", request_id, status, error: o.has("error") ? o.str("error") : "the reducer failed" };
    default:
      return violation(`ReducerResult.status is ${JSON.stringify(status)}`);
  }
}

/** Reads one server frame; throws a protocol SluiceError naming what is wrong with it. */
export function decodeServerMessage(text: string): ServerMessage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    violation(`a frame is not JSON (${(e as Error).message}): ${text.slice(0, 200)}`);
  }
  const type = new Fields(parsed, "a message").str("type");
  const o = new Fields(parsed, type);
  switch (type) {
    case "IdentityToken":
      return { type, identity: o.str("identity"), token: o.str("token") };
    case "SubscribeApplied":
      return { type, request_id: o.count("request_id"), offset: o.count("offset"), queries: o.objects("queries").map(appliedQuery) };
    case "UnsubscribeApplied":
      return { type, request_id: o.count("request_id"), query_id: o.count("query_id") };
    case "TransactionUpdate":
      return transactionUpdate(o);
    case "TransactionUpdates":
      return {
        type,
        transactions: o.objects("transactions").map((t) => {
          const inner = t.str("type");
          if (inner !== "TransactionUpdate") violation(`a TransactionUpdates holds a ${JSON.stringify(inner)}`);
          return transactionUpdate(t);
        }),
      };
    case "ReducerResult":
      return reducerResult(o);
    case "SubscriptionError":
      return { type, request_id: o.count("request_id"), error: o.str("error") };
    case "QueryResult": {
      const columns = o.columns("columns");
      return { type, request_id: o.count("request_id"), offset: o.count("offset"), columns, rows: o.rows("rows", columns.length) };
    }
    case "Error":
      return o.has("request_id") ? { type, request_id: o.count("request_id"), error: o.str("error") } : { type, error: o.str("error") };
    default:
      return violation(`unknown message type ${JSON.stringify(type)}`);
  }
}
