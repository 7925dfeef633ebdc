// What the end-to-end tests stand on: a real `sluice start` (SLUICE_BIN, default the debug
// build; in memory, on a free port of 127.0.0.1), its HTTP API as the tests' oracle, and
// Debian's Chromium (CHROMIUM, default /usr/bin/chromium) driven by playwright-core with a
// fresh profile. The browser is shown the dashboard the server embeds, so the tests check
// what `sluice start` serves; a binary built before the last `npm run build` embeds an older
// web/dist and the tests refuse it (rebuild with cargo). While working on web/src,
// SLUICE_E2E_ASSETS_FROM_DISK=1 serves the page's scripts and styles (/assets/*) to the
// browser from web/dist on disk instead (index.html, which names them, still comes from the
// server: Chromium lets only a served document reach 127.0.0.1).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const REPO = join(here, "..", "..");
export const ARTIFACTS = join(here, "artifacts");
const SLUICE_BIN = process.env.SLUICE_BIN ?? join(REPO, "target", "debug", "sluice");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

/**
 * Starts `sluice start` (`--in-memory` on a free port unless `args` say otherwise, e.g.
 * `--data-dir` and the port of a server being restarted); resolves once it listens.
 */
export async function startServer(args = ["--in-memory", "--listen", "127.0.0.1:0"]) {
  const proc = spawn(SLUICE_BIN, ["start", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d) => (err += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${out}\n${err}`)), 30_000);
    proc.stdout.on("data", (d) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("error", (e) => reject(new Error(`could not run ${SLUICE_BIN}: ${e.message}`)));
    proc.on("exit", (code) => reject(new Error(`server exited (${code}):\n${out}\n${err}`)));
  });
  return {
    url,
    output: () => out,
    stderr: () => err,
    /** Stops the server (SIGINT, or `signal`: SIGKILL for a crash). */
    async stop(signal = "SIGINT") {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The HTTP API: JSON answers, an Error carrying the server's `error` text otherwise. */
export function api(url, token) {
  const request = async (method, path, body, type) => {
    const headers = {};
    if (token) headers.authorization = `Bearer ${token}`;
    if (type) headers["content-type"] = type;
    const res = await fetch(url + path, { method, headers, body });
    const text = await res.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    if (!res.ok) {
      const e = new Error(json?.error ?? text);
      e.status = res.status;
      throw e;
    }
    return json;
  };
  return {
    identity: () => request("POST", "/v1/identity"),
    publish: (name, wasm) => request("POST", `/v1/database/${name}`, wasm, "application/wasm"),
    call: (db, reducer, args) => request("POST", `/v1/database/${db}/call/${reducer}`, JSON.stringify(args)),
    /** The oracle: a one-off query over HTTP, `{columns, rows, offset}`. */
    sql: (db, query) => request("POST", `/v1/database/${db}/sql`, query, "text/plain"),
    get: (path) => request("GET", path),
  };
}

export function readRepoFile(path) {
  return readFileSync(join(REPO, path));
}

export const DIST = join(REPO, "web", "dist");
const DIST_FILES = {
  "/assets/app.js": ["assets/app.js", "text/javascript; charset=utf-8"],
  "/assets/style.css": ["assets/style.css", "text/css; charset=utf-8"],
};

/** Whether the server at `url` serves web/dist as it is on disk. */
export async function servesDist(url) {
  for (const [path, [file]] of [["/", ["index.html"]], ...Object.entries(DIST_FILES)]) {
    const served = Buffer.from(await (await fetch(url + path)).arrayBuffer());
    if (!served.equals(readFileSync(join(DIST, file)))) return false;
  }
  return true;
}

/** Assets from disk rather than from the server (SLUICE_E2E_ASSETS_FROM_DISK=1). */
export const ASSETS_FROM_DISK = process.env.SLUICE_E2E_ASSETS_FROM_DISK === "1";

/** Debian's Chromium, headless, with a fresh profile (removed by `close`). */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), "sluice-e2e-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  if (ASSETS_FROM_DISK) {
    await context.route(
      (url) => url.hostname === "127.0.0.1" && Object.hasOwn(DIST_FILES, url.pathname),
      (route) => {
        const [file, contentType] = DIST_FILES[new URL(route.request().url()).pathname];
        return route.fulfill({ status: 200, contentType, body: readFileSync(join(DIST, file)) });
      },
    );
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Sorts rows (arrays of JSON values) into one order, to compare multisets. */
export function sorted(rows) {
  return rows.map((r) => JSON.stringify(r)).sort();
}

/** Waits until `check` returns a truthy value (re-trying on throws), or fails with the last reason. */
export async function eventually(check, { timeout = 10_000, interval = 50, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = new Error(`${what}: not yet`);
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${last?.message}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
