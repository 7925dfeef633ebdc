// End to end: a real server, Debian's Chromium on the dashboard it serves, and the HTTP API
// as the oracle. The bank (demo/bank.wasm: its state changes only by the calls the test
// makes) is published, panels are made through the page, reducers are called through the
// page's forms, and after each transaction the table and the bars must show exactly the rows
// a one-off query over HTTP returns at that offset, the line its value; a bad query shows
// its error beside it; the URL brings the same panels back; the bank replaced under the page
// (offsets starting again) is followed. Then the game's default dashboard must move with its
// tick, equal to the oracle at the offsets it shows. Last, the connection: a server restarted
// under the page (panels stale meanwhile, a panel made meanwhile run once it is back), one
// restarted with a new key (the token refused: closed, saying why), and the token saved in
// the browser, given up only when the server refuses it.

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { api, ARTIFACTS, ASSETS_FROM_DISK, eventually, launchBrowser, readRepoFile, servesDist, sorted, startServer } from "./harness.mjs";

// Regions' accounts and balances: a join of three tables with GROUP BY.
const BY_REGION =
  "SELECT r.name, COUNT(*) AS accounts, SUM(a.balance) AS total FROM account a " +
  "JOIN branch b ON b.id = a.branch_id JOIN region r ON r.id = b.region_id GROUP BY r.name";
const RICH = "SELECT id, balance FROM account WHERE balance > 1000";
const TOTAL = "SELECT SUM(balance) AS money, COUNT(*) AS n FROM account";
const BAD = "SELECT nope FROM account";

let server;
let browser;
let oracle;
const pageErrors = [];
/**
 * While set, the browser's own reports of failed requests (a server away or refusing) are expected.
 * A server killed while a request is in flight resets its connection, or answers it with nothing.
 */
let networkErrorsExpected = false;
const NETWORK_ERROR =
  /^(WebSocket connection to .* failed|Failed to load resource: (the server responded with a status of (401|404)|net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE)))/;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startServer();
  if (!ASSETS_FROM_DISK && !(await servesDist(server.url))) {
    throw new Error(
      `${process.env.SLUICE_BIN ?? "the debug binary"} embeds another web/dist than the one on disk: ` +
        "rebuild it (cargo build) after npm run build, or set SLUICE_E2E_ASSETS_FROM_DISK=1 while working on web/src",
    );
  }
  const { token } = await api(server.url).identity();
  oracle = api(server.url, token);
  assert.equal((await oracle.publish("bank", readRepoFile("demo/bank.wasm"))).outcome, "created");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A new page at `url`, open; its errors go to `errors`. */
async function openPage(url, { errors = pageErrors, status = "open" } = {}) {
  const page = await browser.context.newPage();
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => {
    if (m.type() === "error" && !(networkErrorsExpected && NETWORK_ERROR.test(m.text()))) errors.push(m.text());
  });
  await page.goto(url);
  await page.locator(`[data-testid=connection][data-status="${status}"]`).waitFor();
  return page;
}

/** The panels a dashboard URL holds (`#panels=` JSON). */
const urlPanels = (url) => JSON.parse(new URLSearchParams(new URL(url).hash.slice(1)).get("panels"));

const panel = (page, i) => page.locator("[data-testid=panel]").nth(i);

/** A panel's live table: the rows in the result (not those fading out), as JSON values. */
function tableRows(page, i, which = "tr[data-row]") {
  return panel(page, i)
    .locator(`tbody ${which}`)
    .evaluateAll((trs) => trs.map((tr) => [...tr.cells].map((td) => JSON.parse(td.dataset.value))));
}

/** A panel's bars: [label, value] each. */
function bars(page, i) {
  return panel(page, i)
    .locator("rect.bar")
    .evaluateAll((rs) => rs.map((r) => [JSON.parse(r.dataset.label), JSON.parse(r.dataset.value)]));
}

