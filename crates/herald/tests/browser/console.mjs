// Drives Herald's web console in a headless Chromium, as a user would:
// loads it, sees a topic created over TCP appear, publishes through the
// form and sees the counts change, looks at a subscription and peeks at
// it, and sees the error banner while the API is unreachable.
//
// Run by crates/herald/tests/console_browser.rs, which starts the server:
//   HERALD_HTTP=127.0.0.1:PORT HERALD_ADDR=127.0.0.1:PORT node console.mjs
// Prints one line per step; exits non-zero at the first failed step.
import { chromium } from "playwright-core";
import net from "node:net";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const http = process.env.HERALD_HTTP;
const tcp = process.env.HERALD_ADDR;
if (!http || !tcp) throw new Error("set HERALD_HTTP and HERALD_ADDR");
const base = `http://${http}/`;
// The console polls every second: a step takes a few polls; the margin is
// for a machine busy with other work.
const STEP_MS = 15000;

// Sends protocol lines over one TCP connection and returns one reply line
// per command (after the greeting), then closes it.
function protocol(lines) {
  const [host, port] = [tcp.slice(0, tcp.lastIndexOf(":")), Number(tcp.slice(tcp.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host);
    let buffer = "";
    const replies = [];
    socket.setTimeout(STEP_MS, () => reject(new Error("protocol timeout: " + buffer)));
    socket.on("error", reject);
    socket.on("connect", () => socket.write(lines.map((l) => l + "\n").join("")));
    socket.on("data", (d) => {
      buffer += d;
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        replies.push(buffer.slice(0, i).trim());
        buffer = buffer.slice(i + 1);
      }
      if (replies.length >= lines.length + 1) {
        socket.end();
        resolve(replies.slice(1));
      }
    });
  });
}

function step(what) { console.log("step: " + what); }

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "herald-chromium-"));
// Playwright passes the empty profile as --user-data-dir itself.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run"],
});
const errors = [];
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.setDefaultTimeout(STEP_MS);
  page.on("pageerror", (e) => errors.push("page error: " + e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push("console error: " + m.text()); });

  step("load the console");
  await page.goto(base);
  await page.locator("[data-testid=topics]").getByText("No topics yet").waitFor();
  await page.locator("[data-fact=version]").filter({ hasText: /^\d+\.\d+\.\d+/ }).waitFor();

  step("a topic created over TCP appears");
  const created = await protocol(["create orders"]);
  if (created[0] !== "+OK created orders") throw new Error("create: " + created);
  const orders = page.locator('tr[data-topic="orders"]');
  await orders.waitFor();
  const publishedCell = orders.locator("td").nth(5);
  await expectText(publishedCell, "0");

  step("a durable subscription made over TCP shows on the topic page");
  const subbed = await protocol(["name billing", "sub orders 1 wait=30000"]);
  if (!subbed[1].startsWith("+OK subscribed orders")) throw new Error("sub: " + subbed);
  await orders.locator("a").click();
  await page.waitForURL(/#\/topics\/orders$/);
  const billing = page.locator("[data-testid=subscriptions] tr", { hasText: "billing" });
  await billing.waitFor();
  await expectText(billing.locator("td").nth(1), "durable");
  await expectText(billing.locator("td").nth(7), "wait=30000");

  step("publish through the form");
  await page.getByRole("link", { name: "Publish to orders" }).click();
  const form = page.locator("[data-testid=publish]");
  await expectValue(form.locator("input[name=topic]"), "orders");
  await form.locator("input[name=id]").fill("from-the-console");
  await form.locator("input[name=priority]").fill("7");
  await form.locator("textarea[name=msg]").fill('{"hello":"console"}');
  await form.locator("input[name=json]").check();
  await form.getByRole("button", { name: "Publish" }).click();
  await expectText(page.locator("[data-testid=publish-result]"), "published orders from-the-console");
  await form.getByRole("button", { name: "Publish" }).click();
  await expectText(page.locator("[data-testid=publish-result]"), /^published orders console-/);

  step("the counts change");
  await page.goto(base + "#/topics/orders");
  await expectText(page.locator("[data-fact=published]"), "2");
  await expectText(billing.locator("td").nth(3), "2"); // pending
  await page.goto(base);
  await expectText(publishedCell, "2");
  await expectText(orders.locator("td").nth(2), "2"); // pending
  await expectText(page.locator(".card .label span.mono").first(), "2 total");

  step("peek shows the queued events, highest priority first");
  await page.goto(base + "#/topics/orders");
  await billing.waitFor();
  await page.getByRole("button", { name: "Peek" }).click();
  await expectText(page.locator("[data-testid=peek]"), /"id":"from-the-console","priority":7,"msg":\{"hello":"console"\}/);

  step("an unknown topic has an empty state");
  await page.goto(base + "#/topics/nope");
  await page.getByText("No topic named").waitFor();

  step("connections list the protocol clients");
  const held = net.connect(Number(tcp.split(":").pop()), tcp.slice(0, tcp.lastIndexOf(":")));
  await new Promise((r) => held.on("connect", r));
  await page.goto(base + "#/connections");
  await page.locator("[data-testid=connections] tbody tr td.mono").first().waitFor();
  held.destroy();

  step("the banner says when the server cannot be reached, and goes away");
  await page.goto(base);
  await orders.waitFor();
  await page.route("**/api/v1/**", (route) => route.abort("connectionrefused"));
  await page.locator("#banner").getByText("Cannot reach Herald").waitFor();
  await page.unroute("**/api/v1/**");
  await page.locator("#banner").waitFor({ state: "hidden" });

  // The aborted requests above log network errors by design; anything else is a bug.
  const unexpected = errors.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(e));
  if (unexpected.length) throw new Error("errors in the page:\n" + unexpected.join("\n"));
  step("done");
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}

async function expectText(locator, want) {
  const deadline = Date.now() + STEP_MS;
  let got;
  for (;;) {
    got = (await locator.textContent()) ?? "";
    if (typeof want === "string" ? got.trim() === want : want.test(got)) return;
    if (Date.now() > deadline) throw new Error(`expected ${want} in ${locator}, got ${JSON.stringify(got)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function expectValue(locator, want) {
  const got = await locator.inputValue();
  if (got !== want) throw new Error(`expected value ${want} in ${locator}, got ${got}`);
}
