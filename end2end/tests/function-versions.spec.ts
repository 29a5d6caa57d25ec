// Two people change one function: an Edit form opened before someone else's save is refused
// rather than undoing that save, and a broken version is undone by restoring one that built.
import { call, expectCall, tokenFor } from "../lib/api";
import { expect, expectEditorText, open, signIn, statusBadge, test, testFunction, waitForStatus } from "./support";

test("a stale edit is refused and a version that built can be restored", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = `versions-${Date.now().toString(36)}`;
  const token = await tokenFor(state.tenant);
  const v1 = "module.exports = async () => 'first version';\n";
  await expectCall(202, "POST", "/api/v1/functions", { token, json: { name, language: "nodejs", code: v1 } });
  await signIn(page, state.tenant);
  await open(page, `/functions/${org}/${name}`);
  await waitForStatus(page, "ready");

  const edit = page.getByRole("region", { name: "Edit function" });
  await edit.locator("summary").click();
  await expectEditorText(edit, v1);

  await test.step("someone else saves a broken v2 while the form holds v1", async () => {
    const update = await call("PUT", `/api/v1/functions/${name}`, { token, json: { code: "module.exports = async () => {\n" } });
    expect(update.status, update.text).toBe(202);
    await expect(page.getByRole("heading", { name: "Build of v2 failed" })).toBeVisible({ timeout: 180_000 });
    await expect(page.getByRole("region", { name: "Overview" })).toContainText("restore a version that built");
  });

  await test.step("saving the stale form is refused, and v2 stays the latest", async () => {
    await edit.locator("#fn-timeout").fill("2000");
    await edit.getByRole("button", { name: "Save new version" }).click();
    await expect(edit.getByRole("alert")).toContainText("latest version is now 2");
    const f = JSON.parse((await call("GET", `/api/v1/functions/${name}`, { token })).text);
    expect(f.latest_version).toBe(2);
  });

  await test.step("restoring v1 builds v3 from it; the edit form holds v1's code again", async () => {
    const versions = page.getByRole("region", { name: "Versions" });
    await expect(versions.getByRole("button", { name: "Restore v2" })).toHaveCount(0);
    await versions.getByRole("button", { name: "Restore v1" }).click();
    await expect(versions.getByRole("status")).toContainText("version 3 is building from version 1");
    await expect(page.locator("[data-testid=serving-version]")).toHaveText("v3", { timeout: 180_000 });
    await expect(statusBadge(page)).toHaveAttribute("data-status", "ready");
    const result = await testFunction(page, "");
    await expect(result.locator("[data-testid=test-body]")).toHaveText("first version");
    // The form was made anew from v3: the timeout typed into the stale form is gone.
    const form = page.getByRole("region", { name: "Edit function" });
    await expect(form.locator("#fn-timeout")).toHaveValue("10000");
    await expectEditorText(form, v1);
  });

  await test.step("the form, now made from v3, saves v4", async () => {
    const form = page.getByRole("region", { name: "Edit function" });
    if (!(await form.locator("details").evaluate((d) => (d as HTMLDetailsElement).open))) {
      await form.locator("summary").click();
    }
    await form.locator("#fn-timeout").fill("2000");
    await form.getByRole("button", { name: "Save new version" }).click();
    await expect(form.getByRole("status")).toContainText("version 4 is building");
  });

  await test.step("deleted elsewhere: the page says so and its panels go", async () => {
    const deleted = await call("DELETE", `/api/v1/functions/${name}`, { token });
    expect(deleted.status, deleted.text).toBe(204);
    await expect(page.getByRole("heading", { level: 1, name: "Function not found" })).toBeVisible({ timeout: 60_000 });
    for (const panel of ["Test function", "Edit function", "Delete function"]) {
      await expect(page.getByRole("region", { name: panel })).toHaveCount(0);
    }
  });
});