/** A panel's line points: [series, offset, value] each. */
function points(page, i) {
  return panel(page, i)
    .locator("circle.point")
    .evaluateAll((cs) => cs.map((c) => [JSON.parse(c.dataset.series), Number(c.dataset.offset), JSON.parse(c.dataset.value)]));
}

async function pageOffset(page) {
  return Number(await page.getByTestId("offset").getAttribute("data-offset"));
}

/**
 * Fills a reducer's form and calls it; resolves with its result element's status and text,
 * and `leaving`: each panel's fading rows (`tr.leaving`) the moment the result showed, read
 * in the page then, since they fade within FADE_MS, which later round trips could outlast.
 */
async function callReducer(page, reducer, args) {
  const form = page.getByTestId(`reducer-form-${reducer}`);
  const out = page.getByTestId(`reducer-result-${reducer}`);
  await out.evaluate((o) => o.removeAttribute("data-status"));
  for (const [name, value] of Object.entries(args)) {
    await form.getByTestId(`arg-${reducer}-${name}`).fill(String(value));
  }
  await out.evaluate((o) => {
    window.__settled = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no result within 10 s")), 10_000);
      const observer = new MutationObserver(() => {
        if (!["committed", "failed"].includes(o.dataset.status)) return;
        observer.disconnect();
        clearTimeout(timer);
        const rows = (p) => [...p.querySelectorAll("tbody tr.leaving")].map((tr) => [...tr.cells].map((td) => JSON.parse(td.dataset.value)));
        resolve([...document.querySelectorAll("[data-testid=panel]")].map(rows));
      });
      observer.observe(o, { attributes: true, attributeFilter: ["data-status"] });
    });
  });
  await page.getByTestId(`reducer-call-${reducer}`).click();
  const leaving = await page.evaluate(() => window.__settled);
  return {
    status: await out.getAttribute("data-status"),
    offset: Number(await out.getAttribute("data-offset")),
    text: await out.textContent(),
    leaving,
  };
}

/** Adds a panel through the page: its SQL typed in and run, then its view chosen. */
async function addPanel(page, sql, view = "table") {
  const n = await page.locator("[data-testid=panel]").count();
  await page.getByTestId("add-panel").click();
  const p = panel(page, n);
  await p.getByTestId("panel-sql").fill(sql);
  await p.getByTestId("panel-run").click();
  if (view !== "table") await p.getByTestId(`view-${view}`).click();
  await eventually(async () => ["live", "error"].includes(await p.getAttribute("data-state")), { what: "the panel to subscribe" });
  return n;
}

