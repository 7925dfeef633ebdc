// The dashboard's state in its URL, so it can be shared and reloaded:
// `/?db=NAME#panels=<JSON>`, the JSON an array of panel specs.

export type View = "table" | "bars" | "line";

export interface PanelSpec {
  /** The panel's heading. */
  title?: string;
  sql: string;
  view: View;
  /** Bars: the label column; lines: one line per value of this column (optional). */
  label?: string;
  /** Bars and lines: the numeric column. */
  value?: string;
}

const VIEWS: View[] = ["table", "bars", "line"];

/** Reads the panels from a location hash; `null` when it names none, an Error when unreadable. */
export function panelsFromHash(hash: string): PanelSpec[] | null | Error {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const text = params.get("panels");
  if (text === null) return null;
  try {
    const json: unknown = JSON.parse(text);
    if (!Array.isArray(json)) throw new Error("panels must be a JSON array");
    return json.map((p, i) => checkSpec(p, i));
  } catch (e) {
    return new Error(`the URL's panels could not be read: ${(e as Error).message}`);
  }
}

function checkSpec(p: unknown, i: number): PanelSpec {
  if (typeof p !== "object" || p === null) throw new Error(`panel ${i + 1} is not an object`);
  const o = p as Record<string, unknown>;
  if (typeof o.sql !== "string") throw new Error(`panel ${i + 1} has no sql`);
  const view = (VIEWS as unknown[]).includes(o.view) ? (o.view as View) : "table";
  const spec: PanelSpec = { sql: o.sql, view };
  if (typeof o.title === "string" && o.title) spec.title = o.title;
  if (typeof o.label === "string" && o.label) spec.label = o.label;
  if (typeof o.value === "string" && o.value) spec.value = o.value;
  return spec;
}

/** The hash holding these panels. */
export function hashOf(panels: PanelSpec[]): string {
  const params = new URLSearchParams();
  params.set("panels", JSON.stringify(panels));
  return "#" + params.toString();
}

/** The database the URL names (`?db=`), if any. */
export function databaseFromSearch(search: string): string | null {
  return new URLSearchParams(search).get("db");
}
