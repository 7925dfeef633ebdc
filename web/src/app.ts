// The dashboard: a database picked from GET /v1/database (`?db=`), its schema beside the
// panels (tables with their columns, reducers as forms), one WebSocket connection whose
// subscriptions the panels share, the connection's offset and the database's transactions
// per second (from /metrics), and the panels kept in the URL's hash. The connection's errors
// are shown in the banner; while it is down the panels are stale, and once it is back the
// panels follow the resubscription (whose offsets restart where the database was replaced)
// and those whose query failed for want of a connection run again.

import { HttpClient, SluiceClient, SluiceError, type Status, type Subscription } from "./client";
import { defaultPanels } from "./defaults";
import { h, replace } from "./dom";
import { Panel, type PanelHost } from "./panel";
import { reducerForm } from "./reducers";
import { readSchema, type Schema } from "./schema";
import { databaseFromSearch, hashOf, panelsFromHash, type PanelSpec } from "./state";

const TOKEN_KEY = "sluice.token";

export class App implements PanelHost {
  private client: SluiceClient | null = null;
  private panels: Panel[] = [];
  private nextId = 1;
  private pool = new Map<string, { promise: Promise<Subscription>; refs: number }>();
  private times = new Map<number, number>();
  private database = "";
  private grid = h("div", { class: "panels", "data-testid": "panels" });
  private banner = h("div", { class: "banner", "data-testid": "banner", role: "alert", hidden: true });
  private offsetEl = h("span", { class: "stat-value", "data-testid": "offset" }, "–");
  private tpsEl = h("span", { class: "stat-value", "data-testid": "tps" }, "–");
  private statusEl = h("span", { class: "conn", "data-testid": "connection", "data-status": "connecting" }, "connecting");
  private identityEl = h("span", { class: "identity", "data-testid": "identity" });
  private dbSelect = h("select", { "data-testid": "db-select", "aria-label": "database" });
  private sidebar = h("aside", { class: "sidebar", "data-testid": "sidebar" });

  constructor(
    private root: HTMLElement,
    private url: string,
  ) {}

  async start(): Promise<void> {
    this.layout();
    const http = new HttpClient(this.url);
    let names: string[];
    try {
      names = (await http.databases()).map((d) => d.name);
    } catch (e) {
      return this.fail(`could not list databases: ${(e as Error).message}`);
    }
    const asked = databaseFromSearch(location.search);
    this.database = asked ?? (names.includes("game") ? "game" : (names[0] ?? ""));
    for (const n of names) this.dbSelect.append(h("option", { value: n }, n));
    if (!names.includes(this.database)) {
      this.dbSelect.prepend(h("option", { value: this.database }, this.database));
    }
    this.dbSelect.value = this.database;
    document.title = `${this.database} — Sluice`;
    if (!this.database) return this.fail("the server hosts no databases");
    if (!names.includes(this.database)) return this.fail(`the server has no database named ${this.database}`);
    let schema: Schema;
    try {
      schema = readSchema(await http.schema(this.database));
    } catch (e) {
      return this.fail(`could not read the schema of ${this.database}: ${(e as Error).message}`);
    }
    try {
      this.client = await this.connect();
    } catch (e) {
      return this.fail(`could not connect to ${this.database}: ${(e as Error).message}`);
    }
    this.renderSidebar(schema);
    const fromUrl = panelsFromHash(location.hash);
    if (fromUrl instanceof Error) this.warn(fromUrl.message);
    const specs = fromUrl instanceof Array ? fromUrl : defaultPanels(this.database, schema.tables);
    for (const spec of specs) this.addPanel(spec, false);
    this.save();
    window.addEventListener("hashchange", () => this.onHashChange());
    this.pollRate();
  }

