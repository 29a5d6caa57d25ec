// Saved test events: a developer saves a request under a name, comes back later, picks it to
// fill the form, runs it, and deletes it.
import { call, expectCall, tokenFor, uniqueName } from "../lib/api";
import { expect, open, signIn, test } from "./support";

test("a saved test event fills the form again and runs", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = uniqueName("evt");
  const token = await tokenFor(state.tenant);
  const code = `module.exports = async (event) => ({ path: event.path, body: event.body });`;
  await expectCall(202, "POST", "/api/v1/functions", { token, json: { name, language: "nodejs", code } });
  await expect.poll(async () => (await call("GET", `/api/v1/functions/${name}`, { token })).body?.status, { timeout: 180_000 }).toBe("ready");

  await signIn(page, state.tenant);
  await open(page, `/functions/${org}/${name}`);
  const panel = page.getByRole("region", { name: "Test function" });
  await panel.locator("#t-method").selectOption("POST");
  await panel.locator("#t-path").fill("/orders");
  await panel.locator("#t-body").fill('{"id": 7}');
  await panel.locator("#t-event-name").fill("bad/name");
  await panel.getByTestId("save-event").click();
  await expect(panel.locator(".field-error[data-field=name]")).toContainText("1–64 letters");
  await panel.locator("#t-event-name").fill("order created");
  await panel.getByTestId("save-event").click();
  await expect(panel.getByText('event "order created" saved')).toBeVisible();

  // Later: the form starts empty; the saved event fills it.
  await open(page, `/functions/${org}/${name}`);
  await expect(panel.locator("#t-path")).toHaveValue("");
  await panel.locator("#t-saved").selectOption("order created");
  await expect(panel.locator("#t-method")).toHaveValue("POST");
  await expect(panel.locator("#t-path")).toHaveValue("/orders");
  await expect(panel.locator("#t-body")).toHaveValue('{"id": 7}');
  await panel.getByRole("button", { name: "Test Function" }).click();
  await expect(panel.locator("[data-testid=test-body]")).toContainText('"path": "/orders"');
  await expect(panel.locator("[data-testid=test-body]")).toContainText('"body": "{\\"id\\": 7}"');

  await panel.getByTestId("delete-event").click();
  await expect(panel.getByText('event "order created" deleted')).toBeVisible();
  await expect(panel.locator("#t-saved option")).toHaveText(["— none —"]);
});
