/**
 * SluiceClient against a scripted fake server: caches through transactions, update events,
 * shared query ids, refusals, reducer results, reconnects that rebuild the caches, and
 * malformed or protocol-breaking server messages.
 */

import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { test as nodeTest, type TestContext } from "node:test";
import { WebSocket } from "ws";
import { SluiceClient, SluiceError, type ConnectOptions, type Subscription, type TransactionInfo, type Value } from "../src/index.js";
import { FakeServer, type FakeConnection, type Message } from "./fake-server.js";

/** Every test here fails rather than hangs when an expected message never comes. */
const test = (name: string, fn: (t: TestContext) => Promise<void>): void => {
  nodeTest(name, { timeout: 5_000 }, fn);
};

const sorted = (rows: Value[][]): string[] => rows.map((r) => JSON.stringify(r)).sort();

interface Setup {
  server: FakeServer;
  conn: FakeConnection;
  client: SluiceClient;
  errors: SluiceError[];
  statuses: string[];
}

async function setup(t: TestContext, options: Partial<ConnectOptions> = {}): Promise<Setup> {
  const server = await FakeServer.start();
  const connecting = SluiceClient.connect({
    url: server.url,
    database: "db",
    WebSocket,
    reconnectMinDelayMs: 5,
    reconnectMaxDelayMs: 20,
    ...options,
  });
  const conn = await server.connection();
  const client = await connecting;
  const errors: SluiceError[] = [];
  const statuses: string[] = [];
  client.onError((e) => errors.push(e));
  client.onStatus((s, reason) => statuses.push(reason === undefined ? s : `${s}: ${reason}`));
  t.after(async () => {
    client.close();
    await server.stop();
  });
  return { server, conn, client, errors, statuses };
}

interface Applied {
  query_id: number;
  columns?: string[];
  primary_key?: number[];
  rows: Value[][];
}

/** A query of a SubscribeApplied, its columns of type TEXT. */
function appliedQuery(sql: string, a: Applied): Record<string, unknown> {
  const columns = (a.columns ?? ["a", "b"]).map((name) => ({ name, type: "TEXT" }));
  return { query_id: a.query_id, sql, columns, rows: a.rows, ...(a.primary_key ? { primary_key: a.primary_key } : {}) };
}

/** Subscribes `client` to one query, the fake answering with `applied` at `offset`. */
async function subscribe(client: SluiceClient, conn: FakeConnection, sql: string, applied: Applied, offset = 1): Promise<Subscription> {
  const subscribing = client.subscribe(sql);
  const request = await conn.next("Subscribe");
  assert.deepEqual(request.queries, [sql]);
  conn.send({ type: "SubscribeApplied", request_id: request.request_id, offset, queries: [appliedQuery(sql, applied)] });
  const [s] = await subscribing;
  assert.ok(s);
  return s;
}

function tx(offset: number, updates: { query_id: number; inserts?: Value[][]; deletes?: Value[][] }[], reducer = "r"): Message {
  return {
    type: "TransactionUpdate",
    offset,
    timestamp_micros: 1_700_000_000_000_000 + offset,
    reducer,
    caller: "ab".repeat(32),
    updates: updates.map((u) => ({ query_id: u.query_id, inserts: u.inserts ?? [], deletes: u.deletes ?? [] })),
  };
}

/** The next transaction the client applies. */
function nextTransaction(client: SluiceClient): Promise<TransactionInfo> {
  return new Promise((resolve) => {
    const off = client.onTransaction((t) => {
      off();
      resolve(t);
    });
  });
}

/** Sends a transaction and waits until the client has applied it. */
async function commit(client: SluiceClient, conn: FakeConnection, message: Message): Promise<TransactionInfo> {
  const applied = nextTransaction(client);
  conn.send(message);
  return applied;
}

