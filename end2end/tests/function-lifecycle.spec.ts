// The product's acceptance flow: a developer writes a function in the portal, watches it build,
// tests it, ships a second version and deletes it.
import * as path from "node:path";
import { call, tokenFor } from "../lib/api";
import { editorText, expect, expectEditorText, hydrated, setEditorText, signIn, statusBadge, test, testFunction, waitForStatus } from "./support";

const SCREENSHOTS = path.join(__dirname, "..", "test-results");

test("create, build, test, update and delete a Node.js function", async ({ page, state }) => {
  const { org } = state.tenant;
  const name = `hello-${Date.now().toString(36)}`;

  await test.step("sign in as the tenant's developer", async () => {
    await signIn(page, state.tenant);
  });

  await test.step("the route preview follows the typed name", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "New function" }).click();
    await expect(page).toHaveURL(/\/functions\/new$/);
    await hydrated(page);
    const preview = page.locator("[data-testid=route-preview]");
    await expect(preview).toHaveText(`/api/org/${org}/`);
    const field = page.locator("#fn-name");
    await field.click();
    await field.pressSequentially(name.slice(0, 5));
    await expect(preview).toHaveText(`/api/org/${org}/${name.slice(0, 5)}`);
    await field.pressSequentially(name.slice(5));
    await expect(preview).toHaveText(`/api/org/${org}/${name}`);
  });

  await test.step("Node.js with the hello template is pre-selected", async () => {
    await expect(page.locator("#fn-language")).toHaveValue("nodejs");
    await expectEditorText(page, /module\.exports = async \(event, context\) =>/);
    await expectEditorText(page, /Hello, \$\{name\}!/);
  });

  await test.step("create: the page shows the build progressing to ready without a reload", async () => {
    await page.getByRole("button", { name: "Create function" }).click();
    await expect(page).toHaveURL(new RegExp(`/functions/${org}/${name}$`));
    await expect(page.getByRole("heading", { level: 1 })).toContainText(name);
    // A marker in the window survives only as long as the page is not reloaded.
    await page.evaluate(() => ((window as any).__e2eNoReload = true));
    await expect(statusBadge(page)).toHaveAttribute("data-status", /^(initializing|building)$/);
    const url = `${new URL(page.url()).origin}/api/org/${org}/${name}`;
    await expect(page.locator("[data-testid=route]")).toHaveText(url);
    await expect(page.getByTestId("curl")).toHaveText(`curl -H 'Authorization: Bearer <token>' ${url}`);
    const seen = await waitForStatus(page, "ready");
    expect(seen[0], `statuses seen: ${seen.join(" → ")}`).toMatch(/^(initializing|building)$/);
    expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);
    await expect(page.locator("[data-testid=serving-version]")).toHaveText("v1");
  });

  await test.step("Test Function calls the function in its container", async () => {
    const result = await testFunction(page, "name=Ada");
    await expect(result.locator("[data-testid=test-status]")).toHaveText("200");
    await expect(result.locator("[data-testid=test-body]")).toContainText("Hello, Ada!");
    await expect(result.locator("[data-testid=test-logs]")).toContainText("greeting Ada");
  });

  await test.step("screenshots of the function page (laptop and phone)", async () => {
    // The recent calls table refreshes by polling; wait for the call to show up.
    await expect(page.getByRole("region", { name: "Recent calls" }).locator("tbody tr")).toHaveCount(1);
    await page.screenshot({ path: path.join(SCREENSHOTS, "function-page-laptop.png"), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: path.join(SCREENSHOTS, "function-page-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  await test.step("edit: save a new version; v1 serves until v2 is ready", async () => {
    const edit = page.getByRole("region", { name: "Edit function" });
    await edit.locator("summary").click();
    await expectEditorText(edit, /Hello, \$\{name\}!/);
    const current = await editorText(edit);
    await setEditorText(edit, current.replace("Hello, ${name}!", "Hi, ${name}!"));
    await edit.getByRole("button", { name: "Save new version" }).click();
    await expect(edit.getByRole("status")).toContainText("version 2 is building");
    await expect(page.locator("[data-testid=serving-version]")).toHaveText("v2", { timeout: 180_000 });
    await expect(statusBadge(page)).toHaveAttribute("data-status", "ready");
    expect(await page.evaluate(() => (window as any).__e2eNoReload)).toBe(true);
  });

  await test.step("Test Function answers with the new version", async () => {
    const result = await testFunction(page, "name=Ada");
    await expect(result.locator("[data-testid=test-body]")).toContainText("Hi, Ada!");
    await expect(result.locator("[data-testid=test-status]")).toHaveText("200");
    await expect(result.locator("[data-testid=test-body]")).not.toContainText("Hello, Ada!");
    await expect(result.locator("[data-testid=test-logs]")).toContainText("greeting Ada");
  });

  await test.step("delete: back on the list, the function and its route are gone", async () => {
    const token = await tokenFor(state.tenant);
    const before = await call("GET", `/api/org/${org}/${name}?name=Ada`, { token });
    expect(before.status, before.text).toBe(200);
    expect(before.text).toContain("Hi, Ada!");

    const danger = page.getByRole("region", { name: "Delete function" });
    await danger.locator("summary").click();
    await danger.locator("#confirm").fill(name);
    await danger.getByRole("button", { name: "Delete permanently" }).click();
    await expect(page).toHaveURL(/\/$/);
    await expect(page.getByRole("heading", { level: 1, name: "Functions" })).toBeVisible();
    await expect(page.locator(`tr[data-function="${name}"]`)).toHaveCount(0);
    await expect(page.getByRole("link", { name, exact: true })).toHaveCount(0);

    const after = await call("GET", `/api/org/${org}/${name}?name=Ada`, { token });
    expect(after.status, after.text).toBe(404);
    // The API may show it as "deleting" while its containers and images go; then it is gone.
    await expect
      .poll(async () => (await call("GET", `/api/v1/functions/${name}`, { token })).status, { timeout: 60_000 })
      .toBe(404);
  });
});
