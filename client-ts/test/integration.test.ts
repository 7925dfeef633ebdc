/**
 * The client against a real server: `$SLUICE_BIN start --in-memory` on a free port, with the
 * demo database `game` it publishes itself (teams, players, positions; a tick ten times a
 * second moves the bots and scores players in the goal). Live joins, a GROUP BY and a top-k
 * are subscribed, changed by reducer calls over the WebSocket and HTTP and by the ticks, and
 * after each transaction every cache is compared with a one-off query of its SQL: the cache
 * as of the answer's offset must equal the answer, as multisets. Then a durable server is
 * killed and restarted under a connected client, which must come back as the same identity
 * with every cache equal to the server's state again. Skipped, saying so, when SLUICE_BIN is
 * not set.
 */

import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { test } from "node:test";
import { WebSocket } from "ws";
import { HttpClient, SluiceClient, SluiceError, type Subscription, type Value } from "../src/index.js";

const bin = process.env.SLUICE_BIN;
const skip = bin
  ? false
  : "SLUICE_BIN is not set: set it to the built server (e.g. SLUICE_BIN=/work/main/target/debug/sluice npm test) to run this test";
if (skip) console.warn(`\n*** integration test SKIPPED: ${skip} ***\n`);

const sorted = (rows: Value[][]): string[] => rows.map((r) => JSON.stringify(r)).sort();

/**
 * Starts the server (`--in-memory` unless `args` say otherwise, on a free port unless they name
 * one); resolves with it and its base URL once /health answers.
 */
