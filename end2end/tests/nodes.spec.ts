// The provider dashboard's Nodes panel against a real small cluster: a front that runs nothing
// itself (VCD_FAAS_LOCAL_WORKER=false) and one worker node beside the machine's Docker engine,
// both on a fresh PostgreSQL database. scripts/test.sh starts them and sets CLUSTER_URL (the
// front) and CLUSTER_NODE_* (what the node was started with); the SQLite portal of BASE_URL,
// which the other specs use, has no node and shows no Nodes panel.
import { Locator, Page, TestInfo } from "@playwright/test";
import { Account, call, expectCall, tokenFor, uniqueName } from "../lib/api";
import { expect, hydrated, signInAsProvider, test } from "./support";

const CLUSTER_URL = process.env.CLUSTER_URL?.replace(/\/+$/, "");
const NODE = process.env.CLUSTER_NODE_NAME ?? "e2e-node";
/** What the node was started with, when the caller says (test.sh does). */
const NODE_ADDR = process.env.CLUSTER_NODE_ADDR;
const NODE_MEMORY_MB = process.env.CLUSTER_NODE_MEMORY_MB;
const NODE_CPUS = process.env.CLUSTER_NODE_CPUS;

const ADMIN: Account = {
  org: "provider",
  username: process.env.VCD_FAAS_ADMIN_USER ?? "admin",
  password: process.env.VCD_FAAS_ADMIN_PASSWORD ?? "adminpass123",
};

test.skip(!CLUSTER_URL, "CLUSTER_URL is unset: no cluster front to test the Nodes panel against (scripts/test.sh starts one)");
if (CLUSTER_URL) test.use({ baseURL: CLUSTER_URL });

/** The columns of the panel's table, in order. */
const COLUMNS = ["node", "address", "state", "containers", "memory", "cpu", "calls/s", "in flight", "button"] as const;
type Column = (typeof COLUMNS)[number];

function nodeRow(page: Page): Locator {
  return page.locator(`table.nodes tr[data-node="${NODE}"]`);
}

function cell(page: Page, column: Column): Locator {
  return nodeRow(page).locator("td").nth(COLUMNS.indexOf(column));
}

/** The section of the dashboard holding the Nodes table. */
function panel(page: Page): Locator {
  return page.locator("section.card", { has: page.getByRole("heading", { level: 2, name: "Nodes" }) });
}

async function openDashboard(page: Page): Promise<void> {
  await signInAsProvider(page);
  await expect(page.getByRole("heading", { level: 1, name: "Provider dashboard" })).toBeVisible();
  await expect(nodeRow(page)).toBeVisible();
}

/** Saves the page and the Nodes panel alone under the test's output folder (test-results/…). */
async function shoot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  await page.screenshot({ path: testInfo.outputPath(`${name}-page.png`), fullPage: true });
  await panel(page).screenshot({ path: testInfo.outputPath(`${name}-panel.png`) });
}

/** The node as GET /api/v1/nodes gives it. */
async function nodeFromApi(adminToken: string): Promise<any> {
  const nodes = await expectCall(200, "GET", "/api/v1/nodes", { base: CLUSTER_URL, token: adminToken });
  const node = (nodes as any[]).find((n) => n.name === NODE);
  expect(node, `GET /api/v1/nodes lists ${NODE}: ${JSON.stringify(nodes)}`).toBeTruthy();
  return node;
}

/** Fails at once, rather than at a later timeout, when the node is not up to begin with. */
async function expectNodeUp(adminToken: string): Promise<any> {
  const node = await nodeFromApi(adminToken);
  expect(node.state, `${NODE} should be up at the start: ${JSON.stringify(node)}`).toBe("up");
  return node;
}

let adminToken = "";
/** The tenant, developer token and function made on the cluster, removed after the tests. */
let made: { org: string; devToken: string; fn: string; ready?: boolean } | undefined;
/** Every function made (several with --repeat-each), deleted after the tests. */
const madeAll: { devToken: string; fn: string }[] = [];

/** One call of the function made on the cluster: "<status> <node or error>". */
async function callMade(): Promise<string> {
  const answer = await call("GET", `/api/org/${made!.org}/${made!.fn}`, { base: CLUSTER_URL, token: made!.devToken });
  return `${answer.status} ${answer.status === 200 ? answer.headers.get("x-vcd-faas-node") : answer.body?.error ?? answer.text}`;
}