  /**
   * Connects as the identity saved in this browser. The saved token is given up only when the
   * server refuses it (401: a token of another server, or of an in-memory server's earlier
   * run), and replaced only once a fresh identity has connected; any other failure (the
   * network, a timeout) keeps it for the next try.
   */
  private async connect(): Promise<SluiceClient> {
    const saved = localStorage.getItem(TOKEN_KEY) ?? undefined;
    const open = (token?: string) => SluiceClient.connect({ url: this.url, database: this.database, token, reconnect: true });
    let client: SluiceClient;
    try {
      client = await open(saved);
    } catch (e) {
      if (!saved || !(e instanceof SluiceError && e.kind === "refused" && e.status === 401)) throw e;
      client = await open();
    }
    localStorage.setItem(TOKEN_KEY, client.token);
    this.identityEl.textContent = `${client.identity.slice(0, 8)}…`;
    this.identityEl.title = `you are ${client.identity}`;
    client.onStatus((st, reason) => this.onStatus(st, reason));
    client.onError((e) => this.warn(e.message));
    this.showStatus("open");
    client.onTransaction((tx) => {
      // A resync is not a transaction: it has no time.
      if (!tx.resync) {
        this.times.set(tx.offset, tx.timestampMicros);
        if (this.times.size > 1000) this.times.delete(this.times.keys().next().value as number);
      }
      this.showOffset();
    });
    return client;
  }

  private onStatus(st: Status, reason: string | undefined): void {
    this.showStatus(st, reason);
    if (st === "closed" && reason) this.warn(`the connection is closed: ${reason}`);
    if (st === "open") {
      // Resubscribed, at an offset that restarts low where the database was replaced: the
      // panels take it, and what failed for want of the connection runs again.
      this.times.clear();
      for (const p of this.panels) p.reconnected();
    } else {
      for (const p of this.panels) p.disconnected();
    }
  }

  private showStatus(st: Status, reason?: string): void {
    this.statusEl.dataset.status = st;
    this.statusEl.textContent = st;
    this.statusEl.title = reason ?? "";
    this.showOffset();
  }

  private showOffset(): void {
    const o = this.offset();
    this.offsetEl.textContent = String(o);
    this.offsetEl.dataset.offset = String(o);
  }

  private layout(): void {
    this.dbSelect.addEventListener("change", () => {
      location.assign(`${location.pathname}?db=${encodeURIComponent(this.dbSelect.value)}`);
    });
    const add = h("button", { type: "button", class: "add", "data-testid": "add-panel", onclick: () => this.addPanel({ sql: "", view: "table" }, true) }, "+ Panel");
    replace(
      this.root,
      h(
        "header",
        { class: "top" },
        h("div", { class: "brand" }, h("span", { class: "logo" }, "◆"), " Sluice"),
        h("label", { class: "db" }, "database ", this.dbSelect),
        h("div", { class: "stat" }, h("span", { class: "stat-name" }, "offset"), this.offsetEl),
        h("div", { class: "stat" }, h("span", { class: "stat-name" }, "tx/s"), this.tpsEl),
        h("div", { class: "spacer" }),
        this.identityEl,
        this.statusEl,
        add,
      ),
      this.banner,
      h("main", null, this.sidebar, this.grid),
    );
  }

  private fail(message: string): void {
    this.warn(message);
    this.statusEl.dataset.status = "closed";
    this.statusEl.textContent = "closed";
  }

  private warn(message: string): void {
    this.banner.textContent = message;
    this.banner.hidden = false;
  }

  private renderSidebar(schema: Schema): void {
    const scheduled = new Set(schema.tables.map((t) => t.scheduled).filter((s): s is string => !!s));
    const tables = schema.tables.map((t) => {
      const pk = new Set(t.primary_key ?? []);
      return h(
        "div",
        { class: "table-def", "data-testid": `table-${t.name}` },
        h(
          "div",
          { class: "table-name" },
          h(
            "button",
            {
              type: "button",
              class: "link",
              title: t.public ? `Add a panel: SELECT * FROM ${t.name}` : "private: only the owner may read it",
              disabled: !t.public && schema.owner !== this.client?.identity ? true : null,
              onclick: () => this.addPanel({ sql: `SELECT * FROM ${t.name}`, view: "table" }, true),
            },
            t.name,
          ),
          t.public ? null : h("span", { class: "badge" }, "private"),
        ),
        h(
          "ul",
          { class: "columns" },
          ...t.columns.map((c) =>
            h(
              "li",
              { "data-column": c.name },
              h("span", { class: "col-name" }, c.name),
              h("span", { class: "type" }, c.type + (c.nullable ? "?" : "")),
              pk.has(c.name) ? h("span", { class: "badge key", title: "primary key" }, "pk") : null,
            ),
          ),
        ),
      );
    });
    const call = (name: string, args: Record<string, unknown>) => {
      if (!this.client) return Promise.reject(new Error("not connected"));
      return this.client.call(name, args);
    };
    const reducers = schema.reducers
      .filter((r) => !r.lifecycle)
      .map((r) => reducerForm(r, call, scheduled.has(r.name)));
    replace(
      this.sidebar,
      h("h2", null, "Tables"),
      h("div", { "data-testid": "tables" }, ...tables),
      h("h2", null, "Reducers"),
      h("div", { "data-testid": "reducers" }, ...(reducers.length ? reducers : [h("p", { class: "hint" }, "none")])),
    );
  }