async function startServer(path: string, args = ["--in-memory", "--listen", "127.0.0.1:0"]): Promise<{ server: ChildProcess; url: string }> {
  const server = spawn(path, ["start", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const lines = createInterface({ input: server.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once("line", resolve);
    server.once("exit", (code) => reject(new Error(`the server exited (${code}) before printing its address`)));
  });
  lines.on("line", () => undefined); // Drain the rest.
  const url = first.replace(/^listening on /, "");
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, `the server's first line: ${first}`);
  for (let i = 0; i < 200; i++) {
    const health = await fetch(`${url}/health`).then((r) => r.text(), () => "");
    if (health.trim() === "ok") return { server, url };
    await sleep(50);
  }
  server.kill("SIGKILL");
  throw new Error(`${url}/health never answered ok`);
}

/** A subscription's cache over time: its sorted rows after each change, by offset. */
class History {
  readonly #entries: { offset: number; rows: string[] }[];

  constructor(readonly subscription: Subscription, offset: number) {
    // Taken together: the cache holds every transaction up to the client's offset.
    this.#entries = [{ offset, rows: sorted(subscription.rows()) }];
    subscription.on("change", (c) => this.#entries.push({ offset: c.offset, rows: sorted(subscription.rows()) }));
  }

  /** The rows as of `offset`. */
  at(offset: number): string[] {
    const entry = this.#entries.filter((e) => e.offset <= offset).at(-1);
    assert.ok(entry, `no state of ${this.subscription.sql} as of ${offset}`);
    return entry.rows;
  }

  get changes(): number {
    return this.#entries.length - 1;
  }
}

/** Every cache as of a one-off answer's offset equals the answer; returns how many were compared. */
async function compare(client: SluiceClient, histories: History[]): Promise<number> {
  for (const h of histories) {
    const answer = await client.query(h.subscription.sql);
    assert.deepEqual(h.at(answer.offset), sorted(answer.rows), `${h.subscription.sql} as of ${answer.offset}`);
  }
  return histories.length;
}

/** Resolves at the next transaction the client applies. */
function nextTransaction(client: SluiceClient): Promise<void> {
  return new Promise((resolve) => {
    const off = client.onTransaction(() => {
      off();
      resolve();
    });
  });
}

test("the client's caches equal one-off queries at every step against a real server", { skip, timeout: 120_000 }, async (t) => {
  const { server, url } = await startServer(bin as string);
  t.after(() => {
    server.kill("SIGKILL");
  });

  const http = new HttpClient(url);
  assert.deepEqual(await http.databases(), [{ name: "game", owner: null }]);
  const schema = await http.schema("game");
  assert.deepEqual(
    schema.tables.map((table: { name: string }) => table.name).sort(),
    ["player", "position", "team", "tick_timer", "world"],
  );
  assert.ok(schema.reducers.some((r: { name: string }) => r.name === "move_by"));
  await assert.rejects(http.sql("game", "DELETE FROM player"), (e: unknown) => e instanceof SluiceError && e.status === 400);

  const client = await SluiceClient.connect({ url, database: "game", WebSocket });
  const errors: SluiceError[] = [];
  client.onError((e) => errors.push(e));
  t.after(() => client.close());
  assert.match(client.identity, /^[0-9a-f]{64}$/);

  const teams = "SELECT t.name, COUNT(*), SUM(p.score) FROM player p JOIN team t ON t.id = p.team_id GROUP BY t.name";
  const people =
    "SELECT p.name, t.name, pos.x, pos.y FROM player p JOIN team t ON t.id = p.team_id JOIN position pos ON pos.player_id = p.id WHERE p.bot = false";
  const positions = "SELECT * FROM position";
  const top = "SELECT name, score FROM player ORDER BY score DESC, id LIMIT 3";
  const subs = await client.subscribe([teams, people, positions, top]);
  const histories = subs.map((s) => new History(s, client.offset));
  const [teamSub, peopleSub, positionSub] = subs as [Subscription, Subscription, Subscription, Subscription];
  const positionHistory = histories[2] as History;
  assert.deepEqual(positionSub.primaryKey, [0]);
  assert.deepEqual(peopleSub.rows(), [], "nobody but bots yet");
  assert.equal(positionSub.size, 12, "the demo's twelve bots");

  let checks = 0;
  const check = async (): Promise<void> => {
    checks += await compare(client, histories);
  };
  await check();

  const { offset: joined } = await client.call("join", ["ts-client", 1]);
  assert.ok(joined > 0);
  assert.deepEqual(peopleSub.rows(), [["ts-client", "red", 16, 16]], "the call's effect is in the cache when it resolves");
  await check();

  const me = await client.query("SELECT id FROM player WHERE identity = :sender");
  const myId = me.rows[0]?.[0];
  assert.equal(typeof myId, "number");
  const moves: string[] = [];
  positionSub.on("update", (o, n) => {
    if (o[0] === myId) moves.push(`${JSON.stringify(o)}>${JSON.stringify(n)}`);
  });
  await client.call("move_by", [1, 2]);
  assert.deepEqual(moves, [`[${myId},16,16]>[${myId},17,18]`]);
  assert.deepEqual(peopleSub.rows(), [["ts-client", "red", 17, 18]]);
  await check();
  await assert.rejects(client.call("move_by", [9, 0]), { kind: "reducer", message: /at most 5/ });

  // A second subscription to the same SQL shares the query id and sees the same rows; ending
  // the first leaves the second live.
  const [twin] = await client.subscribe(teams);
  assert.ok(twin);
  assert.equal(twin.queryId, teamSub.queryId);
  histories.push(new History(twin, client.offset));
  await teamSub.unsubscribe();
  histories.shift();

  // Another identity joins over HTTP; its transaction reaches this client's caches, without
  // naming its caller (callers are shown only to the database's owner and to themselves).
  const other = await http.identity();
  const seen = new Promise<{ offset: number; caller: string }>((resolve) => {
    const off = client.onTransaction((tx) => {
      if (tx.reducer === "join") {
        off();
        resolve(tx);
      }
    });
  });
  const { offset: httpJoin } = await new HttpClient(url, other.token).call("game", "join", { name: "http-player", team_id: 2 });
  const othersJoin = await seen;
  assert.deepEqual([othersJoin.offset, othersJoin.caller], [httpJoin, ""]);
  assert.ok(client.offset >= httpJoin);
  assert.deepEqual(sorted(peopleSub.rows()), sorted([["ts-client", "red", 17, 18], ["http-player", "blue", 16, 16]]));
  const counts = Object.fromEntries(twin.rows().map((r) => [r[0], r[1]]));
  assert.deepEqual(counts, { red: 7, blue: 7 });
  await check();

  await client.call("leave");
  assert.deepEqual(peopleSub.rows(), [["http-player", "blue", 16, 16]]);
  await check();

  // Ticks: after each of the next transactions, check again.
  for (let i = 0; i < 8; i++) {
    await nextTransaction(client);
    await check();
  }
  assert.ok(positionHistory.changes >= 8, "the bots moved on every tick");
  assert.equal(checks, 13 * 4, "every check compared every cache");
  assert.deepEqual(errors, []);
});

test("after the server restarts the client comes back as itself, its caches equal to the server's", { skip, timeout: 120_000 }, async (t) => {
  const data = mkdtempSync(join(tmpdir(), "sluice-client-ts-"));
  let { server, url } = await startServer(bin as string, ["--data-dir", data, "--listen", "127.0.0.1:0"]);
  t.after(() => {
    server.kill("SIGKILL");
    rmSync(data, { recursive: true, force: true });
  });
  const client = await SluiceClient.connect({ url, database: "game", WebSocket, reconnectMinDelayMs: 50, reconnectMaxDelayMs: 200 });
  t.after(() => client.close());
  const errors: SluiceError[] = [];
  client.onError((e) => errors.push(e));
  const statuses: string[] = [];
  client.onStatus((s) => statuses.push(s));
  await client.call("join", ["restarter", 2]);
  const mine = "SELECT name, online FROM player WHERE identity = :sender";
  const subs = await client.subscribe([mine, "SELECT * FROM position", "SELECT team_id, COUNT(*) FROM player GROUP BY team_id"]);
  const histories = subs.map((s) => new History(s, client.offset));
  assert.deepEqual(subs[0]?.rows(), [["restarter", true]]);
  await nextTransaction(client);
  await compare(client, histories);
  const identity = client.identity;
  const resyncs: boolean[] = [];
  client.onTransaction((tx) => resyncs.push(tx.resync));

  const gone = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  server.kill("SIGKILL");
  await gone;
  const reconnecting = new Promise<void>((resolve) => {
    if (client.status === "reconnecting") resolve();
    else client.onStatus((s) => s === "reconnecting" && resolve());
  });
  await reconnecting;
  const reopened = new Promise<void>((resolve) => client.onStatus((s) => s === "open" && resolve()));
  ({ server } = await startServer(bin as string, ["--data-dir", data, "--listen", url.replace(/^http:\/\//, "")]));
  await reopened;

  assert.deepEqual(statuses, ["reconnecting", "open"]);
  assert.equal(client.identity, identity, "the same identity, by the same token");
  assert.deepEqual(subs[0]?.rows(), [["restarter", true]], "the :sender query is bound to the same player");
  await compare(client, histories);
  for (let i = 0; i < 3; i++) {
    await nextTransaction(client);
    await compare(client, histories);
  }
  assert.equal(resyncs.filter((r) => !r).length >= 3, true, "transactions flow after the restart");
  assert.deepEqual(errors, []);
});

test("after an in-memory server restarts with a new key, the client closes, saying its token is refused", { skip, timeout: 120_000 }, async (t) => {
  let { server, url } = await startServer(bin as string);
  t.after(() => server.kill("SIGKILL"));
  const client = await SluiceClient.connect({ url, database: "game", WebSocket, reconnectMinDelayMs: 50, reconnectMaxDelayMs: 200 });
  t.after(() => client.close());
  const errors: SluiceError[] = [];
  client.onError((e) => errors.push(e));
  await client.subscribe("SELECT * FROM team");
  const closed = new Promise<string | undefined>((resolve) => client.onStatus((s, reason) => s === "closed" && resolve(reason)));
  const gone = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  server.kill("SIGKILL");
  await gone;
  ({ server } = await startServer(bin as string, ["--in-memory", "--listen", url.replace(/^http:\/\//, "")]));
  const reason = await closed;
  assert.match(reason ?? "", /^the server refuses this client's token \(HTTP 401: invalid token: the signature does not match\): not reconnecting$/);
  assert.deepEqual(errors.map((e) => [e.kind, e.status]), [["refused", 401]]);
  // The server itself is fine: a fresh identity connects.
  const fresh = await SluiceClient.connect({ url, database: "game", WebSocket });
  fresh.close();
  // And the first connect with the refused token says why.
  await assert.rejects(SluiceClient.connect({ url, database: "game", WebSocket, token: client.token }), { kind: "refused", status: 401 });
});