describe("dashboard on the bank", () => {
  let page;
  let url;
  const line = []; // the oracle's TOTAL at each offset where it changed: [offset, money]

  /** The page against the oracle, at the offset the last call committed at (the line's points where it is shown). */
  async function checkAt(offset, { lineShown = true } = {}) {
    const [byRegion, rich, total] = await Promise.all([oracle.sql("bank", BY_REGION), oracle.sql("bank", RICH), oracle.sql("bank", TOTAL)]);
    for (const o of [byRegion, rich, total]) assert.equal(o.offset, offset, "the oracle answers at the call's offset");
    assert.equal(await pageOffset(page), offset, "the page's offset is the call's");
    assert.deepEqual(sorted(await tableRows(page, 0)), sorted(byRegion.rows), "table = oracle");
    assert.deepEqual(sorted(await bars(page, 1)), sorted(byRegion.rows.map((r) => [r[0], r[2]])), "bars = oracle");
    assert.deepEqual(sorted(await tableRows(page, 2)), sorted(rich.rows), "filter table = oracle");
    const money = total.rows[0][0];
    if (line.length === 0 || line[line.length - 1][1] !== money) line.push([offset, money]);
    if (!lineShown) return { byRegion, rich };
    const pts = await points(page, 3);
    assert.deepEqual(pts.slice(1).map(([, o, v]) => [o, v]), line.slice(1), "the line's points are where the total changed");
    assert.equal(pts[0][2], line[0][1]);
    return { byRegion, rich };
  }

  test("panels made through the page follow reducer calls exactly", async () => {
    page = await openPage(`${server.url}/?db=bank`);
    assert.equal(await page.getByTestId("db-select").inputValue(), "bank");
    // The schema: tables with their columns, reducers as forms typed by their parameters.
    await assert.doesNotReject(page.getByTestId("table-account").locator('[data-column="balance"]').waitFor());
    assert.equal(await page.getByTestId("arg-transfer-amount").getAttribute("type"), "number");
    assert.equal(await page.getByTestId("arg-seed-n").getAttribute("min"), "0");
    // An empty database opens with its first table; it becomes the join + aggregate.
    assert.equal(await page.locator("[data-testid=panel]").count(), 1);
    await panel(page, 0).getByTestId("panel-sql").fill(BY_REGION);
    await panel(page, 0).getByTestId("panel-run").click();
    await addPanel(page, BY_REGION, "bars");
    await addPanel(page, RICH);
    await addPanel(page, TOTAL, "line");
    await panel(page, 3).getByTestId("panel-value").selectOption("money");
    for (let i = 0; i < 4; i++) assert.equal(await panel(page, i).getAttribute("data-state"), "live");
    const start = await oracle.sql("bank", TOTAL);
    line.push([start.offset, start.rows[0][0]]);
    assert.equal(start.rows[0][0], null, "SUM of no rows");

    // Seeding: every region's row enters.
    const seed = await callReducer(page, "seed", { n: 20 });
    assert.equal(seed.status, "committed", seed.text);
    assert.match(seed.text, new RegExp(`offset ${seed.offset}\\b`));
    const { byRegion } = await checkAt(seed.offset);
    assert.equal(byRegion.rows.length, 10);
    assert.deepEqual(sorted(await tableRows(page, 0, "tr.entering")), sorted(byRegion.rows), "all ten regions entered");

    // A transfer across regions: two groups change in place, one account enters the filter.
    const t1 = await callReducer(page, "transfer", { from_id: 1, to_id: 2, amount: 100 });
    assert.equal(t1.status, "committed", t1.text);
    assert.equal(t1.offset, seed.offset + 1);
    await checkAt(t1.offset);
    const updated = await tableRows(page, 0, "tr.updated");
    assert.deepEqual(sorted(updated), sorted([["region-1", 2, 1900], ["region-2", 2, 2100]]));
    assert.equal(await panel(page, 0).locator("tbody tr.updated td.changed").count(), 2, "only the totals changed");
    assert.deepEqual(await tableRows(page, 2, "tr.entering"), [[2, 1100]], "account 2 entered the filter");

    // Back again: account 2 leaves the filter, its row fading out.
    const t2 = await callReducer(page, "transfer", { from_id: 2, to_id: 1, amount: 100 });
    assert.equal(t2.status, "committed", t2.text);
    assert.deepEqual(t2.leaving[2], [[2, 1100]], "account 2's row fades out");
    await checkAt(t2.offset);
    await eventually(async () => (await panel(page, 2).locator("tbody tr.leaving").count()) === 0, { what: "the faded row to go" });

    // Account 2 leaves the filter and comes back before its row has faded: shown once.
    const t2a = await callReducer(page, "transfer", { from_id: 1, to_id: 2, amount: 100 });
    const t2b = await callReducer(page, "transfer", { from_id: 2, to_id: 1, amount: 100 });
    const t2c = await callReducer(page, "transfer", { from_id: 1, to_id: 2, amount: 100 });
    for (const t of [t2a, t2b, t2c]) assert.equal(t.status, "committed", t.text);
    assert.deepEqual(t2b.leaving[2], [[2, 1100]]);
    assert.deepEqual(t2c.leaving[2], [], "the fading copy went as the row came back");
    await checkAt(t2c.offset);
    assert.equal(await panel(page, 2).locator("tbody tr").count(), 1, "one row for account 2");
    const t2d = await callReducer(page, "transfer", { from_id: 2, to_id: 1, amount: 100 });
    assert.equal(t2d.status, "committed", t2d.text);
    await checkAt(t2d.offset);

    // The line is sampled while another view is shown: switched away and back, it has every
    // change of the total meanwhile.
    await panel(page, 3).getByTestId("view-table").click();
    const t3 = await callReducer(page, "transfer", { from_id: 3, to_id: 14, amount: 250 });
    assert.equal(t3.status, "committed", t3.text);
    await checkAt(t3.offset, { lineShown: false });
    const opened = await callReducer(page, "open", { id: 101, balance: 500 });
    assert.equal(opened.status, "committed", opened.text);
    await checkAt(opened.offset, { lineShown: false });
    assert.deepEqual(await tableRows(page, 0, "tr.updated"), [["region-1", 3, 2500]]);
    const opened2 = await callReducer(page, "open", { id: 102, balance: 300 });
    assert.equal(opened2.status, "committed", opened2.text);
    await checkAt(opened2.offset, { lineShown: false });
    await panel(page, 3).getByTestId("view-line").click();
    await checkAt(opened2.offset);

    // A refused transfer changes nothing and says why; so does an argument of the wrong type.
    const refused = await callReducer(page, "transfer", { from_id: 5, to_id: 6, amount: 5000 });
    assert.equal(refused.status, "failed");
    assert.match(refused.text, /account 5 has 1000 but 5000 was asked/);
    await checkAt(opened2.offset);
    const negative = await callReducer(page, "transfer", { from_id: -1, to_id: 6, amount: 1 });
    assert.equal(negative.status, "failed");
    assert.match(negative.text, /from_id: expected an unsigned integer/);
    await checkAt(opened2.offset);
    assert.ok(line.length >= 4, "the total changed at the seed and the opens");
  });

  test("a bad query shows its error beside it", async () => {
    let expected;
    await assert.rejects(oracle.sql("bank", BAD), (e) => ((expected = e.message), true));
    const i = await addPanel(page, BAD);
    const p = panel(page, i);
    assert.equal(await p.getAttribute("data-state"), "error");
    const shown = await p.getByTestId("panel-error").textContent();
    assert.ok(shown.includes(expected), `${JSON.stringify(shown)} names the server's error ${JSON.stringify(expected)}`);
    assert.ok(await p.getByTestId("panel-error").isVisible());
    // The other panels carry on.
    assert.equal(await panel(page, 0).getAttribute("data-state"), "live");
    // A panel removed is gone from the page and from the URL.
    const extra = await addPanel(page, "SELECT * FROM region");
    assert.equal(await panel(page, extra).getAttribute("data-state"), "live");
    assert.equal(await panel(page, extra).getAttribute("data-rows"), "10");
    assert.equal(urlPanels(page.url()).at(-1).sql, "SELECT * FROM region");
    await panel(page, extra).getByTestId("panel-remove").click();
    assert.equal(await page.locator("[data-testid=panel]").count(), extra);
    assert.equal(urlPanels(page.url()).length, extra);
    assert.ok(!urlPanels(page.url()).some((p) => p.sql === "SELECT * FROM region"));
  });

  test("the URL brings the same panels back", async () => {
    await panel(page, 0).getByTestId("panel-title").fill("By region");
    await panel(page, 0).getByTestId("panel-title").press("Enter");
    await panel(page, 0).getByTestId("panel-title").blur();
    url = page.url();
    assert.match(url, /\?db=bank#panels=/);
    assert.deepEqual(urlPanels(url)[0], { title: "By region", sql: BY_REGION, view: "table" });
    assert.deepEqual(urlPanels(url)[3], { sql: TOTAL, view: "line", value: "money" });
    const specs = async (pg) =>
      pg.locator("[data-testid=panel]").evaluateAll((ps) =>
        ps.map((p) => [p.querySelector("textarea").value, p.dataset.view, p.querySelector("[data-testid=panel-value]")?.value ?? null]),
      );
    const before = await specs(page);
    assert.deepEqual(before.map(([sql, view]) => [sql, view]), [
      [BY_REGION, "table"],
      [BY_REGION, "bars"],
      [RICH, "table"],
      [TOTAL, "line"],
      [BAD, "table"],
    ]);
    assert.equal(before[3][2], "money");
    await page.screenshot({ path: join(ARTIFACTS, "bank.png"), fullPage: true });
    const again = await openPage(url);
    await eventually(async () => (await again.locator('[data-testid=panel][data-state="loading"]').count()) === 0, { what: "panels to load" });
    assert.deepEqual(await specs(again), before);
    assert.equal(await panel(again, 0).getByTestId("panel-title").inputValue(), "By region");
    const byRegion = await oracle.sql("bank", BY_REGION);
    assert.deepEqual(sorted(await tableRows(again, 0)), sorted(byRegion.rows));
    assert.deepEqual(sorted(await bars(again, 1)), sorted(byRegion.rows.map((r) => [r[0], r[2]])));
    assert.ok((await panel(again, 4).getByTestId("panel-error").textContent()).includes("nope"));
    // And a call on the reloaded page reaches the first page's panels too.
    const t = await callReducer(again, "transfer", { from_id: 7, to_id: 18, amount: 1 });
    assert.equal(t.status, "committed", t.text);
    await eventually(async () => (await pageOffset(page)) === t.offset, { what: "the first page to see the call" });
    await checkAt(t.offset);
    await again.close();
  });

  test("the bank replaced under the page (clear=true): the offsets start again and the panels follow", async () => {
    const before = await pageOffset(page);
    networkErrorsExpected = true; // The page may try to reconnect while the bank is missing.
    try {
      assert.equal((await oracle.publish("bank?clear=true", readRepoFile("demo/bank.wasm"))).outcome, "replaced");
      await eventually(
        async () => (await page.getByTestId("connection").getAttribute("data-status")) === "open" && (await pageOffset(page)) < before,
        { what: "the page to resubscribe to the new bank" },
      );
    } finally {
      networkErrorsExpected = false;
    }
    const offset = await pageOffset(page);
    const total = await oracle.sql("bank", TOTAL);
    assert.equal(total.offset, offset, "the page is at the new bank's offset");
    assert.deepEqual(total.rows, [[null, 0]]);
    for (let i = 0; i < 4; i++) {
      assert.equal(await panel(page, i).getAttribute("data-state"), "live");
      assert.equal(Number(await panel(page, i).getAttribute("data-offset")), offset, `panel ${i} is as of the new offset`);
    }
    assert.ok(await page.getByTestId("banner").isHidden(), "a database missing for a moment is no error");
    // The line starts again at the new offset; the old bank's points are gone.
    assert.deepEqual(await points(page, 3), [[null, offset, null]]);
    line.length = 0;
    line.push([offset, null]);
    assert.deepEqual(await tableRows(page, 0), []);
    const seed = await callReducer(page, "seed", { n: 10 });
    assert.equal(seed.status, "committed", seed.text);
    assert.equal(seed.offset, offset + 1);
    await checkAt(seed.offset);
    const opened = await callReducer(page, "open", { id: 50, balance: 5 });
    assert.equal(opened.status, "committed", opened.text);
    await checkAt(opened.offset);
  });
});

describe("the game's default dashboard", () => {
  test("moves with the tick and equals the oracle at the offsets it shows", async () => {
    // Picked from the list of databases.
    const page = await openPage(`${server.url}/?db=bank`);
    const names = await page.getByTestId("db-select").locator("option").evaluateAll((os) => os.map((o) => o.value));
    assert.deepEqual(names, ["bank", "game"]);
    await page.getByTestId("db-select").selectOption("game");
    await page.waitForURL(/\?db=game#panels=/);
    await page.locator('[data-testid=connection][data-status="open"]').waitFor();
    assert.equal(await page.getByTestId("db-select").inputValue(), "game");
    // Without a database in the URL, the game is the one shown, too.
    const plain = await openPage(`${server.url}/`);
    assert.equal(await plain.getByTestId("db-select").inputValue(), "game");
    assert.equal(await plain.locator("[data-testid=panel]").count(), 4);
    await plain.close();
    const titles = await page.getByTestId("panel-title").evaluateAll((is) => is.map((i) => i.value));
    assert.deepEqual(titles, ["Team scores", "Top 10 players", "Team scores over time", "In the goal now"]);
    const first = await pageOffset(page);
    await eventually(async () => (await pageOffset(page)) >= first + 5, { what: "the tick to move the dashboard" });
    await eventually(async () => Number(await page.getByTestId("tps").getAttribute("data-tps")) > 1, { what: "a transaction rate" });

    // The page and the oracle at one offset: the page read (its offset P, the bars and the
    // top 10, in one evaluation) as the oracle is asked, and compared only where the oracle
    // answered at P, until they have met at 3 offsets. The tick moves both on 10 times a
    // second, so it takes a few tries; the tries are bounded by time, and a failure says how
    // they went.
    const teamSql = await panel(page, 0).getByTestId("panel-sql").inputValue();
    const topSql = await panel(page, 1).getByTestId("panel-sql").inputValue();
    const readPage = () =>
      page.evaluate(() => {
        const ps = document.querySelectorAll("[data-testid=panel]");
        return {
          offset: Number(document.querySelector("[data-testid=offset]").dataset.offset),
          bars: [...ps[0].querySelectorAll("rect.bar")].map((r) => [JSON.parse(r.dataset.label), JSON.parse(r.dataset.value)]),
          top: [...ps[1].querySelectorAll("tbody tr[data-row]")].map((tr) => [...tr.cells].map((td) => JSON.parse(td.dataset.value))),
        };
      });
    const WANTED = 3;
    const deadline = Date.now() + 20_000;
    let attempts = 0;
    const matchedAt = [];
    const misses = {}; // (the oracle's offset − the page's) → how often
    while (matchedAt.length < WANTED && Date.now() < deadline) {
      attempts++;
      const [shown, teams, top] = await Promise.all([readPage(), oracle.sql("game", teamSql), oracle.sql("game", topSql)]);
      if (teams.offset !== shown.offset || top.offset !== shown.offset) {
        for (const d of new Set([teams.offset - shown.offset, top.offset - shown.offset])) if (d !== 0) misses[d] = (misses[d] ?? 0) + 1;
        continue;
      }
      assert.deepEqual(sorted(shown.bars), sorted(teams.rows.map((r) => [r[0], r[2]])), `bars at offset ${shown.offset}`);
      assert.deepEqual(shown.top, top.rows, `top 10 in order at offset ${shown.offset}`);
      if (!matchedAt.includes(shown.offset)) matchedAt.push(shown.offset);
    }
    assert.ok(
      matchedAt.length >= WANTED,
      `the page and the oracle met at ${matchedAt.length} offsets (${matchedAt.join(", ")}) of ${WANTED} wanted, in ${attempts} attempts over 20 s; ` +
        `the misses by the oracle's offset minus the page's: ${JSON.stringify(misses)}`,
    );
    console.log(`the page and the oracle met at offsets ${matchedAt.join(", ")} in ${attempts} attempts; misses ${JSON.stringify(misses)}`);
    assert.equal((await points(page, 2)).length > 0, true);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: join(ARTIFACTS, "dashboard.png"), fullPage: true });
    assert.deepEqual(pageErrors, [], "no errors in the page");
    await page.close();
  });
});

