// One dashboard panel: a SQL query kept live by a subscription, shown as a table, as bars (a
// label column and a numeric column) or as lines (a numeric column over offsets). The
// element carries `data-state` (idle | loading | live | stale | error: stale while the
// connection is down), `data-offset` (the offset its rows are as of) and `data-rows`; a
// refused query's error is shown beside it. The line's history is sampled at every change,
// whichever view is shown.

import { SluiceError, type Column, type Subscription, type Value } from "./client";
import { h, replace } from "./dom";
import { barChart, LineHistory } from "./charts";
import type { PanelSpec, View } from "./state";
import { TableView } from "./table_view";
import { isNumeric, orderFromSql } from "./values";

/** What a panel needs of the dashboard. */
export interface PanelHost {
  acquire(sql: string): Promise<Subscription>;
  release(sql: string): void;
  /** Whether the connection is open (else the panels' rows are stale). */
  connected(): boolean;
  /** The offset the connection's caches are at, and when that transaction ran. */
  offset(): number;
  timeOf(offset: number): number;
  /** The panel's spec changed (its SQL, title, view or columns). */
  changed(): void;
  remove(panel: Panel): void;
}

const VIEW_NAMES: Record<View, string> = { table: "Table", bars: "Bars", line: "Line" };

export class Panel {
  readonly el: HTMLElement;
  spec: PanelSpec;
  private sqlBox: HTMLTextAreaElement;
  private titleBox: HTMLInputElement;
  private errorEl: HTMLElement;
  private options: HTMLElement;
  private body: HTMLElement;
  private status: HTMLElement;
  private viewButtons = new Map<View, HTMLButtonElement>();
  private sub: Subscription | null = null;
  private subSql: string | null = null;
  private stopChange: (() => void) | null = null;
  private table: TableView | null = null;
  private history = new LineHistory();
  private generation = 0;
  private lastOffset = 0;
  private clock: ReturnType<typeof setInterval> | null = null;
  /** The query failed for want of a connection: it runs again when the connection is back. */
  private connectionFailed = false;

