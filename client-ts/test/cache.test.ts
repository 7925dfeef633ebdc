/** The row cache on its own: multiset changes, refused deletes, resets and key pairing. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { pairByKey, RowCache } from "../src/cache.js";
import type { Row } from "../src/protocol.js";

const sorted = (rows: Row[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

test("a cache is a multiset: deletes then inserts, duplicates counted", () => {
  const c = new RowCache("q");
  c.reset([[1, "a"], [1, "a"], [2, "b"]], 2);
  assert.equal(c.size, 3);
  c.apply({ deletes: [[1, "a"]], inserts: [[3, "c"], [3, "c"]] });
  assert.deepEqual(sorted(c.rows()), sorted([[1, "a"], [2, "b"], [3, "c"], [3, "c"]]));
  assert.equal(c.size, 4);
  // A delete and an insert of the same row in one change: deletes go first, so this holds.
  c.apply({ deletes: [[2, "b"]], inserts: [[2, "b"]] });
  c.apply({ deletes: [[1, "a"], [3, "c"], [3, "c"]], inserts: [] });
  assert.deepEqual(c.rows(), [[2, "b"]]);
  assert.equal(c.size, 1);
});

test("deleting a row the cache does not hold (or more copies than it holds) throws and changes nothing", () => {
  const c = new RowCache("SELECT x FROM t");
  c.reset([[1, "a"]], 2);
  assert.throws(() => c.apply({ deletes: [[1, "a"], [1, "a"]], inserts: [[5, "e"]] }), /does not hold: \[1,"a"\]/);
  assert.throws(() => c.apply({ deletes: [[9, "z"]], inserts: [] }), (e: Error & { kind?: string }) => e.kind === "protocol");
  assert.throws(() => c.apply({ deletes: [], inserts: [[1]] }), /1 values for 2 columns/);
  assert.deepEqual(c.rows(), [[1, "a"]]);
  assert.equal(c.size, 1);
});

test("check refuses what apply would refuse, over a sequence of changes, and changes nothing", () => {
  const c = new RowCache("q");
  c.reset([[1], [2]], 1);
  // The second change deletes a row the first inserted: valid in order.
  c.check([{ deletes: [[1]], inserts: [[3]] }, { deletes: [[3], [2]], inserts: [] }]);
  // But not a row the first deleted, nor one never held, nor a row of the wrong width.
  assert.throws(() => c.check([{ deletes: [[1]], inserts: [] }, { deletes: [[1]], inserts: [] }]), /does not hold: \[1\]/);
  assert.throws(() => c.check([{ deletes: [], inserts: [[4]] }, { deletes: [[5]], inserts: [] }]), /does not hold: \[5\]/);
  assert.throws(() => c.check([{ deletes: [], inserts: [] }, { deletes: [], inserts: [[1, 2]] }]), /2 values for 1 columns/);
  assert.deepEqual(sorted(c.rows()), sorted([[1], [2]]));
  assert.equal(c.size, 2);
});

test("a reset reports exactly the difference, multiplicities included", () => {
  const c = new RowCache("q");
  c.reset([[1], [1], [2], [3]], 1);
  const change = c.reset([[1], [3], [3], [4]], 1);
  assert.deepEqual(sorted(change.inserts), sorted([[3], [4]]));
  assert.deepEqual(sorted(change.deletes), sorted([[1], [2]]));
  assert.deepEqual(sorted(c.rows()), sorted([[1], [3], [3], [4]]));
  assert.equal(c.size, 4);
});

test("pairing by primary key makes updates of a delete and an insert of one key", () => {
  const change = { deletes: [[1, "a"], [2, "b"]], inserts: [[1, "A"], [3, "c"]] };
  assert.deepEqual(pairByKey(change, [0]), { updates: [[[1, "a"], [1, "A"]]], deletes: [[2, "b"]], inserts: [[3, "c"]] });
  // A key of two columns: equal only when both are.
  const two = { deletes: [[1, 1, "x"], [1, 2, "y"]], inserts: [[1, 2, "Y"], [2, 1, "z"]] };
  assert.deepEqual(pairByKey(two, [0, 1]), { updates: [[[1, 2, "y"], [1, 2, "Y"]]], deletes: [[1, 1, "x"]], inserts: [[2, 1, "z"]] });
  // Without a key nothing pairs.
  assert.deepEqual(pairByKey(change, undefined), { updates: [], ...change });
});