describe("the connection", () => {
  test("a restarted server: panels stale meanwhile, live again after, one made meanwhile run; one with a new key refuses the token", async () => {
    const data = mkdtempSync(join(tmpdir(), "sluice-e2e-data-"));
    let durable = await startServer(["--data-dir", data, "--listen", "127.0.0.1:0"]);
    const listen = durable.url.replace(/^http:\/\//, "");
    const errors = [];
    const pages = [];
    networkErrorsExpected = true; // The page tries a server that is away, or refuses its token.
    try {
      const page = await openPage(`${durable.url}/?db=game`, { errors });
      pages.push(page);
      const live = (n) => eventually(async () => (await page.locator('[data-testid=panel][data-state="live"]').count()) === n, { what: `${n} panels live` });
      await live(4);
      const identity = await page.getByTestId("identity").getAttribute("title");

      // Away: reconnecting, the panels stale; a panel made meanwhile cannot subscribe.
      await durable.stop("SIGKILL");
      await page.locator('[data-testid=connection][data-status="reconnecting"]').waitFor();
      await eventually(async () => (await page.locator('[data-testid=panel][data-state="stale"]').count()) === 4, { what: "the panels to go stale" });
      const i = await addPanel(page, "SELECT * FROM team");
      assert.equal(await panel(page, i).getAttribute("data-state"), "error");
      assert.match(await panel(page, i).getByTestId("panel-error").textContent(), /not connected \(reconnecting\)/);

      // Back, with its data and key: the same identity, every panel live, the new one too.
      durable = await startServer(["--data-dir", data, "--listen", listen]);
      await page.locator('[data-testid=connection][data-status="open"]').waitFor();
      assert.equal(await page.getByTestId("identity").getAttribute("title"), identity, "the same identity");
      await live(5);
      assert.equal(await panel(page, i).getAttribute("data-rows"), "2");
      const o = await pageOffset(page);
      await eventually(async () => (await pageOffset(page)) > o, { what: "the tick to move the page again" });
      await eventually(async () => Number(await panel(page, 1).getAttribute("data-offset")) > o, { what: "the top 10 to move again" });

      // Back in memory, with a new key: the token is refused, the page closed, saying why.
      await durable.stop("SIGKILL");
      durable = await startServer(["--in-memory", "--listen", listen]);
      await page.locator('[data-testid=connection][data-status="closed"]').waitFor();
      assert.match(
        await page.getByTestId("banner").textContent(),
        /the server refuses this client's token \(HTTP 401: invalid token: the signature does not match\): not reconnecting/,
      );
      assert.equal(await page.locator('[data-testid=panel][data-state="stale"]').count(), 5);

      // The saved token was refused, so a reload connects as a new identity and saves its token.
      const token = () => page.evaluate(() => localStorage.getItem("sluice.token"));
      const refused = await token();
      await page.reload();
      await page.locator('[data-testid=connection][data-status="open"]').waitFor();
      const fresh = await token();
      assert.notEqual(fresh, refused);
      const freshIdentity = await page.getByTestId("identity").getAttribute("title");
      assert.notEqual(freshIdentity, identity);
      await live(5);

      // A connection failing for another reason keeps the token.
      await page.routeWebSocket(/\/subscribe/, (ws) => ws.close());
      await page.reload();
      await page.locator('[data-testid=connection][data-status="closed"]').waitFor();
      assert.match(await page.getByTestId("banner").textContent(), /could not connect to game/);
      assert.equal(await token(), fresh, "the token is kept");
      const next = await openPage(page.url(), { errors });
      pages.push(next);
      assert.equal(await next.getByTestId("identity").getAttribute("title"), freshIdentity, "and used again");
      assert.deepEqual(errors, [], "no errors in the page but the browser's own about the server away");
    } finally {
      networkErrorsExpected = false;
      for (const p of pages) await p.close();
      await durable.stop();
      rmSync(data, { recursive: true, force: true });
    }
  });
});
