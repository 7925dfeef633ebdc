/**
 * `SluiceClient`: a live WebSocket connection to one database (JSON subprotocol). Every frame
 * is read and applied — caches, answers, callbacks — before the next, so a reducer call, whose
 * result the server sends after its transaction's update, resolves with the caches already
 * holding its effects. A lost connection is re-established with backoff, as the same
 * identity, and every live subscription resubscribed at one offset; each cache then becomes
 * the server's result, its callbacks seeing only the rows that differ. A handshake that fails
 * is followed by an HTTP check, so a token the server refuses (401) or a database that is gone
 * (404) closes the client with that reason instead of retrying forever. Anything the server
 * sends that breaks the protocol is reported and drops the connection, so no cache is left
 * silently wrong: a transaction is checked against every cache before any of them changes.
 */

import type { RowChange } from "./cache.js";
import { SluiceError } from "./errors.js";
import {
  decodeServerMessage,
  encodeClientMessage,
  JSON_PROTOCOL,
  type AppliedQuery,
  type ClientMessage,
  type Column,
  type ServerMessage,
  type TransactionUpdate,
  type Value,
} from "./protocol.js";
import { Subscription, type SubscriptionHost, type TransactionInfo } from "./subscription.js";

/** A WebSocket class: the browser's, or the `ws` package's in Node. */
export type WebSocketConstructor = new (url: string, protocol: string) => object;

/** The part of the WebSocket API this client uses, common to browsers and `ws`. */
interface Socket {
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number): void;
}

export interface ConnectOptions {
  /** The server's base URL, e.g. "http://127.0.0.1:3000" (the WebSocket's is derived). */
  url: string;
  database: string;
  /** A token from an earlier connection or `HttpClient.identity()`; none asks for a new identity. */
  token?: string | undefined;
  /** Reconnect with backoff and resubscribe when the connection is lost (default true). */
  reconnect?: boolean | undefined;
  /** The WebSocket class (default `globalThis.WebSocket`; Node 20 needs the `ws` package's). */
  WebSocket?: WebSocketConstructor | undefined;
  /** How long a connection may take to send its IdentityToken (default 10 000 ms). */
  connectTimeoutMs?: number | undefined;
  /** The first reconnect's delay; each further one doubles, up to the maximum (default 100 ms). */
  reconnectMinDelayMs?: number | undefined;
  /** The longest delay between reconnects (default 5 000 ms). */
  reconnectMaxDelayMs?: number | undefined;
}

export type Status = "open" | "reconnecting" | "closed";

/** A request waiting for its answer. */
interface Pending {
  answer(message: ServerMessage): void;
  fail(error: SluiceError): void;
}