  constructor(
    private host: PanelHost,
    spec: PanelSpec,
    readonly id: number,
  ) {
    this.spec = { ...spec };
    this.titleBox = h("input", {
      class: "title",
      "data-testid": "panel-title",
      placeholder: "Untitled panel",
      value: spec.title ?? "",
      onchange: () => {
        const t = this.titleBox.value.trim();
        if (t) this.spec.title = t;
        else delete this.spec.title;
        this.host.changed();
      },
    });
    const views = h("div", { class: "views", role: "group" });
    for (const v of ["table", "bars", "line"] as View[]) {
      const b = h("button", { type: "button", "data-testid": `view-${v}`, onclick: () => this.setView(v) }, VIEW_NAMES[v]);
      this.viewButtons.set(v, b);
      views.append(b);
    }
    this.sqlBox = h("textarea", {
      class: "sql",
      "data-testid": "panel-sql",
      spellcheck: "false",
      rows: Math.min(6, Math.max(2, spec.sql.split("\n").length)),
      placeholder: "SELECT … — Ctrl+Enter runs",
      onkeydown: (e: KeyboardEvent) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          this.run();
        }
      },
    });
    this.sqlBox.value = spec.sql;
    this.errorEl = h("div", { class: "error", "data-testid": "panel-error", role: "alert", hidden: true });
    this.options = h("div", { class: "options", "data-testid": "panel-options" });
    this.body = h("div", { class: "body", "data-testid": "panel-body" });
    this.status = h("footer", { class: "status", "data-testid": "panel-status" });
    this.el = h(
      "section",
      { class: "panel", id: `panel-${id}`, "data-testid": "panel", "data-state": "idle" },
      h(
        "header",
        null,
        this.titleBox,
        views,
        h("button", { type: "button", class: "remove", title: "Remove this panel", "data-testid": "panel-remove", onclick: () => this.host.remove(this) }, "×"),
      ),
      h(
        "div",
        { class: "query" },
        this.sqlBox,
        h("button", { type: "button", class: "run", "data-testid": "panel-run", onclick: () => this.run() }, "Run"),
      ),
      this.errorEl,
      this.options,
      this.body,
      this.status,
    );
    this.markView();
  }

  /** Subscribes to the SQL in the box (the spec's, at first). */
  run(): void {
    const sql = this.sqlBox.value.trim();
    this.spec.sql = sql;
    this.host.changed();
    void this.subscribe(sql);
  }

  async subscribe(sql: string): Promise<void> {
    const gen = ++this.generation;
    this.detach();
    this.connectionFailed = false;
    this.errorEl.hidden = true;
    this.errorEl.textContent = "";
    if (!sql) {
      this.el.dataset.state = "idle";
      replace(this.body, h("p", { class: "hint" }, "Type a query and press Run."));
      this.status.textContent = "";
      return;
    }
    this.el.dataset.state = "loading";
    this.subSql = sql;
    let sub: Subscription;
    try {
      sub = await this.host.acquire(sql);
    } catch (e) {
      if (gen !== this.generation) return;
      this.subSql = null;
      this.connectionFailed = e instanceof SluiceError && e.kind === "connection";
      this.showError(e instanceof Error ? e.message : String(e));
      return;
    }
    if (gen !== this.generation) {
      this.host.release(sql);
      return;
    }
    this.sub = sub;
    this.table = null;
    this.history = new LineHistory();
    this.lastOffset = this.host.offset();
    this.stopChange = sub.on("change", (c) => this.refresh(c.offset));
    // Stale at once where the connection went while the subscribe was answered.
    this.el.dataset.state = this.host.connected() ? "live" : "stale";
    this.buildOptions();
    this.refresh(this.lastOffset);
    // A line's time axis runs on while its value holds: once a second it is drawn up to the
    // connection's offset (a point only where the value changed).
    this.clock = setInterval(() => {
      if (this.spec.view === "line") this.refresh(this.host.offset(), false);
    }, 1000);
  }

  private showError(message: string): void {
    this.el.dataset.state = "error";
    this.errorEl.textContent = message;
    this.errorEl.hidden = false;
    replace(this.body);
    replace(this.options);
    this.status.textContent = "";
  }

  private detach(): void {
    if (this.clock !== null) clearInterval(this.clock);
    this.clock = null;
    this.stopChange?.();
    this.stopChange = null;
    if (this.subSql !== null) {
      if (this.sub) this.host.release(this.subSql);
      this.subSql = null;
    }
    this.sub = null;
  }

  /** The connection is down (reconnecting or closed): live rows are stale. */
  disconnected(): void {
    if (this.sub) this.el.dataset.state = "stale";
  }

  /**
   * The connection is back, resubscribed at the connection's offset (which restarts low where
   * the database was replaced): the panel is as of that offset, its line starts again, and a
   * query that failed for want of the connection runs again.
   */
  reconnected(): void {
    if (this.connectionFailed) {
      void this.subscribe(this.spec.sql);
      return;
    }
    if (!this.sub) return;
    this.el.dataset.state = "live";
    this.lastOffset = this.host.offset();
    this.history = new LineHistory();
    // After the resync's own callbacks (which mark what it changed), for a panel it did not change.
    queueMicrotask(() => this.refresh(this.host.offset(), false));
  }

  /** Stops the subscription (the panel is going). */
  close(): void {
    this.generation++;
    this.detach();
  }

  setView(view: View): void {
    if (view === this.spec.view) return;
    this.spec.view = view;
    this.markView();
    this.host.changed();
    this.buildOptions();
    this.table = null;
    this.refresh(this.lastOffset, false);
  }

  private markView(): void {
    for (const [v, b] of this.viewButtons) b.classList.toggle("active", v === this.spec.view);
    this.el.dataset.view = this.spec.view;
  }

  private columns(): Column[] {
    return this.sub?.columns ?? [];
  }

  /** Picks the chart's columns: the spec's where they exist, else a sensible default. */
  private chartColumns(view: View = this.spec.view): { label: number | null; value: number } | null {
    const cols = this.columns();
    const find = (name: string | undefined) => (name ? cols.findIndex((c) => c.name === name) : -1);
    let value = find(this.spec.value);
    if (value < 0 || !isNumeric(cols[value])) {
      value = -1;
      for (let i = cols.length - 1; i >= 0; i--) if (isNumeric(cols[i])) { value = i; break; }
    }
    if (value < 0) return null;
    const named = find(this.spec.label);
    if (named >= 0 && named !== value) return { label: named, value };
    // Lines: one line (the column's sum) unless a label column is chosen. Bars: the first
    // text column, else the first other column.
    if (view === "line") return { label: null, value };
    const text = cols.findIndex((c, i) => i !== value && !isNumeric(c));
    const other = cols.findIndex((_, i) => i !== value);
    const label = text >= 0 ? text : other >= 0 ? other : null;
    return { label, value };
  }

  private buildOptions(): void {
    replace(this.options);
    if (this.spec.view === "table" || !this.sub) return;
    const cols = this.columns();
    const pick = this.chartColumns();
    if (!pick) return;
    const labelSel = h("select", {
      "data-testid": "panel-label",
      onchange: () => {
        const v = labelSel.value;
        if (v) this.spec.label = v;
        else delete this.spec.label;
        this.afterOption();
      },
    });
    if (this.spec.view === "line") labelSel.append(h("option", { value: "" }, "(one line)"));
    cols.forEach((c, i) => {
      if (i !== pick.value) labelSel.append(h("option", { value: c.name }, c.name));
    });
    labelSel.value = pick.label === null ? "" : cols[pick.label].name;
    const valueSel = h("select", {
      "data-testid": "panel-value",
      onchange: () => {
        this.spec.value = valueSel.value;
        this.afterOption();
      },
    });
    cols.forEach((c) => {
      if (isNumeric(c)) valueSel.append(h("option", { value: c.name }, c.name));
    });
    valueSel.value = cols[pick.value].name;
    this.options.append(
      h("label", null, this.spec.view === "bars" ? "label " : "one line per ", labelSel),
      h("label", null, "value ", valueSel),
    );
  }

  private afterOption(): void {
    this.host.changed();
    this.history = new LineHistory();
    this.buildOptions();
    this.refresh(this.lastOffset, false);
  }

  /**
   * Re-renders from the subscription's cache, as of `offset` (the connection's: every cache
   * is at it), and samples the line's history there.
   */
  private refresh(offset: number, highlight = true): void {
    const sub = this.sub;
    if (!sub) return;
    this.lastOffset = offset;
    const rows: Value[][] = sub.rows();
    const cols = sub.columns;
    // The line's history follows every change, in whichever view, so that switching to the
    // line shows what happened meanwhile.
    const line = this.chartColumns("line");
    if (line) this.history.sample(rows, line.label, line.value, offset, this.host.timeOf(offset));
    this.el.dataset.offset = String(this.lastOffset);
    this.el.dataset.rows = String(rows.length);
    if (this.spec.view === "table") {
      if (!this.table) {
        this.table = new TableView(cols, sub.primaryKey, orderFromSql(this.spec.sql, cols));
        replace(this.body, this.table.el);
        this.table.render(rows, false);
      } else {
        this.table.render(rows, highlight);
      }
    } else {
      const pick = this.chartColumns();
      if (!pick) {
        replace(this.body, h("p", { class: "hint" }, "A chart needs a numeric column in the result."));
      } else if (this.spec.view === "bars") {
        replace(this.body, barChart(rows, pick.label ?? pick.value, pick.value));
      } else {
        replace(this.body, this.history.render(cols[pick.value].name));
      }
    }
    const n = rows.length;
    this.status.replaceChildren(
      h("span", { "data-testid": "panel-rows" }, `${n} row${n === 1 ? "" : "s"}`),
      " · as of offset ",
      h("span", { "data-testid": "panel-offset" }, String(this.lastOffset)),
    );
  }
}
