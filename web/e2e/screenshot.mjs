// A screenshot of a running dashboard, as a person would see it (docs/dashboard.png):
//   node e2e/screenshot.mjs http://127.0.0.1:3000/ out.png [wait-ms]
// The page's console messages and errors are printed.

import { launchBrowser } from "./harness.mjs";

const [url, out, wait] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node e2e/screenshot.mjs URL OUT.png [WAIT_MS]");
  process.exit(2);
}
const browser = await launchBrowser();
try {
  const page = await browser.context.newPage();
  page.on("console", (m) => console.log(`console.${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.log(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForTimeout(Number(wait ?? 3000));
  await page.screenshot({ path: out, fullPage: true });
  console.log(`saved ${out}`);
} finally {
  await browser.close();
}