/** The WebSocket endpoint of a database (without the token, which errors must not show). */
function socketUrl(server: string, database: string): string {
  const base = server.replace(/\/+$/, "").replace(/^http(s?):\/\//i, "ws$1://");
  return `${base}/v1/database/${encodeURIComponent(database)}/subscribe`;
}

/** A refusal the HTTP check found: the status (401 or 404) and the server's reason. */
interface Refusal {
  status: 401 | 404;
  reason: string;
}

/** A frame's message: JSON text, as this connection's subprotocol has it. */
function decodeFrame(data: unknown): ServerMessage {
  if (typeof data !== "string") {
    throw new SluiceError("protocol error: a binary frame on a JSON connection", { kind: "protocol" });
  }
  return decodeServerMessage(data);
}

function unexpected(answer: ServerMessage, wanted: string): never {
  throw new SluiceError(`protocol error: expected ${wanted}, got ${answer.type}`, { kind: "protocol" });
}

export class SluiceClient {
  readonly #url: string;
  readonly #database: string;
  readonly #reconnect: boolean;
  readonly #WebSocket: WebSocketConstructor;
  readonly #connectTimeoutMs: number;
  readonly #minDelayMs: number;
  readonly #maxDelayMs: number;

  #socket: Socket | undefined;
  #identity = "";
  #token: string | undefined;
  #status: Status = "reconnecting";
  /** The last offset seen, and the last seen on this connection (reset by a reconnect). */
  #offset = 0;
  #connectionOffset = 0;
  #nextRequest = 1;
  readonly #pending = new Map<number, Pending>();
  /** Live subscriptions, in the order they were made. */
  readonly #subscriptions = new Set<Subscription>();
  /** The subscriptions each of the server's query ids feeds, on this connection. */
  readonly #routes = new Map<number, Set<Subscription>>();
  /** Subscribes and unsubscribes run one at a time (see `#release`). */
  #serial: Promise<unknown> = Promise.resolve();
  #closed = false;
  #retries = 0;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Since when every failed reconnect's HTTP check has found the database missing. */
  #missingSince: number | undefined;
  readonly #listeners = {
    transaction: new Set<(tx: TransactionInfo) => void>(),
    status: new Set<(status: Status, reason?: string) => void>(),
    error: new Set<(error: SluiceError) => void>(),
  };
  readonly #host: SubscriptionHost = {
    unsubscribe: (s) => this.#unsubscribe(s),
    guard: (callback) => this.#guard(callback),
  };

  private constructor(options: ConnectOptions) {
    const ws = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ws === undefined) {
      throw new SluiceError("no WebSocket: pass one as the WebSocket option (in Node 20, the ws package's)", {
        kind: "connection",
      });
    }
    this.#url = options.url;
    this.#database = options.database;
    this.#token = options.token;
    this.#reconnect = options.reconnect ?? true;
    this.#WebSocket = ws;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#minDelayMs = options.reconnectMinDelayMs ?? 100;
    this.#maxDelayMs = options.reconnectMaxDelayMs ?? 5_000;
  }

  /**
   * Connects; resolves once the server has sent this client's identity and token. Rejects
   * with `kind: "refused"` and the HTTP `status` when the server refuses the token (401) or
   * has no such database (404), else with `kind: "connection"`.
   */
  static async connect(options: ConnectOptions): Promise<SluiceClient> {
    const client = new SluiceClient(options);
    try {
      await client.#open();
    } catch (e) {
      const refusal = await client.#refusal();
      if (refusal === undefined) throw e;
      throw new SluiceError(`cannot connect to ${socketUrl(client.#url, client.#database)}: ${client.#explain(refusal)}`, {
        kind: "refused",
        status: refusal.status,
        cause: e,
      });
    }
    client.#status = "open";
    return client;
  }

  /** This client's identity (64 hex digits). */
  get identity(): string {
    return this.#identity;
  }

  /** The token that connects again as the same identity. */
  get token(): string {
    return this.#token ?? "";
  }

  /** The latest offset seen: of a subscription applied or a transaction received. */
  get offset(): number {
    return this.#offset;
  }

  get status(): Status {
    return this.#status;
  }

  /**
   * Subscribes to queries, all applied at one offset; each Subscription's cache holds its
   * query's rows as of then. Rejects (subscribing none) on any error.
   */
  subscribe(sql: string | string[]): Promise<Subscription[]> {
    const queries = typeof sql === "string" ? [sql] : [...sql];
    return this.#serially(async () => {
      this.#ensureOpen();
      return this.#request(
        (request_id) => ({ type: "Subscribe", request_id, queries }),
        (answer) => {
          if (answer.type !== "SubscribeApplied") unexpected(answer, "SubscribeApplied");
          const subscriptions = this.#matched(queries, answer.queries).map((q) => new Subscription(this.#host, q));
          for (const s of subscriptions) {
            this.#subscriptions.add(s);
            this.#route(s);
          }
          this.#connectionOffset = this.#offset = Math.max(this.#connectionOffset, answer.offset);
          return subscriptions;
        },
      );
    });
  }

  /**
   * Calls a reducer with positional (array) or named (object) arguments. Resolves with its
   * transaction's offset once committed, when the caches already hold its effects; rejects
   * with the reducer's error if it failed (rolled back).
   */
  async call(reducer: string, args: unknown[] | Record<string, unknown> = []): Promise<{ offset: number }> {
    this.#ensureOpen();
    return this.#request(
      (request_id) => ({ type: "CallReducer", request_id, reducer, args }),
      (answer) => {
        if (answer.type !== "ReducerResult") unexpected(answer, "ReducerResult");
        if (answer.status === "failed") throw new SluiceError(answer.error, { kind: "reducer", requestId: answer.request_id });
        return { offset: answer.offset };
      },
    );
  }

  /** Evaluates a query once, on the server's current state. */
  async query(sql: string): Promise<{ columns: Column[]; rows: Value[][]; offset: number }> {
    this.#ensureOpen();
    return this.#request(
      (request_id) => ({ type: "OneOffQuery", request_id, sql }),
      (answer) => {
        if (answer.type !== "QueryResult") unexpected(answer, "QueryResult");
        return { columns: answer.columns, rows: answer.rows, offset: answer.offset };
      },
    );
  }

  /** Calls `cb` with every transaction that changes a subscription, after all caches hold it. */
  onTransaction(cb: (tx: TransactionInfo) => void): () => void {
    return this.#listen(this.#listeners.transaction, cb);
  }

  /** Calls `cb` when the connection opens again, is lost ("reconnecting") or ends, with why. */
  onStatus(cb: (status: Status, reason?: string) => void): () => void {
    return this.#listen(this.#listeners.status, cb);
  }

  /**
   * Calls `cb` with what goes wrong outside any request: protocol violations (after which the
   * connection is dropped and re-established), errors the server reports about frames it could
   * not read, a failed resubscription, a reconnect given up on (the token refused, the
   * database gone), and exceptions thrown by callbacks. Without a listener they go to
   * `console.error`.
   */
  onError(cb: (error: SluiceError) => void): () => void {
    return this.#listen(this.#listeners.error, cb);
  }

  /** Closes the connection for good: waiting requests are rejected, nothing reconnects. */
  close(): void {
    this.#shutdown("closed by the client");
  }

  /** Ends the client: status "closed" with `reason`, which waiting requests are rejected with. */
  #shutdown(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    const socket = this.#socket;
    this.#socket = undefined;
    socket?.close(1000);
    this.#failPending(new SluiceError(reason, { kind: "connection" }));
    this.#routes.clear();
    this.#setStatus("closed", reason);
  }

  #listen<T>(set: Set<T>, cb: T): () => void {
    set.add(cb);
    return () => {
      set.delete(cb);
    };
  }

  #ensureOpen(): void {
    if (this.#status !== "open") {
      throw new SluiceError(`not connected (${this.#status})`, { kind: "connection" });
    }
  }

  #serially<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(op);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  /**
   * Sends a request and settles with `read` of its answer. An `Error` or `SubscriptionError`
   * answer rejects as refused; whatever `read` throws rejects, and a protocol error also goes
   * on to drop the connection.
   */
  #request<T>(make: (requestId: number) => ClientMessage, read: (answer: ServerMessage) => T): Promise<T> {
    const socket = this.#socket;
    if (socket === undefined) return Promise.reject(new SluiceError("not connected", { kind: "connection" }));
    const requestId = this.#nextRequest++;
    return new Promise<T>((resolve, reject) => {
      // Encoded first: what cannot be encoded (a BigInt argument, say) rejects as it is.
      const text = encodeClientMessage(make(requestId));
      this.#pending.set(requestId, {
        answer: (answer) => {
          if (answer.type === "Error" || answer.type === "SubscriptionError") {
            reject(new SluiceError(answer.error, { kind: "refused", requestId }));
            return;
          }
          try {
            resolve(read(answer));
          } catch (e) {
            reject(e);
            if (e instanceof SluiceError && e.kind === "protocol") throw e;
          }
        },
        fail: reject,
      });
      try {
        socket.send(text);
      } catch (e) {
        this.#pending.delete(requestId);
        reject(new SluiceError(`cannot send: ${e instanceof Error ? e.message : String(e)}`, { kind: "connection", requestId, cause: e }));
      }
    });
  }

  /** The server's answers to `queries`, one each, in order, or a protocol error. */
  #matched(queries: string[], applied: AppliedQuery[]): AppliedQuery[] {
    if (applied.length !== queries.length || applied.some((q, i) => q.sql !== queries[i])) {
      throw new SluiceError(`protocol error: SubscribeApplied answers ${JSON.stringify(applied.map((q) => q.sql))} to ${JSON.stringify(queries)}`, {
        kind: "protocol",
      });
    }
    return applied;
  }

  #route(s: Subscription): void {
    const route = this.#routes.get(s.queryId);
    if (route) route.add(s);
    else this.#routes.set(s.queryId, new Set([s]));
  }

  /**
   * Drops a subscription. While reconnecting there are no routes, and the next connection
   * will not subscribe it; otherwise its query id is released if nothing else uses it.
   */
  #unsubscribe(s: Subscription): Promise<void> {
    const route = this.#routes.get(s.queryId);
    if (!this.#subscriptions.delete(s) || route === undefined) return Promise.resolve();
    route.delete(s);
    return this.#release(s.queryId);
  }

  /**
   * Tells the server to stop a query that no subscription of this connection uses any more.
   * The server's Unsubscribe ends every subscription of the connection to that query id, so
   * it runs after any subscribe in flight (which may share the id) has been applied, and not
   * at all if one did, or if the connection has been replaced meanwhile (the new one never
   * subscribed the query).
   */
  #release(queryId: number): Promise<void> {
    const socket = this.#socket;
    return this.#serially(async () => {
      if (socket === undefined || socket !== this.#socket || (this.#routes.get(queryId)?.size ?? 0) > 0) return;
      this.#routes.delete(queryId);
      await this.#request(
        (request_id) => ({ type: "Unsubscribe", request_id, query_id: queryId }),
        (answer) => {
          if (answer.type !== "UnsubscribeApplied") unexpected(answer, "UnsubscribeApplied");
        },
      );
    }).catch((e: unknown) => {
      if (!(e instanceof SluiceError && e.kind === "connection")) throw e;
    });
  }

  /** Opens a connection; resolves on its IdentityToken, after which its frames are applied. */
  #open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const url = socketUrl(this.#url, this.#database);
      const withToken = this.#token ? `${url}?token=${encodeURIComponent(this.#token)}` : url;
      let socket: Socket;
      try {
        socket = new this.#WebSocket(withToken, JSON_PROTOCOL) as Socket;
      } catch (e) {
        reject(new SluiceError(`cannot connect to ${url}: ${(e as Error).message}`, { kind: "connection" }));
        return;
      }
      this.#socket = socket;
      this.#connectionOffset = 0;
      let greeted = false;
      let lastError = "";
      const fail = (why: string): void => {
        clearTimeout(timer);
        if (this.#socket === socket) {
          this.#socket = undefined;
          socket.close();
        }
        reject(new SluiceError(`cannot connect to ${url}: ${why}`, { kind: "connection" }));
      };
      const timer = setTimeout(() => fail(`no IdentityToken within ${this.#connectTimeoutMs} ms`), this.#connectTimeoutMs);
      socket.onerror = (event) => {
        const message = (event as { message?: unknown }).message;
        if (typeof message === "string") lastError = message;
      };
      socket.onclose = (event) => {
        const why = `closed (code ${event.code}${event.reason ? `: ${event.reason}` : ""})${lastError ? `: ${lastError}` : ""}`;
        if (!greeted) fail(why);
        else if (socket === this.#socket) this.#lost(why);
      };
      socket.onmessage = (event) => {
        if (socket !== this.#socket) return;
        if (greeted) {
          this.#receive(event.data);
          return;
        }
        try {
          const hello = decodeFrame(event.data);
          if (hello.type !== "IdentityToken") unexpected(hello, "IdentityToken first");
          greeted = true;
          clearTimeout(timer);
          this.#identity = hello.identity;
          this.#token = hello.token;
          this.#missingSince = undefined;
          resolve();
        } catch (e) {
          fail((e as Error).message);
        }
      };
    });
  }

  /** Applies one frame; a protocol violation is reported and drops the connection. */
  #receive(data: unknown): void {
    try {
      this.#dispatch(decodeFrame(data));
    } catch (e) {
      const error = e instanceof SluiceError ? e : new SluiceError(`protocol error: ${String(e)}`, { kind: "protocol" });
      this.#report(error);
      const socket = this.#socket;
      if (socket !== undefined) {
        socket.close();
        this.#lost(error.message);
      }
    }
  }

  #dispatch(message: ServerMessage): void {
    switch (message.type) {
      case "TransactionUpdate":
        this.#transaction(message);
        return;
      case "TransactionUpdates":
        message.transactions.forEach((t) => this.#transaction(t));
        return;
      case "IdentityToken":
        throw new SluiceError("protocol error: a second IdentityToken", { kind: "protocol" });
      case "Error":
        if (message.request_id === undefined) {
          this.#report(new SluiceError(`the server could not read a request: ${message.error}`, { kind: "refused" }));
        } else {
          this.#answer(message.request_id, message);
        }
        return;
      default:
        this.#answer(message.request_id, message);
    }
  }

  /**
   * Hands an answer to the request waiting for it. An answer to a request that is not waiting
   * (none is given up on while its connection lasts) is a protocol violation.
   */
  #answer(requestId: number, message: ServerMessage): void {
    const pending = this.#pending.get(requestId);
    if (pending === undefined) {
      throw new SluiceError(`protocol error: a ${message.type} answers request ${requestId}, which is not waiting`, { kind: "protocol" });
    }
    this.#pending.delete(requestId);
    pending.answer(message);
  }

  #transaction(message: TransactionUpdate): void {
    if (message.offset <= this.#connectionOffset) {
      throw new SluiceError(`protocol error: transaction ${message.offset} arrived after offset ${this.#connectionOffset}`, { kind: "protocol" });
    }
    const tx: TransactionInfo = {
      offset: message.offset,
      timestampMicros: message.timestamp_micros,
      reducer: message.reducer,
      caller: message.caller,
      updates: message.updates.map((u) => ({ queryId: u.query_id, inserts: u.inserts, deletes: u.deletes })),
      resync: false,
    };
    const applied: [Subscription, RowChange][] = [];
    const bySubscription = new Map<Subscription, RowChange[]>();
    for (const u of message.updates) {
      for (const s of this.#routes.get(u.query_id) ?? []) {
        const change = { inserts: u.inserts, deletes: u.deletes };
        applied.push([s, change]);
        const changes = bySubscription.get(s);
        if (changes) changes.push(change);
        else bySubscription.set(s, [change]);
      }
    }
    // Every cache's changes are checked before any is applied: a transaction one cache
    // refuses changes none (and the resync after the reconnect reports every difference).
    for (const [s, changes] of bySubscription) s.check(changes);
    for (const [s, change] of applied) s.apply(change);
    this.#connectionOffset = this.#offset = message.offset;
    this.#emit(applied, tx);
  }

  /** Runs the subscriptions' callbacks for changes every cache holds, then the transaction's. */
  #emit(applied: [Subscription, RowChange][], tx: TransactionInfo): void {
    for (const [s, change] of applied) s.emit(change, tx);
    for (const cb of [...this.#listeners.transaction]) this.#guard(() => cb(tx));
  }

  /** The connection is gone: waiting requests fail, and it is re-established unless closed. */
  #lost(reason: string): void {
    this.#socket = undefined;
    this.#routes.clear();
    this.#failPending(new SluiceError(`connection lost before the answer: ${reason}`, { kind: "connection" }));
    if (this.#closed) return;
    if (!this.#reconnect) {
      this.#closed = true;
      this.#setStatus("closed", reason);
      return;
    }
    this.#setStatus("reconnecting", reason);
    this.#retry();
  }

  #failPending(error: SluiceError): void {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const p of pending) p.fail(error);
  }

  /**
   * Tries to connect again after a delay that doubles with each try (with jitter). After a
   * failed try, the HTTP check decides: a refused token closes the client at once; a missing
   * database does once it has stayed missing for `reconnectMaxDelayMs` (replacing a database,
   * `clear=true`, leaves it missing for a moment); anything else tries again.
   */
  #retry(): void {
    const delay = Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** this.#retries) * (0.5 + Math.random() / 2);
    this.#retries++;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#open().then(
        () => this.#resync(),
        async () => {
          if (this.#closed) return;
          const refusal = await this.#refusal();
          if (this.#closed) return;
          if (refusal?.status === 404) {
            this.#missingSince ??= Date.now();
          } else {
            this.#missingSince = undefined;
          }
          const missingFor = this.#missingSince === undefined ? -1 : Date.now() - this.#missingSince;
          if (refusal !== undefined && (refusal.status === 401 || missingFor >= this.#maxDelayMs)) {
            const why = `${this.#explain(refusal)}: not reconnecting`;
            this.#report(new SluiceError(why, { kind: "refused", status: refusal.status }));
            this.#shutdown(why);
            return;
          }
          this.#retry();
        },
      );
    }, delay);
  }

  /**
   * Asks over HTTP whether the server refuses this client for good: a one-off `SELECT 1`
   * through the SQL endpoint, presenting the token as `Authorization: Bearer`. A browser's
   * WebSocket never tells why a handshake failed, so this tells a refused token (401) or a
   * missing database (404) from a server that is away or busy (undefined).
   */
  async #refusal(): Promise<Refusal | undefined> {
    if (typeof fetch !== "function") return undefined;
    const headers: Record<string, string> = { "content-type": "text/plain" };
    if (this.#token) headers.Authorization = `Bearer ${this.#token}`;
    const url = `${this.#url.replace(/\/+$/, "")}/v1/database/${encodeURIComponent(this.#database)}/sql`;
    try {
      const response = await fetch(url, { method: "POST", headers, body: "SELECT 1", signal: AbortSignal.timeout(this.#connectTimeoutMs) });
      const text = await response.text();
      if (response.status !== 401 && response.status !== 404) return undefined;
      let reason = text;
      try {
        const error = (JSON.parse(text) as { error?: unknown } | null)?.error;
        if (typeof error === "string") reason = error;
      } catch {
        // Not JSON: the body is the reason.
      }
      return { status: response.status, reason };
    } catch {
      return undefined;
    }
  }

  #explain(refusal: Refusal): string {
    return refusal.status === 401
      ? `the server refuses this client's token (HTTP 401: ${refusal.reason})`
      : `the server has no database ${this.#database} (HTTP 404: ${refusal.reason})`;
  }

  /**
   * Resubscribes every live subscription on a new connection, all at one offset, and makes
   * each cache the server's result; the differences are reported as one resync transaction.
   * A refusal (the database's tables changed under a query) is reported and closes the client.
   */
  #resync(): void {
    const queries = [...new Set([...this.#subscriptions].map((s) => s.sql))];
    if (queries.length === 0) {
      this.#reopened();
      return;
    }
    this.#request(
      (request_id) => ({ type: "Subscribe", request_id, queries }),
      (answer) => {
        if (answer.type !== "SubscribeApplied") unexpected(answer, "SubscribeApplied");
        const bySql = new Map(this.#matched(queries, answer.queries).map((q) => [q.sql, q]));
        this.#connectionOffset = this.#offset = answer.offset;
        const applied: [Subscription, RowChange][] = [];
        for (const s of this.#subscriptions) {
          const change = s.reseat(bySql.get(s.sql) as AppliedQuery);
          this.#route(s);
          if (change.inserts.length + change.deletes.length > 0) applied.push([s, change]);
        }
        this.#reopened();
        const unused = answer.queries.filter((q) => !this.#routes.has(q.query_id));
        for (const q of unused) {
          this.#release(q.query_id).catch((e: unknown) => {
            // A protocol error was reported as it dropped the connection.
            if (e instanceof SluiceError && e.kind === "protocol") return;
            const why = e instanceof Error ? e.message : String(e);
            this.#report(new SluiceError(`unsubscribing query ${q.query_id}, unused after resubscribing, failed: ${why}`, { kind: "refused", cause: e }));
          });
        }
        if (applied.length > 0) {
          const updates = new Map(applied.map(([s, c]) => [s.queryId, { queryId: s.queryId, inserts: c.inserts, deletes: c.deletes }]));
          const tx: TransactionInfo = { offset: answer.offset, timestampMicros: 0, reducer: "", caller: "", updates: [...updates.values()], resync: true };
          this.#emit(applied, tx);
        }
      },
    ).catch((e: unknown) => {
      // A lost connection retries by itself, and a protocol error has dropped it to do so.
      if (e instanceof SluiceError && (e.kind === "connection" || e.kind === "protocol")) return;
      const why = e instanceof Error ? e.message : String(e);
      this.#report(new SluiceError(`resubscribing after a reconnect failed: ${why}`, { kind: "refused" }));
      this.close();
    });
  }

  #reopened(): void {
    this.#retries = 0;
    this.#setStatus("open");
  }

  #setStatus(status: Status, reason?: string): void {
    if (status === this.#status) return;
    this.#status = status;
    for (const cb of [...this.#listeners.status]) this.#guard(() => cb(status, reason));
  }

  /** Runs an application's callback; what it throws is reported. */
  #guard(callback: () => void): void {
    try {
      callback();
    } catch (e) {
      this.#report(new SluiceError(`a callback threw: ${e instanceof Error ? e.message : String(e)}`, { kind: "callback", cause: e }));
    }
  }

  #report(error: SluiceError): void {
    if (this.#listeners.error.size === 0) {
      console.error(error);
      return;
    }
    for (const cb of [...this.#listeners.error]) {
      try {
        cb(error);
      } catch (e) {
        console.error(e);
      }
    }
  }
}
