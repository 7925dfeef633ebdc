// A live result as an HTML table, re-rendered from the subscription's cache after every
// change. A row that entered is highlighted (`entering`); a row that left stays a moment,
// fading (`leaving`, then removed, or at once if the same row or identity enters again meanwhile); a row changed in place (a delete and an insert of one
// identity: the query's primary key, or else its first column where that is unique in the
// result) stays one row with its changed cells flashed (`updated`, cells `changed`). The
// marks stay until the next change, so they say what the latest one did; the flashes are Web
// Animations, which go on when a row moves. Each cell carries its value as JSON in
// `data-value`; the rows in the result are `tr[data-row]`.

import type { Column, Value } from "./client";
import { h } from "./dom";
import { compareValues, display, rowComparator, rowKey } from "./values";

/** Rows shown at most; the rest are counted beneath. */
export const MAX_ROWS = 200;
/** How long a leaving row stays, fading, and a highlight lasts (ms). */
export const FADE_MS = 1500;

interface Shown {
  row: Value[];
  key: string;
  tr: HTMLTableRowElement;
  leaving: boolean;
  /** A leaving row's removal, when its fade ends. */
  timer?: ReturnType<typeof setTimeout>;
}

export class TableView {
  readonly el: HTMLElement;
  private table: HTMLTableElement;
  private tbody: HTMLTableSectionElement;
  private more: HTMLElement;
  private shown: Shown[] = [];
  private order: { index: number; desc: boolean }[];
  private first = true;

  constructor(
    private columns: Column[],
    private primaryKey: number[] | undefined,
    order: { index: number; desc: boolean }[],
  ) {
    this.order = order;
    this.tbody = h("tbody");
    this.table = h("table", { class: "result", "data-testid": "result-table" }, this.header(), this.tbody);
    this.more = h("div", { class: "more", "data-testid": "result-more", hidden: true });
    this.el = h("div", { class: "table-wrap" }, this.table, this.more);
  }

  private header(): HTMLTableSectionElement {
    const o = this.order[0];
    const ths = this.columns.map((c, i) =>
      h(
        "th",
        {
          title: `${c.type} — click to sort`,
          "data-column": c.name,
          onclick: () => {
            this.order = [{ index: i, desc: o && o.index === i ? !o.desc : false }];
            this.table.tHead?.replaceWith(this.header());
            this.render(this.live().map((s) => s.row), false);
          },
        },
        c.name,
        h("span", { class: "type" }, ` ${c.type.toLowerCase()}`),
        o && o.index === i ? (o.desc ? " ▼" : " ▲") : "",
      ),
    );
    return h("thead", null, h("tr", null, ...ths));
  }

  private live(): Shown[] {
    return this.shown.filter((s) => !s.leaving);
  }

  private makeRow(row: Value[]): HTMLTableRowElement {
    return h("tr", { "data-row": "" }, ...row.map((v, i) => this.cell(v, this.columns[i]?.type ?? "")));
  }

  private cell(v: Value, type: string): HTMLTableCellElement {
    const cls = [v === null ? "null" : "", typeof v === "number" ? "num" : ""].filter(Boolean).join(" ");
    return h(
      "td",
      { class: cls || null, "data-value": JSON.stringify(v), title: v === null ? null : String(v) },
      display(v, type),
    );
  }

  /** How rows are matched across a change: by primary key, else by a unique first column. */
  private identity(before: Value[][], after: Value[][]): ((row: Value[]) => string) | null {
    const pk = this.primaryKey;
    if (pk && pk.length) return (row) => JSON.stringify(pk.map((i) => row[i]));
    if (this.columns.length < 2) return null;
    const unique = (rows: Value[][]) => new Set(rows.map((r) => JSON.stringify(r[0]))).size === rows.length;
    return unique(before) && unique(after) ? (row) => JSON.stringify(row[0]) : null;
  }