/** Waits until `ready` holds, polling (for things that happen without a callback). */
async function until(ready: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (ready()) return;
    await sleep(5);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** Records a subscription's row events as strings. */
function record(s: Subscription): string[] {
  const events: string[] = [];
  s.on("insert", (r) => events.push(`+${JSON.stringify(r)}`));
  s.on("delete", (r) => events.push(`-${JSON.stringify(r)}`));
  s.on("update", (o, n) => events.push(`${JSON.stringify(o)}>${JSON.stringify(n)}`));
  return events;
}

/** Answers the client's next one-off query, proving every earlier message was read. */
async function roundTrip(client: SluiceClient, conn: FakeConnection): Promise<void> {
  const asked = client.query("SELECT 1");
  const q = await conn.next("OneOffQuery");
  conn.send({ type: "QueryResult", request_id: q.request_id, offset: 0, columns: [{ name: "1", type: "INTEGER" }], rows: [[1]] });
  assert.deepEqual((await asked).rows, [[1]]);
}

test("connects with the JSON subprotocol, the database's path and the given token", async (t) => {
  const { conn, client } = await setup(t, { token: "cafe.f00d", database: "my db" });
  assert.equal(conn.protocol, "sluice.json.v1");
  assert.equal(conn.url.pathname, "/v1/database/my%20db/subscribe");
  assert.equal(conn.url.searchParams.get("token"), "cafe.f00d");
  assert.equal(client.identity, "cafe");
  assert.equal(client.token, "cafe.f00d");
  assert.equal(client.status, "open");
});

test("a cache follows inserts and deletes as a multiset, with events and the raw change", async (t) => {
  const { conn, client, errors } = await setup(t);
  const s = await subscribe(client, conn, "SELECT a, b FROM t", { query_id: 4, rows: [["1", "a"], ["1", "a"], ["2", "b"]] }, 10);
  assert.equal(s.queryId, 4);
  assert.deepEqual(s.columns, [{ name: "a", type: "TEXT" }, { name: "b", type: "TEXT" }]);
  assert.equal(s.primaryKey, undefined);
  assert.equal(s.size, 3);
  assert.equal(client.offset, 10);
  const events = record(s);
  const changes: unknown[] = [];
  s.on("change", (c) => changes.push(c));

  const t11 = await commit(client, conn, tx(11, [{ query_id: 4, deletes: [["1", "a"]], inserts: [["3", "c"], ["3", "c"]] }], "add"));
  assert.deepEqual(sorted(s.rows()), sorted([["1", "a"], ["2", "b"], ["3", "c"], ["3", "c"]]));
  assert.equal(s.size, 4);
  assert.deepEqual(events, ['-["1","a"]', '+["3","c"]', '+["3","c"]']);
  assert.deepEqual(changes, [{ inserts: [["3", "c"], ["3", "c"]], deletes: [["1", "a"]], offset: 11 }]);
  assert.equal(t11.reducer, "add");
  assert.equal(t11.timestampMicros, 1_700_000_000_000_011);
  assert.equal(t11.resync, false);
  assert.deepEqual(t11.updates, [{ queryId: 4, inserts: [["3", "c"], ["3", "c"]], deletes: [["1", "a"]] }]);
  assert.equal(client.offset, 11);

  // Without a primary key, a delete and an insert are never an update.
  events.length = 0;
  await commit(client, conn, tx(12, [{ query_id: 4, deletes: [["2", "b"], ["3", "c"]], inserts: [["2", "B"]] }]));
  assert.deepEqual(events, ['-["2","b"]', '-["3","c"]', '+["2","B"]']);
  await commit(client, conn, tx(13, [{ query_id: 4, deletes: [["1", "a"], ["3", "c"]] }]));
  assert.deepEqual(s.rows(), [["2", "B"]]);
  assert.equal(s.size, 1);
  assert.throws(() => (s.rows()[0] as Value[]).push("x"), TypeError, "rows are frozen");
  assert.deepEqual(errors, []);
});

test("a TransactionUpdates frame applies each of its transactions in order, each with its own event", async (t) => {
  const { conn, client, errors } = await setup(t);
  const s = await subscribe(client, conn, "SELECT a, b FROM t", { query_id: 4, rows: [["1", "a"]] }, 10);
  const seen: TransactionInfo[] = [];
  const off = client.onTransaction((info) => seen.push(info));
  const batch = [tx(11, [{ query_id: 4, inserts: [["2", "b"]] }], "one"), tx(12, [{ query_id: 4, deletes: [["1", "a"]] }], "two")];
  conn.send({ type: "TransactionUpdates", transactions: batch });
  await until(() => seen.length === 2, "both transactions");
  off();
  assert.deepEqual(
    seen.map((info) => [info.offset, info.reducer, info.updates.length]),
    [
      [11, "one", 1],
      [12, "two", 1],
    ],
  );
  assert.deepEqual(s.rows(), [["2", "b"]]);
  assert.equal(client.offset, 12);
  assert.deepEqual(errors, []);
});

test("with a primary key, a delete and an insert of one key in one transaction are an update", async (t) => {
  const { conn, client } = await setup(t);
  const s = await subscribe(client, conn, "SELECT * FROM p", {
    query_id: 1,
    columns: ["id", "name", "score"],
    primary_key: [0],
    rows: [[1, "a", 10], [2, "b", 20]],
  });
  assert.deepEqual(s.primaryKey, [0]);
  const events = record(s);
  await commit(client, conn, tx(2, [{ query_id: 1, deletes: [[1, "a", 10], [2, "b", 20]], inserts: [[1, "a", 11], [3, "c", 30]] }]));
  assert.deepEqual(events, ['[1,"a",10]>[1,"a",11]', '-[2,"b",20]', '+[3,"c",30]']);
  assert.deepEqual(sorted(s.rows()), sorted([[1, "a", 11], [3, "c", 30]]));
  // A removed listener hears nothing more.
  const heard: unknown[] = [];
  const off = s.on("update", (o, n) => heard.push([o, n]));
  off();
  await commit(client, conn, tx(3, [{ query_id: 1, deletes: [[3, "c", 30]], inserts: [[3, "c", 31]] }]));
  assert.deepEqual(heard, []);
  assert.equal(events.at(-1), '[3,"c",30]>[3,"c",31]');
});

test("two Subscriptions of identical SQL share the server's query id; the server is told only when both end", async (t) => {
  const { conn, client, errors } = await setup(t);
  const sql = "SELECT a, b FROM t WHERE a > 1";
  const first = await subscribe(client, conn, sql, { query_id: 3, rows: [["2", "x"]] });
  const second = await subscribe(client, conn, sql, { query_id: 3, rows: [["2", "x"]] }, 1);
  const update = await commit(client, conn, tx(2, [{ query_id: 3, inserts: [["5", "y"]] }]));
  assert.equal(update.updates.length, 1);
  assert.deepEqual(sorted(first.rows()), sorted([["2", "x"], ["5", "y"]]));
  assert.deepEqual(sorted(second.rows()), sorted(first.rows()));

  const firstEvents = record(first);
  await first.unsubscribe();
  await roundTrip(client, conn); // No Unsubscribe went out before this query.
  await commit(client, conn, tx(3, [{ query_id: 3, deletes: [["2", "x"]] }]));
  assert.deepEqual(second.rows(), [["5", "y"]]);
  assert.deepEqual(sorted(first.rows()), sorted([["2", "x"], ["5", "y"]]), "an ended subscription keeps its last rows");
  assert.deepEqual(firstEvents, []);

  const ending = second.unsubscribe();
  const request = await conn.next("Unsubscribe");
  assert.equal(request.query_id, 3);
  conn.send({ type: "UnsubscribeApplied", request_id: request.request_id, query_id: 3 });
  await ending;
  // Updates the server sent before it read the Unsubscribe are ignored.
  conn.send(tx(4, [{ query_id: 3, inserts: [["9", "z"]] }]));
  await roundTrip(client, conn);
  assert.deepEqual(second.rows(), [["5", "y"]]);
  assert.deepEqual(errors, []);
});

test("an unsubscribe waits for a subscribe in flight that may share its query id, and then is not sent", async (t) => {
  const { conn, client } = await setup(t);
  const sql = "SELECT a, b FROM t";
  const old = await subscribe(client, conn, sql, { query_id: 8, rows: [] });
  const subscribing = client.subscribe(sql);
  const request = await conn.next("Subscribe");
  const ending = old.unsubscribe();
  conn.send({ type: "SubscribeApplied", request_id: request.request_id, offset: 1, queries: [appliedQuery(sql, { query_id: 8, rows: [] })] });
  const [fresh] = await subscribing;
  await ending;
  // The round trip's OneOffQuery is the next message: no Unsubscribe went out, before the
  // Subscribe's answer or after (the new subscription uses the id).
  await roundTrip(client, conn);
  await commit(client, conn, tx(2, [{ query_id: 8, inserts: [["1", "a"]] }]));
  assert.deepEqual(fresh?.rows(), [["1", "a"]]);
  assert.deepEqual(old.rows(), []);
});

test("a subscription the server refuses rejects with its reason, and subscribes nothing", async (t) => {
  const { conn, client } = await setup(t);
  const subscribing = client.subscribe(["SELECT a FROM t", "SELECT nope FROM t"]);
  const request = await conn.next("Subscribe");
  conn.send({ type: "SubscriptionError", request_id: request.request_id, error: "SELECT nope FROM t: unknown column nope" });
  await assert.rejects(subscribing, (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.kind, "refused");
    assert.equal(e.requestId, request.request_id);
    assert.match(e.message, /unknown column nope/);
    return true;
  });
  // An Error answer to a subscribe rejects the same way.
  const again = client.subscribe("SELECT a FROM t");
  const second = await conn.next("Subscribe");
  conn.send({ type: "Error", request_id: second.request_id, error: "no such table t" });
  await assert.rejects(again, { name: "SluiceError", kind: "refused", message: "no such table t" });
});

