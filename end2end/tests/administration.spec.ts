// Running the platform from the portal: a token with a scope and an expiry, a user disabled,
// promoted and deleted by the provider, a tenant deleted after its name is typed, and the
// audit log that tells who did it. Laptop, and the users list on a phone.
import * as path from "node:path";
import { call, expectCall, tokenFor, uniqueName } from "../lib/api";
import { expect, hydrated, open, signIn, signInAsProvider, test } from "./support";

const SCREENSHOTS = path.join(__dirname, "..", "test-results");
const providerAccount = () => ({ org: "provider", username: "admin", password: process.env.VCD_FAAS_ADMIN_PASSWORD ?? "" });

test("a developer makes a read-only token that expires in a week", async ({ page, state }) => {
  await signIn(page, state.tenant);
  await open(page, "/tokens");
  const name = uniqueName("dash");
  await page.locator("#tok-name").fill(name);
  await page.locator("#tok-days").fill("7");
  await page.locator("#tok-scope").selectOption("read");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.getByTestId("new-token").textContent();
  expect(secret).toMatch(/^vfs_[0-9a-f]{48}$/);
  const row = page.locator("tr", { hasText: name });
  await expect(row.getByTestId("token-scope")).toHaveText("read");
  const expires = Date.parse((await row.getByTestId("token-expires").textContent())!.replace(" UTC", "Z").replace(" ", "T"));
  expect(Math.round((expires - Date.now()) / 86_400_000)).toBe(7);
  // The token does what its scope says.
  expect((await call("GET", "/api/v1/functions", { token: secret! })).status).toBe(200);
  const refused = await call("POST", "/api/v1/functions", { token: secret!, json: { name: "nope", language: "nodejs" } });
  expect(refused.status).toBe(403);
  expect(refused.body.error).toContain('scope is "read"');

  // A bad expiry is told at its field, and nothing is made.
  await page.locator("#tok-name").fill(uniqueName("long"));
  await page.locator("#tok-days").fill("100000");
  await page.getByRole("button", { name: "Create token" }).click();
  await expect(page.locator(".field-error", { hasText: "expires_in_days must be between 1 and" })).toBeVisible();
});

test("the provider disables, promotes and deletes a user of a tenant", async ({ page, state, newUser }) => {
  const provider = await tokenFor(providerAccount());
  const user = { org: state.tenant.org, username: uniqueName("erin").replace(/-/g, ""), password: "password-789" };
  await expectCall(201, "POST", `/api/v1/tenants/${user.org}/users`, { token: provider, json: { username: user.username, password: user.password, role: "developer" } });

  await signInAsProvider(page);
  await open(page, "/users");
  const row = page.locator(`tr[data-user="${user.org}/${user.username}"]`);
  const manage = async () => {
    if (!(await row.locator("details.row-actions").evaluate((d: HTMLDetailsElement) => d.open))) {
      await row.locator("details.row-actions summary").click();
    }
  };

  await test.step("disabled: the user cannot sign in, and is told why", async () => {
    await manage();
    await row.getByRole("button", { name: "Disable" }).click();
    await expect(row.getByTestId("user-state")).toHaveText("disabled");
    const other = await newUser();
    await other.goto("/login");
    await other.locator("#org").fill(user.org);
    await other.locator("#username").fill(user.username);
    await other.locator("#password").fill(user.password);
    await other.getByRole("button", { name: "Sign in" }).click();
    await expect(other.getByText("this account is disabled")).toBeVisible();
    await manage();
    await row.getByRole("button", { name: "Enable" }).click();
    await expect(row.getByTestId("user-state")).toHaveText("active");
  });

  await test.step("promoted: the role reads Tenant admin", async () => {
    await manage();
    await row.getByRole("button", { name: "Make tenant admin" }).click();
    await expect(row.locator("[data-role]")).toHaveText("Tenant admin");
  });

  await test.step("a phone shows the list, scrolled sideways, with its actions", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(row).toBeVisible();
    await page.screenshot({ path: path.join(SCREENSHOTS, "users-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await test.step("deleted: gone from the list, its sign-in refused", async () => {
    await manage();
    await row.getByTestId("delete-user").click();
    await expect(page.getByText(`user ${user.username} of ${user.org} deleted`)).toBeVisible();
    await expect(row).toHaveCount(0);
    const login = await call("POST", "/api/v1/tokens", { json: { org: user.org, username: user.username, password: user.password } });
    expect(login.status).toBe(401);
  });

  await test.step("the audit log tells who did it", async () => {
    await open(page, "/audit");
    await page.locator("#audit-org").selectOption(user.org);
    const entries = page.locator("table.audit tbody tr", { hasText: user.username });
    await expect(entries.locator("td:nth-child(4)")).toHaveText(["user.delete", "user.update", "user.update", "user.update", "user.create"]);
    await expect(entries.first().locator("td:nth-child(2)")).toHaveText("provider/admin");
    await expect(entries.nth(1)).toContainText("role developer → admin");
  });
});

test("the provider deletes a tenant once its name is typed, and nothing of it is left", async ({ page }) => {
  const provider = await tokenFor(providerAccount());
  const org = uniqueName("gone");
  await expectCall(201, "POST", "/api/v1/tenants", { token: provider, json: { name: org } });
  await expectCall(201, "POST", `/api/v1/tenants/${org}/users`, { token: provider, json: { username: "dev", password: "password-123", role: "developer" } });
  const dev = await tokenFor({ org, username: "dev", password: "password-123" });
  await expectCall(202, "POST", "/api/v1/functions", { token: dev, json: { name: "doomed", language: "nodejs", code: "module.exports = async () => 'x';" } });
  await expect.poll(async () => (await call("GET", "/api/v1/functions/doomed", { token: dev })).body?.status, { timeout: 180_000 }).toBe("ready");
  expect((await call("GET", `/api/org/${org}/doomed`, { token: dev })).status).toBe(200);

  await signInAsProvider(page);
  await open(page, "/tenants");
  const row = page.locator(`tr[data-tenant="${org}"]`);
  await row.locator("summary").click();
  const confirm = row.locator(`#${org}-confirm-delete`);
  await confirm.fill("something else");
  await row.getByRole("button", { name: "Delete tenant" }).click();
  await expect(row.locator(".field-error")).toHaveText(`type the tenant's name "${org}" to confirm`);
  await confirm.fill(org);
  await row.getByRole("button", { name: "Delete tenant" }).click();
  await expect(page.getByText(`tenant ${org} deleted with its 1 function(s) and 1 user(s)`)).toBeVisible();
  await expect(page.locator(`tr[data-tenant="${org}"]`)).toHaveCount(0);
  expect((await call("GET", `/api/org/${org}/doomed`)).status).toBe(404);
  expect((await call("GET", "/api/v1/functions", { token: dev })).status).toBe(401);
});