  /** Shows `rows` (the whole current result), marking what changed since the last call. */
  render(rows: Value[][], highlight = true): void {
    const mark = highlight && !this.first;
    this.first = false;
    const before = this.live();
    if (mark) {
      for (const s of before) {
        s.tr.classList.remove("entering", "updated");
        for (const td of s.tr.cells) td.classList.remove("changed");
      }
    }
    // Equal rows stay; the rest of the old rows left and the rest of the new entered.
    const old = new Map<string, Shown[]>();
    for (const s of before) {
      const list = old.get(s.key);
      if (list) list.push(s);
      else old.set(s.key, [s]);
    }
    const next: Shown[] = [];
    const entered: Value[][] = [];
    for (const row of rows) {
      const kept = old.get(rowKey(row))?.shift();
      if (kept) next.push(kept);
      else entered.push(row);
    }
    const left = new Set<Shown>();
    for (const list of old.values()) for (const s of list) left.add(s);
    const id = this.identity(before.map((s) => s.row), rows);
    // A row fading from an earlier change that enters again (the same row, or one of its
    // identity) goes at once rather than be shown twice.
    const pk = this.primaryKey;
    const sameId = pk && pk.length ? (row: Value[]) => JSON.stringify(pk.map((i) => row[i])) : id;
    const enteredKeys = new Set(entered.map(rowKey));
    const enteredIds = sameId ? new Set(entered.map(sameId)) : new Set<string>();
    const back = this.shown.filter((s) => s.leaving && (enteredKeys.has(s.key) || (sameId !== null && enteredIds.has(sameId(s.row)))));
    for (const s of back) {
      clearTimeout(s.timer);
      s.tr.remove();
    }
    if (back.length > 0) this.shown = this.shown.filter((s) => !back.includes(s));
    const leftById = new Map<string, Shown>();
    if (id) for (const s of left) leftById.set(id(s.row), s);
    for (const row of entered) {
      const tr = this.makeRow(row);
      const was = id ? leftById.get(id(row)) : undefined;
      if (was) {
        leftById.delete(id!(row));
        left.delete(was);
        if (mark) {
          tr.classList.add("updated");
          row.forEach((v, i) => {
            const td = tr.cells[i];
            if (td && compareValues(v, was.row[i] ?? null) !== 0) {
              td.classList.add("changed");
              flash(td, "#ffe58a");
            }
          });
        }
        was.tr.remove();
      } else if (mark) {
        tr.classList.add("entering");
        flash(tr, "#c8f2cd");
      }
      next.push({ row, key: rowKey(row), tr, leaving: false });
    }
    for (const s of left) {
      if (!mark) {
        s.tr.remove();
        continue;
      }
      s.leaving = true;
      s.tr.classList.add("leaving");
      s.tr.removeAttribute("data-row");
      s.tr.animate([{ backgroundColor: "#fde2e2", opacity: 1 }, { backgroundColor: "transparent", opacity: 0 }], {
        duration: FADE_MS,
        easing: "ease-in",
        fill: "forwards",
      });
      s.timer = setTimeout(() => {
        s.tr.remove();
        this.shown = this.shown.filter((x) => x !== s);
      }, FADE_MS);
    }
    // Rows fading (from this change or earlier ones) fade on, where they would sort.
    for (const s of this.shown) if (s.leaving) next.push(s);
    const cmp = rowComparator(this.order);
    next.sort((a, b) => cmp(a.row, b.row) || Number(a.leaving) - Number(b.leaving));
    let liveCount = 0;
    const visible: HTMLTableRowElement[] = [];
    for (const s of next) {
      if (!s.leaving && ++liveCount > MAX_ROWS) continue;
      visible.push(s.tr);
    }
    this.shown = next;
    this.place(visible);
    this.more.hidden = liveCount <= MAX_ROWS;
    this.more.textContent = liveCount > MAX_ROWS ? `showing ${MAX_ROWS} of ${liveCount} rows` : "";
  }

  /** Puts the rows in order, moving only those out of place. */
  private place(rows: HTMLTableRowElement[]): void {
    const want = new Set(rows);
    for (const tr of [...this.tbody.rows]) if (!want.has(tr)) tr.remove();
    rows.forEach((tr, i) => {
      const at = this.tbody.rows[i];
      if (at !== tr) this.tbody.insertBefore(tr, at ?? null);
    });
  }
}

function flash(el: HTMLElement, colour: string): void {
  el.animate([{ backgroundColor: colour }, { backgroundColor: "transparent" }], { duration: FADE_MS, easing: "ease-out" });
}
