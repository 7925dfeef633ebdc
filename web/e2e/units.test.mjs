// The dashboard's pure parts, bundled from web/src by esbuild and imported: reducer arguments
// from form inputs, panels in the URL, the ORDER BY a table follows, the line's history.

import assert from "node:assert/strict";
import { test } from "node:test";
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const src = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

async function load(file) {
  const out = await build({ entryPoints: [join(src, file)], bundle: true, format: "esm", write: false, logLevel: "silent" });
  return import(`data:text/javascript;base64,${Buffer.from(out.outputFiles[0].text).toString("base64")}`);
}

const { inputKind, parseArg } = await load("args.ts");
const { panelsFromHash, hashOf, databaseFromSearch } = await load("state.ts");
const { orderFromSql, rowComparator } = await load("values.ts");
const { LineHistory } = await load("charts.ts");

test("form inputs follow the parameter types", () => {
  assert.deepEqual(["i64", "u64", "f64", "bool", "bytes", "string"].map(inputKind), ["number", "number", "number", "checkbox", "hex", "text"]);
  const p = (type, nullable = false) => ({ name: "x", type, nullable });
  assert.equal(parseArg(p("i64"), " -12 "), -12);
  assert.equal(parseArg(p("u64"), "7"), 7);
  assert.throws(() => parseArg(p("u64"), "-1"), /x: expected an unsigned integer, got -1/);
  assert.throws(() => parseArg(p("i64"), "1.5"), /expected an integer/);
  assert.throws(() => parseArg(p("i64"), "9007199254740993"), /2\^53/);
  assert.equal(parseArg(p("f64"), "2.5e3"), 2500);
  assert.throws(() => parseArg(p("f64"), ""), /expected a number/);
  assert.equal(parseArg(p("bool"), true), true);
  assert.equal(parseArg(p("bool"), false), false);
  assert.deepEqual(parseArg(p("bytes"), "0x00ff 10"), [0, 255, 16]);
  assert.deepEqual(parseArg(p("bytes"), ""), []);
  assert.throws(() => parseArg(p("bytes"), "abc"), /hex bytes/);
  assert.equal(parseArg(p("string"), " a b "), " a b ");
  assert.equal(parseArg(p("string", true), null), null);
  assert.throws(() => parseArg(p("string"), null), /may not be NULL/);
});

test("panels round-trip through the URL's hash", () => {
  const panels = [
    { title: "Scores", sql: "SELECT a, SUM(b) AS s FROM t GROUP BY a", view: "bars", label: "a", value: "s" },
    { sql: "SELECT * FROM t WHERE x = 'a#b&c'", view: "table" },
  ];
  const hash = hashOf(panels);
  assert.match(hash, /^#panels=/);
  assert.deepEqual(panelsFromHash(hash), panels);
  assert.equal(panelsFromHash(""), null);
  assert.equal(panelsFromHash("#other=1"), null);
  assert.ok(panelsFromHash("#panels=%7Bnot json") instanceof Error);
  assert.match(panelsFromHash("#panels=" + encodeURIComponent('[{"view":"bars"}]')).message, /panel 1 has no sql/);
  // An unknown view is a table.
  assert.deepEqual(panelsFromHash("#panels=" + encodeURIComponent('[{"sql":"S","view":"pie"}]')), [{ sql: "S", view: "table" }]);
  assert.equal(databaseFromSearch("?db=bank"), "bank");
  assert.equal(databaseFromSearch(""), null);
});

test("a table follows the query's ORDER BY where it names result columns", () => {
  const cols = ["name", "team", "score"].map((name) => ({ name, type: "TEXT" }));
  assert.deepEqual(orderFromSql("SELECT … ORDER BY p.score DESC, p.name LIMIT 10", cols), [
    { index: 2, desc: true },
    { index: 0, desc: false },
  ]);
  assert.deepEqual(orderFromSql("SELECT … ORDER BY 2", cols), [{ index: 1, desc: false }]);
  assert.deepEqual(orderFromSql("SELECT … ORDER BY score + 1", cols), []);
  assert.deepEqual(orderFromSql("SELECT a FROM t", cols), []);
  const rows = [[2, "b"], [null, "z"], [2, "a"], [10, "c"]];
  assert.deepEqual([...rows].sort(rowComparator([{ index: 0, desc: true }])), [[10, "c"], [2, "a"], [2, "b"], [null, "z"]]);
});

test("a line has a point where its value changed, per label", () => {
  const h = new LineHistory();
  h.sample([["red", 0], ["blue", 0]], 0, 1, 5, 0);
  h.sample([["red", 0], ["blue", 0]], 0, 1, 6, 0); // unchanged: no points
  h.sample([["red", 3], ["blue", 0]], 0, 1, 9, 0);
  h.sample([["red", 3], ["blue", 0]], 0, 1, 9, 0); // the same offset again: ignored
  h.sample([["blue", 1]], 0, 1, 12, 0); // red left the result
  h.sample([["red", 3], ["blue", 1]], 0, 1, 13, 0); // and came back: a point
  const pts = (k) => h.series.get(JSON.stringify(k)).points.map((p) => [p.offset, p.value]);
  assert.deepEqual(pts("red"), [[5, 0], [9, 3], [13, 3]]);
  assert.deepEqual(pts("blue"), [[5, 0], [12, 1]]);
  // Without a label column, one line: the column's sum over the rows.
  const one = new LineHistory();
  one.sample([["a", 2], ["b", 5]], null, 1, 1, 0);
  one.sample([], null, 1, 2, 0);
  assert.deepEqual(one.series.get("").points.map((p) => [p.offset, p.value]), [[1, 7], [2, null]]);
});
