// Keeps Herald's console open in headless chromium until killed (for
// scripts/bench_console.sh: the cost of a console left open).
//   node scripts/console-keep-open.mjs http://127.0.0.1:8001/
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "crates/herald/tests/browser/package.json"));
const { chromium } = require("playwright-core");
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const page = browser.pages()[0] ?? (await browser.newPage());
await page.goto(process.argv[2] || "http://127.0.0.1:8001/");
const stop = async () => { await browser.close(); fs.rmSync(profile, { recursive: true, force: true }); process.exit(0); };
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
console.log("console open");
setInterval(() => {}, 1 << 30);
