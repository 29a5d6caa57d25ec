// A developer makes a function triggered by a vCD event in the form, then widens it to failed
// operations too. With no vCD configured, the page says the function is local only.
import { call, tokenFor } from "../lib/api";
import { expect, hydrated, signIn, test } from "./support";

test("a vCD event trigger is chosen in the form and shown on the function page", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = `on-vm-${Date.now().toString(36)}`;
  await signIn(page, state.tenant);
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "New function" }).click();
  await hydrated(page);
  await page.locator("#fn-name").fill(name);

  await test.step("the event fields appear with the trigger, successful operations only by default", async () => {
    await expect(page.locator("#fn-event")).toBeHidden();
    await page.locator("#fn-trigger").selectOption("vcd-event");
    await expect(page.locator("#fn-event")).toBeVisible();
    await expect(page.locator("#fn-successful-only")).toBeChecked();
    await page.locator("#fn-event").fill("com/vmware/vcloud/event/vm/create");
  });

  await test.step("created: the page names the event and says there is no vCD", async () => {
    await page.getByRole("button", { name: "Create function" }).click();
    await expect(page).toHaveURL(new RegExp(`/functions/${org}/${name}$`));
    const overview = page.getByRole("region", { name: "Overview" });
    await expect(overview).toContainText("vCD event com/vmware/vcloud/event/vm/create (successful operations only)");
    await expect(page.locator("[data-testid=registration]")).toContainText("local only");
  });

  await test.step("edit: failed operations too", async () => {
    const edit = page.getByRole("region", { name: "Edit function" });
    await edit.locator("summary").click();
    const box = edit.locator("#fn-successful-only");
    await expect(box).toBeChecked();
    await box.uncheck();
    await edit.getByRole("button", { name: "Save new version" }).click();
    await expect(page.getByRole("region", { name: "Overview" })).toContainText("(successful and failed operations)");
    const token = await tokenFor(state.tenant);
    const f = await call("GET", `/api/v1/functions/${name}`, { token });
    expect(JSON.parse(f.text).trigger).toEqual({ type: "vcd-event", event: "com/vmware/vcloud/event/vm/create", successful_only: false });
  });
});
