// The provider's dashboard: tenants, and whether the services the platform depends on answer.
import { test, expect, signInAsProvider } from "./support";

test("the provider dashboard shows the tenants and which services answer", async ({ page, state }) => {
  await signInAsProvider(page);
  await expect(page.getByRole("heading", { level: 1, name: "Provider dashboard" })).toBeVisible();

  // The run's tenants are listed with their figures.
  await expect(page.locator(`tr[data-tenant="${state.tenant.org}"]`)).toBeVisible();

  const links = page.locator("table.service-links");
  await expect(links.locator('tr[data-link="Docker engine"] .badge')).toHaveText("up");
  await expect(links.locator('tr[data-link^="Database"] .badge')).toHaveText("up");
  // This run has no AMQP_URL: the async queue's broker is off, and the page says why.
  const broker = links.locator('tr[data-link="RabbitMQ: async calls"]');
  await expect(broker.locator(".badge")).toHaveText("off");
  await expect(broker).toContainText("AMQP_URL is not set");
});
