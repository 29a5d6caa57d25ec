// A tenant admin adds a user: the role reads the same in the picker and the list, and the form
// is empty again afterwards (no password left in it).
import { test, expect, hydrated } from "./support";
import { call, tokenFor } from "../lib/api";

test("a tenant admin adds a user; the role reads alike and the form is emptied", async ({ page, state }) => {
  // The run's tenant gets an admin of its own, made through the API.
  const admin = { org: state.tenant.org, username: `boss${Date.now() % 100000}`, password: "password-123" };
  const provider = await tokenFor({ org: "provider", username: "admin", password: process.env.VCD_FAAS_ADMIN_PASSWORD ?? "" });
  const made = await call("POST", `/api/v1/tenants/${admin.org}/users`, { token: provider, json: { username: admin.username, password: admin.password, role: "admin" } });
  expect(made.status).toBe(201);

  await page.goto("/login");
  await page.locator("#org").fill(admin.org);
  await page.locator("#username").fill(admin.username);
  await page.locator("#password").fill(admin.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await page.goto("/users");
  await hydrated(page);

  const name = `carol${Date.now() % 100000}`;
  await page.locator("#u-name").fill(name);
  await page.locator("#u-pass").fill("password-456");
  await page.locator("#u-role").selectOption({ label: "Tenant admin" });
  await page.getByRole("button", { name: "Add user" }).click();
  const row = page.locator("tr", { hasText: name });
  await expect(row.locator("[data-role]")).toHaveText("Tenant admin");
  await expect(page.locator(`tr:has-text("${admin.username}") [data-role]`)).toHaveText("Tenant admin");
  await expect(page.locator("#u-pass")).toHaveValue("");
  await expect(page.locator("#u-name")).toHaveValue("");
});
