/** HttpClient against a node:http stand-in: paths, methods, bodies, the token, and refusals. */

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { HttpClient, SluiceError } from "../src/index.js";

interface Seen {
  method: string;
  path: string;
  authorization: string | undefined;
  body: string;
}

/** A server answering each request with `answer(request)`: a status and a body. */
async function serve(answer: (seen: Seen) => [number, string]): Promise<{ url: string; seen: Seen[]; close: () => void }> {
  const seen: Seen[] = [];
  const server = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const chunk of req) body += String(chunk);
    const s = { method: req.method ?? "", path: req.url ?? "", authorization: req.headers.authorization, body };
    seen.push(s);
    const [status, text] = answer(s);
    res.writeHead(status, { "content-type": "application/json" }).end(text);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, seen, close: () => server.close() };
}

test("each method sends its request and returns the server's JSON", async (t) => {
  const answers: Record<string, string> = {
    "POST /v1/identity": '{"identity":"ab","token":"ab.cd"}',
    "GET /v1/database": '[{"name":"game","owner":null}]',
    "GET /v1/database/my%20db/schema": '{"name":"my db","tables":[],"reducers":[]}',
    "POST /v1/database/game/call/move_by": '{"offset":12}',
    "POST /v1/database/game/sql": '{"columns":[{"name":"n","type":"INTEGER"}],"rows":[[3]],"offset":12}',
  };
  const { url, seen, close } = await serve((s) => [200, answers[`${s.method} ${s.path}`] ?? "{}"]);
  t.after(close);
  const http = new HttpClient(url, "ab.cd");
  assert.deepEqual(await http.identity(), { identity: "ab", token: "ab.cd" });
  assert.deepEqual(await http.databases(), [{ name: "game", owner: null }]);
  assert.deepEqual(await http.schema("my db"), { name: "my db", tables: [], reducers: [] });
  assert.deepEqual(await http.call("game", "move_by", { dx: 1, dy: -1 }), { offset: 12 });
  assert.deepEqual(await http.sql("game", "SELECT COUNT(*) AS n FROM player"), {
    columns: [{ name: "n", type: "INTEGER" }],
    rows: [[3]],
    offset: 12,
  });
  assert.deepEqual(
    seen.map((s) => [s.method, s.path, s.authorization, s.body]),
    [
      ["POST", "/v1/identity", "Bearer ab.cd", ""],
      ["GET", "/v1/database", "Bearer ab.cd", ""],
      ["GET", "/v1/database/my%20db/schema", "Bearer ab.cd", ""],
      ["POST", "/v1/database/game/call/move_by", "Bearer ab.cd", '{"dx":1,"dy":-1}'],
      ["POST", "/v1/database/game/sql", "Bearer ab.cd", "SELECT COUNT(*) AS n FROM player"],
    ],
  );
});

test("without a token nothing is presented; call arguments default to none", async (t) => {
  const { url, seen, close } = await serve(() => [200, '{"offset":1}']);
  t.after(close);
  assert.deepEqual(await new HttpClient(url).call("game", "leave"), { offset: 1 });
  assert.equal(seen[0]?.authorization, undefined);
  assert.equal(seen[0]?.body, "[]");
});

test("a refusal rejects with the server's reason and status; a body that is not JSON is the reason", async (t) => {
  const { url, close } = await serve((s) =>
    s.path.endsWith("/sql") ? [400, '{"error":"only the database\'s owner may run INSERT, UPDATE or DELETE"}'] : [502, "bad gateway"],
  );
  t.after(close);
  const http = new HttpClient(url);
  await assert.rejects(http.sql("game", "DELETE FROM player"), (e: unknown) => {
    assert.ok(e instanceof SluiceError);
    assert.equal(e.kind, "http");
    assert.equal(e.status, 400);
    assert.equal(e.message, "only the database's owner may run INSERT, UPDATE or DELETE (HTTP 400)");
    return true;
  });
  await assert.rejects(http.databases(), { kind: "http", status: 502, message: "bad gateway (HTTP 502)" });
  await assert.rejects(new HttpClient("http://127.0.0.1:1").databases(), { kind: "connection" });
});