test.beforeAll(async () => {
  adminToken = await tokenFor(ADMIN, CLUSTER_URL);
});

test.afterAll(async () => {
  if (!CLUSTER_URL || !adminToken) return;
  // Whatever happened, the node takes calls again, and the function (so its containers) goes.
  await call("POST", `/api/v1/nodes/${NODE}/undrain`, { base: CLUSTER_URL, token: adminToken }).catch(() => undefined);
  for (const { fn, devToken } of madeAll) {
    await call("DELETE", `/api/v1/functions/${fn}`, { base: CLUSTER_URL, token: devToken }).catch(() => undefined);
  }
});

test("the Nodes panel lists the worker node as up, with its address and capacity", async ({ page }, testInfo) => {
  const api = await expectNodeUp(adminToken);
  if (NODE_ADDR) expect(api.address).toBe(NODE_ADDR);
  if (NODE_MEMORY_MB) expect(api.memory_mb).toBe(Number(NODE_MEMORY_MB));
  if (NODE_CPUS) expect(api.cpus).toBe(Number(NODE_CPUS));

  await openDashboard(page);
  const nodes = panel(page);
  await expect(nodes).toContainText("1 of 1 worker node(s) take calls.");
  await expect(cell(page, "node")).toHaveText(NODE);
  await expect(cell(page, "address")).toHaveText(api.address);
  expect(api.address).toMatch(/^127\.0\.0\.1:\d+$/);
  await expect(cell(page, "state").locator(".badge")).toHaveText("up");
  await expect(cell(page, "state").locator(".badge")).toHaveClass(/\bbadge-up\b/);
  // Capacity: "<used> / <memory> MB" and "<used> / <cpus>" (one decimal).
  await expect(cell(page, "memory")).toHaveText(new RegExp(`^\\d+ / ${api.memory_mb} MB$`));
  await expect(cell(page, "cpu")).toHaveText(new RegExp(`^\\d+\\.\\d / ${Number(api.cpus).toFixed(1).replace(".", "\\.")}$`));
  await expect(cell(page, "button").getByRole("button", { name: "Drain", exact: true })).toBeVisible();
  // A front without a local worker has no engine of its own: the dashboard says so.
  await expect(page.locator('table.service-links tr[data-link="Docker engine"] .badge')).toHaveText("off");
  await shoot(page, testInfo, "nodes-up");
});