test("a failed reducer rejects with its error; a committed one resolves once its update is in the caches", async (t) => {
  const { conn, client } = await setup(t);
  const s = await subscribe(client, conn, "SELECT * FROM p", { query_id: 1, columns: ["id", "name"], primary_key: [0], rows: [] }, 5);

  const failing = client.call("join", { name: "me", team_id: 9 });
  const bad = await conn.next("CallReducer");
  assert.equal(bad.reducer, "join");
  assert.deepEqual(bad.args, { name: "me", team_id: 9 });
  conn.send({ type: "ReducerResult", request_id: bad.request_id, status: "failed", error: "no team 9" });
  await assert.rejects(failing, { name: "SluiceError", kind: "reducer", message: "no team 9" });

  const seen: number[] = [];
  client.onTransaction((info) => seen.push(info.offset));
  const calling = client.call("join", ["me", 1]).then((result) => ({ result, rows: s.rows(), offset: client.offset, seen: [...seen] }));
  const good = await conn.next("CallReducer");
  assert.deepEqual(good.args, ["me", 1]);
  conn.send(tx(6, [{ query_id: 1, inserts: [[7, "me"]] }], "join"));
  conn.send({ type: "ReducerResult", request_id: good.request_id, status: "committed", offset: 6 });
  assert.deepEqual(await calling, { result: { offset: 6 }, rows: [[7, "me"]], offset: 6, seen: [6] });

  // Arguments default to none.
  const bare = client.call("leave");
  const leave = await conn.next("CallReducer");
  assert.deepEqual(leave.args, []);
  conn.send({ type: "Error", request_id: leave.request_id, error: "unknown reducer leave" });
  await assert.rejects(bare, { kind: "refused", message: "unknown reducer leave" });
});