  addPanel(spec: PanelSpec, focus: boolean): Panel {
    const p = new Panel(this, spec, this.nextId++);
    this.panels.push(p);
    this.grid.append(p.el);
    void p.subscribe(spec.sql);
    if (focus) {
      this.save();
      p.el.scrollIntoView({ block: "nearest" });
      p.el.querySelector("textarea")?.focus();
    }
    return p;
  }

  private onHashChange(): void {
    if (location.hash === this.savedHash) return;
    const specs = panelsFromHash(location.hash);
    if (specs instanceof Error) return this.warn(specs.message);
    for (const p of this.panels) p.close();
    this.panels = [];
    this.grid.replaceChildren();
    for (const spec of specs ?? []) this.addPanel(spec, false);
    this.save();
  }

  private savedHash = "";

  /** Writes the panels into the URL (replacing the history entry). */
  private save(): void {
    const hash = hashOf(this.panels.map((p) => p.spec));
    this.savedHash = hash;
    history.replaceState(null, "", `${location.pathname}?db=${encodeURIComponent(this.database)}${hash}`);
  }

  // PanelHost

  acquire(sql: string): Promise<Subscription> {
    const client = this.client;
    if (!client) return Promise.reject(new SluiceError("not connected", { kind: "connection" }));
    let entry = this.pool.get(sql);
    if (!entry) {
      const promise = client.subscribe(sql).then((subs) => subs[0]);
      entry = { promise, refs: 0 };
      this.pool.set(sql, entry);
      promise.catch(() => {
        if (this.pool.get(sql) === entry) this.pool.delete(sql);
      });
    }
    entry.refs++;
    return entry.promise;
  }

  release(sql: string): void {
    const entry = this.pool.get(sql);
    if (!entry) return;
    if (--entry.refs > 0) return;
    this.pool.delete(sql);
    entry.promise.then((s) => s.unsubscribe()).catch(() => {});
  }

  connected(): boolean {
    return this.client?.status === "open";
  }

  /** The offset every cache is at: the connection's, which restarts where the database was replaced. */
  offset(): number {
    return this.client?.offset ?? 0;
  }

  timeOf(offset: number): number {
    return this.times.get(offset) ?? Date.now() * 1000;
  }

  changed(): void {
    this.save();
  }

  remove(panel: Panel): void {
    panel.close();
    panel.el.remove();
    this.panels = this.panels.filter((p) => p !== panel);
    this.save();
  }

  /** Transactions per second, from the server's counter, averaged over the last 5 s. */
  private pollRate(): void {
    const samples: { t: number; n: number }[] = [];
    const re = new RegExp(`^sluice_transactions_total\\{database="${this.database.replace(/[^\w-]/g, "")}"\\} (\\d+)`, "m");
    const tick = async () => {
      try {
        const text = await (await fetch(`${this.url}/metrics`)).text();
        const m = re.exec(text);
        if (m) {
          samples.push({ t: performance.now(), n: Number(m[1]) });
          while (samples.length > 6) samples.shift();
          if (samples.length >= 2) {
            const a = samples[0];
            const b = samples[samples.length - 1];
            const rate = ((b.n - a.n) * 1000) / (b.t - a.t);
            this.tpsEl.textContent = rate >= 100 ? String(Math.round(rate)) : rate.toFixed(1);
            this.tpsEl.dataset.tps = String(rate);
          }
        }
      } catch {
        // The server is away; the connection's status says so.
      }
      setTimeout(tick, 1000);
    };
    void tick();
  }
}
