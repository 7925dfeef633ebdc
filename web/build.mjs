// Bundles the dashboard into dist/ (committed; `sluice start` embeds it): dist/index.html,
// dist/assets/app.js (src/main.ts and the TypeScript client, one IIFE, minified) and
// dist/assets/style.css. The output depends only on the sources: no hashes, dates or paths.

import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "assets"), { recursive: true });

await build({
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  outfile: "dist/assets/app.js",
  bundle: true,
  format: "iife",
  target: "es2022",
  platform: "browser",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
await build({
  absWorkingDir: here,
  entryPoints: ["src/style.css"],
  outfile: "dist/assets/style.css",
  bundle: true,
  minify: true,
  charset: "utf8",
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(dist, "index.html"));
console.log("built dist/index.html, dist/assets/app.js, dist/assets/style.css");