test("a one-off query resolves with columns, rows and offset, or rejects with the server's error", async (t) => {
  const { conn, client } = await setup(t);
  const asking = client.query("SELECT id FROM p");
  const q = await conn.next("OneOffQuery");
  assert.equal(q.sql, "SELECT id FROM p");
  conn.send({ type: "QueryResult", request_id: q.request_id, offset: 42, columns: [{ name: "id", type: "UNSIGNED" }], rows: [[1], [2]] });
  assert.deepEqual(await asking, { columns: [{ name: "id", type: "UNSIGNED" }], rows: [[1], [2]], offset: 42 });
  const refused = client.query("SELECT * FROM secret");
  const r = await conn.next("OneOffQuery");
  conn.send({ type: "Error", request_id: r.request_id, error: "table secret is private" });
  await assert.rejects(refused, { kind: "refused", requestId: r.request_id });
});

test("after a lost connection the client reconnects as itself, resubscribes at one offset and reports what differs", async (t) => {
  const { server, conn, client, statuses, errors } = await setup(t);
  const keyed = await subscribe(client, conn, "SELECT * FROM p", { query_id: 1, columns: ["id", "v"], primary_key: [0], rows: [[1, "a"], [2, "b"], [3, "c"]] }, 10);
  const bag = await subscribe(client, conn, "SELECT v FROM q", { query_id: 2, columns: ["v"], rows: [["x"], ["x"]] }, 10);
  const dropped = await subscribe(client, conn, "SELECT v FROM gone", { query_id: 3, columns: ["v"], rows: [] }, 10);
  const keyedEvents = record(keyed);
  const bagEvents = record(bag);
  const resyncs: TransactionInfo[] = [];
  client.onTransaction((info) => resyncs.push(info));
  const pending = client.query("SELECT 1");
  await conn.next("OneOffQuery");

  conn.close(1001, "restarting");
  await assert.rejects(pending, (e: unknown) => e instanceof SluiceError && e.kind === "connection" && /restarting/.test(e.message));
  await until(() => client.status === "reconnecting", "reconnecting");
  await assert.rejects(client.call("r"), { kind: "connection", message: "not connected (reconnecting)" });
  await dropped.unsubscribe(); // While disconnected: the next connection leaves it out.

  const again = await server.connection();
  assert.equal(again.url.searchParams.get("token"), client.token, "the same identity");
  const request = await again.next("Subscribe");
  assert.deepEqual(request.queries, ["SELECT * FROM p", "SELECT v FROM q"]);
  // The server restarted: new query ids, and offsets from lower down.
  again.send({
    type: "SubscribeApplied",
    request_id: request.request_id,
    offset: 2,
    queries: [
      appliedQuery("SELECT * FROM p", { query_id: 7, columns: ["id", "v"], primary_key: [0], rows: [[1, "a"], [2, "B"], [4, "d"]] }),
      appliedQuery("SELECT v FROM q", { query_id: 8, columns: ["v"], rows: [["x"], ["x"]] }),
    ],
  });
  await until(() => client.status === "open", "open again");
  assert.deepEqual(statuses, ["reconnecting: closed (code 1001: restarting)", "open"]);
  assert.deepEqual(sorted(keyed.rows()), sorted([[1, "a"], [2, "B"], [4, "d"]]));
  assert.deepEqual(keyedEvents.sort(), ['+[4,"d"]', '-[3,"c"]', '[2,"b"]>[2,"B"]'].sort());
  assert.deepEqual(bagEvents, [], "an unchanged result reports nothing");
  assert.equal(resyncs.length, 1);
  assert.equal(resyncs[0]?.resync, true);
  assert.deepEqual(resyncs[0]?.updates.map((u) => u.queryId), [7]);
  assert.equal(keyed.queryId, 7);
  assert.equal(client.offset, 2);

  // The new ids route; the old ones are gone.
  await commit(client, again, tx(3, [{ query_id: 8, inserts: [["y"]] }, { query_id: 1, inserts: [[9, "old id"]] }]));
  assert.deepEqual(sorted(bag.rows()), sorted([["x"], ["x"], ["y"]]));
  assert.equal(keyed.size, 3);
  assert.deepEqual(errors, []);
});

