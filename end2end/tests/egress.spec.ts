// Outbound network from the portal: the provider writes a tenant's allowlist on the Tenants
// page (a bad entry is refused at the field), the tenant's function then reaches the allowed
// destination, and its call lists the connection.
import * as http from "node:http";
import { AddressInfo } from "node:net";
import { expect, hydrated, open, setEditorText, signIn, signInAsProvider, test, testFunction, waitForStatus } from "./support";

test("an allowlist set on the Tenants page lets the function connect, and the call shows it", async ({ page, state }) => {
  const server = http.createServer((req, res) => res.end(`hello from ${req.url}`));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  const tenant = state.other;
  try {
    await signInAsProvider(page);
    await open(page, "/tenants");
    const row = page.locator(`tr[data-tenant="${tenant.org}"]`);
    await expect(row.getByTestId("tenant-egress")).toHaveText("none");
    await row.locator("summary").click();
    const allowlist = row.locator("textarea[name='form[egress]']");
    await allowlist.fill(`127.0.0.1\n127.0.0.1:${port}`);
    await row.getByRole("button", { name: "Save" }).click();
    await expect(row.locator('.field-error[data-field="egress"]')).toContainText("has no port");

    await allowlist.fill(`127.0.0.1:${port}`);
    await row.getByRole("button", { name: "Save" }).click();
    await expect(page.locator(`tr[data-tenant="${tenant.org}"]`).getByTestId("tenant-egress")).toHaveText(`127.0.0.1:${port}`);

    await page.context().clearCookies();
    await signIn(page, tenant);
    const name = `out-${Date.now().toString(36)}`;
    await open(page, "/functions/new");
    await page.locator("#fn-name").fill(name);
    await setEditorText(page, [
      "module.exports = async (event) => {",
      "  try { return await (await fetch(`http://127.0.0.1:${event.query.port}/hi`)).text(); }",
      "  catch (e) { return `refused: ${(e.cause && e.cause.message) || e.message}`; }",
      "};",
      "",
    ].join("\n"));
    await page.getByRole("button", { name: "Create function" }).click();
    await waitForStatus(page, "ready");
    await expect(page.getByTestId("egress")).toHaveText("the tenant's allowlist");

    const result = await testFunction(page, `port=${port}`);
    await expect(result.locator("[data-testid=test-body]")).toHaveText("hello from /hi");
    const refused = await testFunction(page, `port=${port + 1}`);
    await expect(refused.locator("[data-testid=test-body]")).toContainText(`egress to 127.0.0.1:${port + 1} refused`);

    // Recent calls: each call's connection, the refused one with its reason.
    await page.reload();
    await hydrated(page);
    const calls = page.getByRole("region", { name: "Recent calls" }).getByTestId("connections");
    await expect(calls.first().locator("summary")).toHaveText("1 connection, 1 refused");
    await calls.first().locator("summary").click();
    await expect(calls.first()).toContainText("not on tenant");
    await calls.nth(1).locator("summary").click();
    await expect(calls.nth(1)).toContainText(`127.0.0.1:${port}`);
    await expect(calls.nth(1)).toContainText("B received");
  } finally {
    server.close();
  }
});
