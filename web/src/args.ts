// A reducer's arguments from its form's inputs, checked against the declared parameter types
// (docs/PROTOCOL.md: integers and reals as JSON numbers, BYTES as an array of numbers).

import type { Field } from "./schema";

/** What an input holds: its text, or a checkbox's state; `null` when marked NULL. */
export type RawArg = string | boolean | null;

export function inputKind(type: string): "number" | "checkbox" | "hex" | "text" {
  switch (type) {
    case "i64":
    case "u64":
    case "f64":
      return "number";
    case "bool":
      return "checkbox";
    case "bytes":
      return "hex";
    default:
      return "text";
  }
}

/** One argument as JSON, or an Error naming the parameter and what is wrong. */
export function parseArg(p: Field, raw: RawArg): unknown {
  if (raw === null) {
    if (p.nullable) return null;
    throw new Error(`${p.name}: may not be NULL`);
  }
  switch (p.type) {
    case "bool":
      return Boolean(raw);
    case "i64":
    case "u64": {
      const t = String(raw).trim();
      if (!/^-?\d+$/.test(t)) throw new Error(`${p.name}: expected an integer, got ${JSON.stringify(t)}`);
      const n = Number(t);
      if (p.type === "u64" && n < 0) throw new Error(`${p.name}: expected an unsigned integer, got ${t}`);
      if (!Number.isSafeInteger(n)) throw new Error(`${p.name}: ${t} is beyond what JSON numbers hold exactly (2^53)`);
      return n;
    }
    case "f64": {
      const t = String(raw).trim();
      const n = Number(t);
      if (t === "" || !Number.isFinite(n)) throw new Error(`${p.name}: expected a number, got ${JSON.stringify(t)}`);
      return n;
    }
    case "bytes": {
      const t = String(raw).trim().replace(/^0x/i, "").replace(/\s+/g, "");
      if (!/^([0-9a-fA-F]{2})*$/.test(t)) throw new Error(`${p.name}: expected hex bytes (pairs of 0-9a-f)`);
      const out: number[] = [];
      for (let i = 0; i < t.length; i += 2) out.push(parseInt(t.slice(i, i + 2), 16));
      return out;
    }
    default:
      return String(raw);
  }
}

export function parseArgs(params: Field[], raws: RawArg[]): unknown[] {
  return params.map((p, i) => parseArg(p, raws[i] ?? null));
}
