// Signing in: a wrong password is told as such — on the page and as HTTP 401, not as a server
// failure — and the right one then gets in.
import { test, expect, hydrated, signIn } from "./support";

test("a wrong password is refused with 401 and the message, then the right one signs in", async ({ page, state }) => {
  await page.goto("/login");
  await hydrated(page);
  await page.locator("#org").fill(state.tenant.org);
  await page.locator("#username").fill(state.tenant.username);
  await page.locator("#password").fill("not-the-password");
  const answer = page.waitForResponse((r) => r.request().method() === "POST" && r.url().includes("/api/login"));
  await page.getByRole("button", { name: "Sign in" }).click();
  expect((await answer).status()).toBe(401);
  await expect(page.getByText("wrong org, username or password")).toBeVisible();
  await expect(page).toHaveURL(/\/login/);

  await signIn(page, state.tenant);
});
