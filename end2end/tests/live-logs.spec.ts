// Live logs: a developer follows a function and sees a call someone else makes, with its
// logs, while the page stays open.
import { call, expectCall, tokenFor, uniqueName } from "../lib/api";
import { expect, open, signIn, test } from "./support";

test("live logs show a new call and its logs within two seconds", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = uniqueName("live");
  const token = await tokenFor(state.tenant);
  const code = `module.exports = async (event) => { console.log("hello from " + event.path); return "ok"; };`;
  await expectCall(202, "POST", "/api/v1/functions", { token, json: { name, language: "nodejs", code } });
  await expect.poll(async () => (await call("GET", `/api/v1/functions/${name}`, { token })).body?.status, { timeout: 180_000 }).toBe("ready");

  await signIn(page, state.tenant);
  await open(page, `/functions/${org}/${name}`);
  const panel = page.getByRole("region", { name: "Live logs" });
  await panel.getByTestId("follow").click();
  await expect(panel.getByTestId("live-state")).toHaveText("live");

  const answer = await call("GET", `/api/org/${org}/${name}/from-outside`, { token });
  expect(answer.status).toBe(200);
  const id = answer.headers.get("x-vcd-faas-request-id")!;
  const item = panel.locator(`li[data-request-id="${id}"]`);
  await expect(item).toBeVisible({ timeout: 2_000 });
  await expect(item).toContainText("GET /from-outside");
  await item.locator("summary", { hasText: "logs" }).click();
  await expect(item.locator("pre.log")).toContainText("hello from /from-outside");

  // Stopped, it shows no new call.
  await panel.getByTestId("follow").click();
  const later = await call("GET", `/api/org/${org}/${name}/later`, { token });
  await page.waitForTimeout(1500);
  await expect(panel.locator(`li[data-request-id="${later.headers.get("x-vcd-faas-request-id")}"]`)).toHaveCount(0);
});
