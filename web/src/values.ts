// Values as the protocol sends them (JSON: BYTES as lowercase hex strings), shown, compared
// and keyed.

import type { Column, Value } from "./client";

export const NUMERIC_TYPES = new Set(["INTEGER", "UNSIGNED", "REAL"]);

export function isNumeric(c: Column): boolean {
  return NUMERIC_TYPES.has(c.type);
}

/** A row's identity in a multiset: its values as JSON. */
export function rowKey(row: Value[]): string {
  return JSON.stringify(row);
}

/** Text for a cell; long BYTES (identities) are shortened, the whole value is its title. */
export function display(v: Value, type: string): string {
  if (v === null) return "NULL";
  if (type === "BYTES" && typeof v === "string") {
    return v.length > 16 ? `${v.slice(0, 8)}…${v.slice(-4)}` : v;
  }
  if (typeof v === "number" && type === "REAL" && !Number.isInteger(v)) {
    return String(Math.round(v * 1e6) / 1e6);
  }
  return String(v);
}

/** SQL's order: NULLs first, then false < true, numbers, text. */
export function compareValues(a: Value, b: Value): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  if (typeof a === "boolean" && typeof b === "boolean") return a ? 1 : -1;
  const x = String(a);
  const y = String(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Ordering of rows: by the given columns (descending where asked), then by every column. */
export function rowComparator(order: { index: number; desc: boolean }[]): (a: Value[], b: Value[]) => number {
  return (a, b) => {
    for (const { index, desc } of order) {
      const c = compareValues(a[index] ?? null, b[index] ?? null);
      if (c !== 0) return desc ? -c : c;
    }
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const c = compareValues(a[i] ?? null, b[i] ?? null);
      if (c !== 0) return c;
    }
    return 0;
  };
}

/** The ORDER BY a query asks for, as column indexes, where its terms name result columns. */
export function orderFromSql(sql: string, columns: Column[]): { index: number; desc: boolean }[] {
  const m = /\border\s+by\s+([\s\S]*?)(?:\blimit\b|\boffset\b|;|$)/i.exec(sql);
  if (!m) return [];
  const out: { index: number; desc: boolean }[] = [];
  for (const term of m[1].split(",")) {
    const t = /^\s*(?:[A-Za-z_][\w]*\.)?([A-Za-z_][\w]*|\d+)\s*(asc|desc)?\s*$/i.exec(term);
    if (!t) break;
    const index = /^\d+$/.test(t[1])
      ? Number(t[1]) - 1
      : columns.findIndex((c) => c.name.toLowerCase() === t[1].toLowerCase());
    if (index < 0 || index >= columns.length) break;
    out.push({ index, desc: (t[2] ?? "").toLowerCase() === "desc" });
  }
  return out;
}