test("a delete of a row the cache does not hold is reported, drops the connection, and the resync repairs the cache", async (t) => {
  const { server, conn, client, errors } = await setup(t);
  const s = await subscribe(client, conn, "SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [["a"]] });
  conn.send(tx(2, [{ query_id: 1, deletes: [["zzz"]], inserts: [["b"]] }]));
  await conn.closed;
  assert.equal(errors.length, 1);
  assert.equal(errors[0]?.kind, "protocol");
  assert.match(errors[0]?.message ?? "", /does not hold: \["zzz"\]/);
  assert.deepEqual(s.rows(), [["a"]], "the bad change was not half applied");
  const again = await server.connection();
  const request = await again.next("Subscribe");
  const query = appliedQuery("SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [["b"]] });
  again.send({ type: "SubscribeApplied", request_id: request.request_id, offset: 2, queries: [query] });
  await until(() => client.status === "open", "open again");
  assert.deepEqual(s.rows(), [["b"]]);
});

test("a transaction one cache refuses changes no cache; the resync then reports every difference", async (t) => {
  const { server, conn, client, errors } = await setup(t);
  const good = await subscribe(client, conn, "SELECT v FROM a", { query_id: 1, columns: ["v"], rows: [["a1"]] });
  const bad = await subscribe(client, conn, "SELECT v FROM b", { query_id: 2, columns: ["v"], rows: [["b1"]] });
  const goodEvents = record(good);
  const badEvents = record(bad);
  const transactions: TransactionInfo[] = [];
  client.onTransaction((info) => transactions.push(info));
  // The first query's change is valid, the second's deletes a row its cache does not hold.
  conn.send(tx(2, [{ query_id: 1, inserts: [["a2"]] }, { query_id: 2, deletes: [["zzz"]], inserts: [["b2"]] }]));
  await conn.closed;
  assert.equal(errors.length, 1);
  assert.match(errors[0]?.message ?? "", /does not hold: \["zzz"\]/);
  assert.deepEqual(good.rows(), [["a1"]], "the valid change was not applied either");
  assert.deepEqual(bad.rows(), [["b1"]]);
  assert.deepEqual([goodEvents, badEvents, transactions], [[], [], []]);
  assert.equal(client.offset, 1);

  // The server's state includes the transaction; the resync brings both caches to it, and
  // the callbacks hear each difference once.
  const again = await server.connection();
  const request = await again.next("Subscribe");
  again.send({
    type: "SubscribeApplied",
    request_id: request.request_id,
    offset: 2,
    queries: [
      appliedQuery("SELECT v FROM a", { query_id: 1, columns: ["v"], rows: [["a1"], ["a2"]] }),
      appliedQuery("SELECT v FROM b", { query_id: 2, columns: ["v"], rows: [["b2"]] }),
    ],
  });
  await until(() => transactions.length === 1, "the resync");
  assert.deepEqual(sorted(good.rows()), sorted([["a1"], ["a2"]]));
  assert.deepEqual(bad.rows(), [["b2"]]);
  assert.deepEqual(goodEvents, ['+["a2"]']);
  assert.deepEqual(badEvents.sort(), ['+["b2"]', '-["b1"]']);
  assert.equal(transactions[0]?.resync, true);
  assert.equal(client.offset, 2);
  // And the next transaction applies to both as usual.
  await commit(client, again, tx(3, [{ query_id: 1, deletes: [["a1"]] }, { query_id: 2, inserts: [["b3"]] }]));
  assert.deepEqual(good.rows(), [["a2"]]);
  assert.deepEqual(sorted(bad.rows()), sorted([["b2"], ["b3"]]));
  assert.equal(errors.length, 1);
});

test("a failed Unsubscribe of a query unused after resubscribing is reported, not left unhandled", async (t) => {
  const { server, conn, client, errors } = await setup(t);
  await subscribe(client, conn, "SELECT v FROM a", { query_id: 1, columns: ["v"], rows: [] });
  const leaving = await subscribe(client, conn, "SELECT v FROM b", { query_id: 2, columns: ["v"], rows: [] });
  conn.close();
  const again = await server.connection();
  const request = await again.next("Subscribe");
  await leaving.unsubscribe(); // While the resubscription is in flight: its answer has it unused.
  again.send({
    type: "SubscribeApplied",
    request_id: request.request_id,
    offset: 1,
    queries: [
      appliedQuery("SELECT v FROM a", { query_id: 5, columns: ["v"], rows: [] }),
      appliedQuery("SELECT v FROM b", { query_id: 6, columns: ["v"], rows: [] }),
    ],
  });
  const unsubscribe = await again.next("Unsubscribe");
  assert.equal(unsubscribe.query_id, 6);
  again.send({ type: "Error", request_id: unsubscribe.request_id, error: "no query 6" });
  await until(() => errors.length > 0, "the error");
  assert.equal(errors[0]?.kind, "refused");
  assert.match(errors[0]?.message ?? "", /unsubscribing query 6, unused after resubscribing, failed: no query 6/);
  assert.equal(client.status, "open");
});

test("malformed server messages are reported and drop the connection; an Error without a request is only reported", async (t) => {
  const { server, conn, client, errors } = await setup(t);
  const bad: [unknown, RegExp][] = [
    ["this is not JSON", /not JSON/],
    [new TextEncoder().encode('{"type":"Error","error":"x"}'), /a binary frame on a JSON connection/],
    [{ type: "Bogus" }, /unknown message type "Bogus"/],
    [{ type: "TransactionUpdate", timestamp_micros: 1, reducer: "r", caller: "", updates: [] }, /lacks "offset"/],
    [{ type: "TransactionUpdate", offset: 1, timestamp_micros: 1, reducer: "r", caller: "", updates: [{ query_id: 1, inserts: [[{}]], deletes: [] }] }, /not an array of values/],
    [{ type: "TransactionUpdates", transactions: [{ type: "ReducerResult", request_id: 1, status: "committed", offset: 1 }] }, /a TransactionUpdates holds a "ReducerResult"/],
    [{ type: "IdentityToken", identity: "x", token: "y" }, /second IdentityToken/],
    [{ type: "QueryResult", request_id: 999, offset: 1, columns: [], rows: [] }, /a QueryResult answers request 999, which is not waiting/],
  ];
  let current = conn;
  for (const [message, reason] of bad) {
    const before = errors.length;
    current.send(message);
    await current.closed;
    await until(() => errors.length > before, "the error");
    assert.match(errors.at(-1)?.message ?? "", reason);
    assert.equal(errors.at(-1)?.kind, "protocol");
    current = await server.connection();
    await until(() => client.status === "open", "open again");
  }
  // A transaction at an offset already applied breaks the order.
  await subscribe(client, current, "SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [] }, 50);
  current.send(tx(50, [{ query_id: 1, inserts: [["late"]] }]));
  await current.closed;
  assert.match(errors.at(-1)?.message ?? "", /transaction 50 arrived after offset 50/);
  current = await server.connection();
  const resubscribe = await current.next("Subscribe");
  const query = appliedQuery("SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [] });
  current.send({ type: "SubscribeApplied", request_id: resubscribe.request_id, offset: 50, queries: [query] });
  await until(() => client.status === "open", "open again");

  const before = errors.length;
  current.send({ type: "Error", error: "malformed message: missing field `sql`" });
  await roundTrip(client, current); // The same connection still answers.
  assert.equal(errors.length, before + 1);
  assert.equal(errors.at(-1)?.kind, "refused");
  assert.match(errors.at(-1)?.message ?? "", /missing field `sql`/);
});

test("callbacks that throw are reported and do not stop the others", async (t) => {
  const { conn, client, errors } = await setup(t);
  const s = await subscribe(client, conn, "SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [] });
  const heard: string[] = [];
  s.on("insert", () => {
    throw new Error("boom");
  });
  s.on("insert", (r) => heard.push(String(r[0])));
  await commit(client, conn, tx(2, [{ query_id: 1, inserts: [["a"]] }]));
  assert.deepEqual(heard, ["a"]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]?.kind, "callback");
  assert.match(errors[0]?.message ?? "", /boom/);
});

test("without reconnect, a lost connection closes the client", async (t) => {
  const { server, conn, client, statuses } = await setup(t, { reconnect: false });
  conn.close(1008, "too slow: reconnect to resubscribe");
  await until(() => client.status === "closed", "closed");
  assert.deepEqual(statuses, ["closed: closed (code 1008: too slow: reconnect to resubscribe)"]);
  await assert.rejects(client.query("SELECT 1"), { kind: "connection", message: "not connected (closed)" });
  await sleep(50);
  assert.equal(server.count, 1, "no reconnect");
});

test("close() rejects what waits and never reconnects", async (t) => {
  const { server, conn, client, statuses } = await setup(t);
  const waiting = client.call("slow");
  await conn.next("CallReducer");
  client.close();
  await assert.rejects(waiting, { kind: "connection", message: "closed by the client" });
  assert.deepEqual(statuses, ["closed: closed by the client"]);
  await conn.closed;
  await sleep(50);
  assert.equal(server.count, 1);
});

test("a request the socket cannot send rejects, and the connection goes on", async (t) => {
  let failing = false;
  class FlakySocket extends WebSocket {
    override send(data: unknown): void {
      if (failing) throw new Error("the socket is broken");
      super.send(data as string);
    }
  }
  const { conn, client, errors } = await setup(t, { WebSocket: FlakySocket });
  failing = true;
  await assert.rejects(client.query("SELECT 1"), { name: "SluiceError", kind: "connection", message: "cannot send: the socket is broken" });
  failing = false;
  await roundTrip(client, conn);
  assert.deepEqual(errors, []);
});

test("a reconnect the server refuses the token of closes the client with the reason", async (t) => {
  const { server, conn, client, errors, statuses } = await setup(t, { token: "cafe.f00d" });
  server.refuse = 401;
  server.http = () => [401, '{"error":"invalid token: the signature does not match"}'];
  conn.close(1001, "restarting");
  await until(() => client.status === "closed", "closed");
  const why = "the server refuses this client's token (HTTP 401: invalid token: the signature does not match): not reconnecting";
  assert.deepEqual(statuses, ["reconnecting: closed (code 1001: restarting)", `closed: ${why}`]);
  assert.equal(errors.length, 1);
  assert.equal(errors[0]?.kind, "refused");
  assert.equal(errors[0]?.status, 401);
  assert.equal(errors[0]?.message, why);
  assert.equal(server.refused, 1, "one handshake, then the check");
  assert.deepEqual(server.requests, [{ method: "POST", path: "/v1/database/db/sql", authorization: "Bearer cafe.f00d", body: "SELECT 1" }]);
  await assert.rejects(client.query("SELECT 1"), { kind: "connection", message: "not connected (closed)" });
});

test("a database that stays missing closes the client; one missing for a moment does not", async (t) => {
  const { server, conn, client, errors, statuses } = await setup(t, { reconnectMinDelayMs: 5, reconnectMaxDelayMs: 300 });
  await subscribe(client, conn, "SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [] });
  // Replaced (clear=true): missing for a moment, then back.
  server.refuse = 404;
  server.http = () => [404, '{"error":"no database named db"}'];
  conn.close(1001, "replaced");
  await until(() => server.requests.length >= 1, "a refused handshake and its check");
  server.refuse = undefined;
  server.http = () => [200, "{}"];
  const back = await server.connection();
  const request = await back.next("Subscribe");
  back.send({ type: "SubscribeApplied", request_id: request.request_id, offset: 1, queries: [appliedQuery("SELECT v FROM t", { query_id: 1, columns: ["v"], rows: [] })] });
  await until(() => client.status === "open", "open again");
  assert.deepEqual(errors, []);

  // Deleted: missing on every try for reconnectMaxDelayMs, then given up on.
  server.refuse = 404;
  server.http = () => [404, '{"error":"no database named db"}'];
  const started = Date.now();
  back.close(1001, "deleted");
  await until(() => client.status === "closed", "closed");
  assert.ok(Date.now() - started >= 300, "not before the database was missing for reconnectMaxDelayMs");
  assert.ok(server.refused >= 3, "it kept trying meanwhile");
  const why = "the server has no database db (HTTP 404: no database named db): not reconnecting";
  assert.equal(statuses.at(-1), `closed: ${why}`);
  assert.deepEqual((errors as SluiceError[]).map((e) => [e.kind, e.status, e.message]), [["refused", 404, why]]);
});

test("a first connect the server refuses rejects with the status", async (t) => {
  const server = await FakeServer.start();
  t.after(() => server.stop());
  server.refuse = 401;
  server.http = () => [401, '{"error":"malformed token: the identity is not 64 hex digits"}'];
  await assert.rejects(SluiceClient.connect({ url: server.url, database: "db", token: "bad", WebSocket }), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.kind, "refused");
    assert.equal(e.status, 401);
    assert.match(e.message, /cannot connect to ws:\/\/127\.0\.0\.1:\d+\/v1\/database\/db\/subscribe: the server refuses this client's token \(HTTP 401: malformed token/);
    assert.doesNotMatch(e.message, /token=/, "the token is not in the message");
    return true;
  });
  server.refuse = 404;
  server.http = () => [404, '{"error":"no database named nope"}'];
  await assert.rejects(SluiceClient.connect({ url: server.url, database: "nope", WebSocket }), { kind: "refused", status: 404, message: /no database nope \(HTTP 404/ });
  // Refused for another reason (the server is busy): the handshake's own error.
  server.refuse = 503;
  server.http = () => [503, '{"error":"busy"}'];
  await assert.rejects(SluiceClient.connect({ url: server.url, database: "db", WebSocket }), { kind: "connection", message: /cannot connect to .*: closed/ });
});

test("connecting to nothing rejects with the reason", async () => {
  const server = await FakeServer.start();
  const url = server.url;
  await server.stop();
  await assert.rejects(SluiceClient.connect({ url, database: "db", WebSocket }), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.kind, "connection");
    assert.match(e.message, /cannot connect to ws:\/\/127\.0\.0\.1:\d+\/v1\/database\/db\/subscribe: closed .*ECONNREFUSED/);
    return true;
  });
});

test("a server that never sends the IdentityToken fails the connect after the timeout", async (t) => {
  const server = await FakeServer.start({ greet: false });
  t.after(() => server.stop());
  await assert.rejects(SluiceClient.connect({ url: server.url, database: "db", WebSocket, connectTimeoutMs: 50 }), {
    kind: "connection",
    message: /no IdentityToken within 50 ms/,
  });
  assert.equal(server.count, 1);
});