test("a function built and called on the node shows in its row", async ({ page }, testInfo) => {
  const org = uniqueName("e2e-nodes");
  const dev: Account = { org, username: "dev", password: `pw-${Math.random().toString(36).slice(2)}-e2e` };
  const fn = "on-node";
  await expectNodeUp(adminToken);
  await test.step("a tenant and a Node.js function, through the front's REST API", async () => {
    await expectCall(201, "POST", "/api/v1/tenants", {
      base: CLUSTER_URL,
      token: adminToken,
      json: { name: org, display_name: `End-to-end ${org}` },
    });
    await expectCall(201, "POST", `/api/v1/tenants/${org}/users`, {
      base: CLUSTER_URL,
      token: adminToken,
      json: { username: dev.username, password: dev.password, role: "developer" },
    });
    const devToken = await tokenFor(dev, CLUSTER_URL);
    await expectCall(202, "POST", "/api/v1/functions", {
      base: CLUSTER_URL,
      token: devToken,
      json: { name: fn, language: "nodejs", code: "module.exports = async (event) => `hello from ${event.query.who ?? 'nobody'}`;\n" },
    });
    made = { org, devToken, fn };
    madeAll.push(made);
  });

  await test.step("the node builds it", async () => {
    const deadline = Date.now() + 180_000;
    let f: any = undefined;
    for (;;) {
      f = (await call("GET", `/api/v1/functions/${fn}`, { base: CLUSTER_URL, token: made!.devToken })).body;
      if (f?.status === "ready") break;
      if (f?.status === "failed") throw new Error(`the build failed:\n${f.build_log}`);
      if (Date.now() > deadline) throw new Error(`not ready within 180 s: ${JSON.stringify(f)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(f.build_log, "the build log says where it ran").toContain(`on node ${NODE}`);
  });

  await test.step("a call runs there", async () => {
    const answer = await call("GET", `/api/org/${org}/${fn}?who=e2e`, { base: CLUSTER_URL, token: made!.devToken });
    expect(answer.status, answer.text).toBe(200);
    expect(answer.text).toBe("hello from e2e");
    expect(answer.headers.get("x-vcd-faas-node")).toBe(NODE);
    made!.ready = true;
  });

  await test.step("after a reload, the row shows the warm container and the calls", async () => {
    await openDashboard(page);
    await page.reload();
    await hydrated(page);
    // The heartbeat (every second) carries the node's containers; the panel reads every 3 s.
    await expect.poll(async () => Number(await cell(page, "containers").textContent()), { timeout: 30_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => Number((await cell(page, "memory").textContent())?.split(" ")[0]), { timeout: 30_000 }).toBeGreaterThan(0);
    // Calls/s is the rate over the last 10 s: keep calling until the panel shows it.
    const deadline = Date.now() + 45_000;
    let rate = 0;
    while (Date.now() < deadline) {
      const answer = await call("GET", `/api/org/${org}/${fn}`, { base: CLUSTER_URL, token: made!.devToken });
      expect(answer.status, answer.text).toBe(200);
      rate = Number(await cell(page, "calls/s").textContent());
      if (rate > 0) break;
      await page.waitForTimeout(500);
    }
    expect(rate, "the row's Calls/s while the function is called about twice a second").toBeGreaterThan(0);
    await expect(cell(page, "in flight")).toHaveText("0");
    await expect(cell(page, "state").locator(".badge")).toHaveText("up");
    // The Tenants table counts the tenant's containers on the nodes too (the front has none).
    await page.reload();
    await hydrated(page);
    const containersNow = page.locator(`table.tenant-figures tr[data-tenant="${org}"] td`).last();
    await expect.poll(async () => Number(await containersNow.textContent()), { timeout: 15_000 }).toBeGreaterThanOrEqual(1);
    await shoot(page, testInfo, "nodes-after-calls");
  });
});

test("Drain and Undrain steer the node, and the drained state is stored", async ({ page }, testInfo) => {
  await expectNodeUp(adminToken);
  await openDashboard(page);
  const badge = cell(page, "state").locator(".badge");
  await expect(badge).toHaveText("up");

  await test.step("Drain: the row shows draining, and the button turns into Undrain", async () => {
    await cell(page, "button").getByRole("button", { name: "Drain", exact: true }).click();
    await expect(badge).toHaveText("draining");
    await expect(badge).toHaveClass(/\bbadge-draining\b/);
    await expect(panel(page)).toContainText("0 of 1 worker node(s) take calls.");
    await expect(cell(page, "button").getByRole("button", { name: "Undrain", exact: true })).toBeVisible();
    await expect(cell(page, "button").getByRole("button", { name: "Drain", exact: true })).toHaveCount(0);
    expect((await nodeFromApi(adminToken)).state).toBe("draining");
    // With the function of the test before (same worker): a drained node takes no new call,
    // and it is the only one (fronts read the nodes twice a second).
    if (made?.ready) await expect.poll(callMade, { timeout: 10_000 }).toMatch(/^503 none of the 1 worker node\(s\) takes calls now \(down or drained\)/);
    await shoot(page, testInfo, "nodes-draining");
  });

  await test.step("a reload still shows it draining (the database keeps it)", async () => {
    await page.reload();
    await hydrated(page);
    await expect(badge).toHaveText("draining");
    // A few refreshes later (every 3 s) too: the heartbeat does not undo it.
    await page.waitForTimeout(4_000);
    await expect(badge).toHaveText("draining");
  });

  await test.step("Undrain: up again", async () => {
    await cell(page, "button").getByRole("button", { name: "Undrain", exact: true }).click();
    await expect(badge).toHaveText("up");
    await expect(panel(page)).toContainText("1 of 1 worker node(s) take calls.");
    await expect(cell(page, "button").getByRole("button", { name: "Drain", exact: true })).toBeVisible();
    expect((await nodeFromApi(adminToken)).state).toBe("up");
    if (made?.ready) await expect.poll(callMade, { timeout: 10_000 }).toBe(`200 ${NODE}`);
    await page.reload();
    await hydrated(page);
    await expect(badge).toHaveText("up");
    await shoot(page, testInfo, "nodes-undrained");
  });
});
