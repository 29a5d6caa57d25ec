// A function's Monitor and call history, as its developer sees them after some calls: the
// totals and charts from the call records, another window, the history filtered by status
// and by request id, and pages of older calls. Laptop and phone.
import * as path from "node:path";
import { call, expectCall, tokenFor, uniqueName } from "../lib/api";
import { expect, hydrated, open, signIn, test } from "./support";

const SCREENSHOTS = path.join(__dirname, "..", "test-results");
const MOODY = `module.exports = async (event) => {
  if (event.query.fail) throw new Error("asked to fail");
  return "fine";
};`;

test("the Monitor shows the calls' figures and the history finds and pages calls", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = uniqueName("mon");
  const token = await tokenFor(state.tenant);
  await expectCall(202, "POST", "/api/v1/functions", { token, json: { name, language: "nodejs", code: MOODY } });
  await expect.poll(async () => (await call("GET", `/api/v1/functions/${name}`, { token })).body?.status, { timeout: 180_000 }).toBe("ready");
  // 23 calls, 3 of them failing: more than one page of the history (20).
  const ids: string[] = [];
  for (let i = 0; i < 23; i++) {
    const answer = await call("GET", `/api/org/${org}/${name}${i % 8 === 3 ? "?fail=1" : ""}`, { token });
    ids.push(answer.headers.get("x-vcd-faas-request-id")!);
  }

  await signIn(page, state.tenant);
  await open(page, `/functions/${org}/${name}`);
  await hydrated(page);
  const monitor = page.getByRole("region", { name: "Monitor" });
  const totals = monitor.getByTestId("monitor-totals");

  await test.step("the totals and the charts of the last hour", async () => {
    await expect(totals.locator('[data-stat="calls"] .value')).toHaveText("23");
    await expect(totals.locator('[data-stat="errors"] .value')).toHaveText("3 (13.0 %)");
    await expect(totals.locator('[data-stat="cold starts"] .value')).toHaveText("1");
    await expect(totals.locator('[data-stat="p50"] .value')).toHaveText(/^\d+\.\d ms$/);
    await expect(monitor.getByTestId("chart-calls").locator("rect.calls")).not.toHaveCount(0);
    await expect(monitor.getByTestId("chart-calls").locator("rect.errors")).not.toHaveCount(0);
    await expect(monitor.getByTestId("chart-duration").locator("path.p99")).toHaveAttribute("d", /^M/);
  });

  await test.step("another window keeps the same calls", async () => {
    await monitor.locator('button[data-window="7d"]').click();
    await expect(monitor.locator('button[data-window="7d"]')).toHaveAttribute("aria-pressed", "true");
    await expect(monitor.getByTestId("chart-calls")).toContainText("buckets of 1 h");
    await expect(totals.locator('[data-stat="calls"] .value')).toHaveText("23");
  });

  const history = page.getByRole("region", { name: "Recent calls" });
  const rows = history.locator("table.invocations tbody tr");
  await test.step("pages of 20, the newest first", async () => {
    await expect(rows).toHaveCount(20);
    await expect(rows.first()).toHaveAttribute("data-request-id", ids[22]);
    await history.getByRole("button", { name: "Older" }).click();
    await expect(rows).toHaveCount(3);
    await expect(rows.last()).toHaveAttribute("data-request-id", ids[0]);
    await expect(history.getByRole("button", { name: "Older" })).toBeDisabled();
    await history.getByRole("button", { name: "Newer" }).click();
    await expect(rows).toHaveCount(20);
  });

  await test.step("filtered by status, then by a request id", async () => {
    await history.getByLabel("Status").selectOption("error");
    await expect(rows).toHaveCount(3);
    await expect(rows.locator(".badge")).toHaveText(["500", "500", "500"]);
    await history.getByLabel("Status").selectOption("");
    await history.getByLabel("Request id").fill(ids[5]);
    await history.getByLabel("Request id").press("Enter");
    await expect(rows).toHaveCount(1);
    await expect(rows.first()).toHaveAttribute("data-request-id", ids[5]);
  });

  await test.step("screenshots (laptop and phone)", async () => {
    await monitor.scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SCREENSHOTS, "monitor-laptop.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(monitor.getByTestId("chart-calls").locator("svg")).toBeVisible();
    const box = await monitor.getByTestId("chart-calls").locator("svg").boundingBox();
    expect(box!.width, "the chart fits the phone's width").toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOTS, "monitor-phone.png"), fullPage: true });
  });

  await expectCall(204, "DELETE", `/api/v1/functions/${name}`, { token });
});
