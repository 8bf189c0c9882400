// Takes docs/console.png: starts a Herald (target/release/herald, or
// $HERALD_BIN) on ephemeral ports with a temporary data directory, feeds it
// a little traffic over TCP (publishers at a changing rate, subscribers that
// ack), lets the console's charts fill for a while, and screenshots the
// overview in Debian's headless chromium with playwright-core.
//
//   cargo build --release
//   (cd crates/herald/tests/browser && npm ci)
//   node scripts/screenshot-console.mjs [out.png] [seconds]
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(root, "crates/herald/tests/browser/package.json"));
const { chromium } = require("playwright-core");

const out = process.argv[2] || path.join(root, "docs/console.png");
const seconds = Number(process.argv[3] || 40);
const bin = process.env.HERALD_BIN || path.join(root, "target/release/herald");
const data = fs.mkdtempSync(path.join(os.tmpdir(), "herald-shot-"));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chromium-"));

const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--data", data, "--fsync", "interval"],
  { stdio: ["ignore", "ignore", "pipe"], env: { PATH: process.env.PATH } });
const addrs = await new Promise((resolve, reject) => {
  let log = "";
  server.stderr.on("data", (d) => {
    log += d;
    const tcp = log.match(/listening addr=(\S+)/);
    const http = log.match(/http_addr=(\S+)/);
    if (tcp && http) resolve({ tcp: tcp[1], http: http[1] });
  });
  server.on("exit", (code) => reject(new Error(`herald exited (${code}):\n${log}`)));
  setTimeout(() => reject(new Error("herald did not start:\n" + log)), 10000);
});

function connect() {
  const i = addrs.tcp.lastIndexOf(":");
  const socket = net.connect(Number(addrs.tcp.slice(i + 1)), addrs.tcp.slice(0, i));
  socket.setNoDelay(true);
  return socket;
}

// A subscriber that acks every delivery after `delayMs`.
function subscriber(lines, delayMs) {
  const s = connect();
  let buffer = "";
  s.on("data", (d) => {
    buffer += d;
    let i;
    while ((i = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (line.startsWith("{")) {
        const e = JSON.parse(line);
        setTimeout(() => s.write(`ack ${e.topic} ${e.id}\n`), delayMs);
      }
    }
  });
  s.write(lines.map((l) => l + "\n").join(""));
  return s;
}

const admin = connect();
admin.on("data", () => {});
admin.write("create orders\ncreate emails\ncreate audit\ncreate invoices.dead\n");
subscriber(["sub orders 64 group=workers"], 5);
subscriber(["sub orders 64 group=workers"], 8);
subscriber(["name billing", "sub orders 32 wait=30000 max_deliveries=5"], 30);
subscriber(["sub emails 16"], 40);
const idle = connect(); // a durable subscription with a backlog and no holder
idle.write("name archive\nsub audit 1 wait=60000\n");
setTimeout(() => idle.destroy(), 500);
const publisher = connect();
publisher.on("data", () => {});
let n = 0;
const started = Date.now();
const feed = setInterval(() => {
  const t = (Date.now() - started) / 1000;
  const burst = Math.round(60 + 45 * Math.sin(t / 4) + 20 * Math.sin(t * 1.3));
  let lines = "";
  for (let i = 0; i < burst; i++) {
    n += 1;
    lines += `pub orders {"id":"o${n}","priority":${n % 4},"msg":{"order":${n},"total":${(n * 7) % 300}}}\n`;
    if (n % 3 === 0) lines += `pub emails {"id":"e${n}","msg":"welcome ${n}"}\n`;
    if (n % 10 === 0) lines += `pub audit {"id":"a${n}","msg":"login user${n % 97}"}\n`;
  }
  publisher.write(lines);
}, 100);

const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 860 },
  deviceScaleFactor: 1,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  await page.goto(`http://${addrs.http}/`);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  await page.screenshot({ path: out });
  console.log(`wrote ${out} (${addrs.http}, ${n} orders published)`);
} finally {
  clearInterval(feed);
  await browser.close();
  server.kill("SIGTERM");
  fs.rmSync(profile, { recursive: true, force: true });
  setTimeout(() => { fs.rmSync(data, { recursive: true, force: true }); process.exit(0); }, 500);
}
