// Environment variables and secrets set in the portal's form: the function reads both, the
// page shows the variables and only the secrets' names, and no page ever holds a secret's value.
import { expect, open, setEditorText, signIn, test, testFunction, waitForStatus } from "./support";

test("a variable and a secret reach the function; the secret's value never reaches a page", async ({ page, state }) => {
  const name = `env-${Date.now().toString(36)}`;
  const secret = `s3cret-${Date.now()}`;
  await signIn(page, state.tenant);
  await open(page, "/functions/new");
  await page.locator("#fn-name").fill(name);
  await setEditorText(page, [
    "module.exports = async () => ({",
    "  greeting: process.env.GREETING,",
    "  hasToken: Boolean(process.env.API_TOKEN),",
    "  tokenLength: (process.env.API_TOKEN || \"\").length,",
    "});",
    "",
  ].join("\n"));

  // A lowercase name first: refused at its own row, with what was typed kept.
  await page.getByRole("button", { name: "Add variable" }).click();
  const varRow = page.getByTestId("env-row").first();
  await varRow.getByLabel("Variable name").fill("greeting");
  await varRow.getByLabel("Variable value").fill("hello");
  await page.getByRole("button", { name: "Add secret" }).click();
  const secretRow = page.getByTestId("secret-row").first();
  await secretRow.getByLabel("Secret name").fill("API_TOKEN");
  await secretRow.getByLabel("Secret value").fill(secret);
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(varRow.locator('.field-error[data-field="env/greeting"]')).toContainText("capital letters");
  await expect(page).toHaveURL(/\/functions\/new$/);
  await expect(varRow.getByLabel("Variable value")).toHaveValue("hello");
  await expect(secretRow.getByLabel("Secret value")).toHaveValue(secret);
  expect(await page.content()).not.toContain(secret);

  await varRow.getByLabel("Variable name").fill("GREETING");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page).toHaveURL(new RegExp(`/functions/${state.tenant.org}/${name}$`));
  await waitForStatus(page, "ready");

  const result = await testFunction(page, "");
  await expect(result.locator("[data-testid=test-status]")).toHaveText("200");
  const body = result.locator("[data-testid=test-body]");
  await expect(body).toContainText('"greeting": "hello"');
  await expect(body).toContainText('"hasToken": true');
  await expect(body).toContainText(`"tokenLength": ${secret.length}`);

  // The page shows the variable and the secret's name only.
  await page.reload();
  await expect(page.getByTestId("env-var")).toHaveText("GREETING = hello");
  await expect(page.getByTestId("env-secret")).toContainText("API_TOKEN");
  await expect(page.getByTestId("env-secret")).toContainText("secret, value hidden");
  expect(await page.content()).not.toContain(secret);

  // The edit form lists the secret by name with a masked, empty value field.
  const edit = page.getByRole("region", { name: "Edit function" });
  await edit.locator("summary").click();
  const stored = edit.getByTestId("secret-row");
  await expect(stored.getByTestId("secret-name")).toHaveText("API_TOKEN");
  await expect(stored.getByLabel("Secret value")).toHaveValue("");
  await expect(stored.getByLabel("Secret value")).toHaveAttribute("placeholder", /••••/);
  await expect(edit.getByTestId("env-row").getByLabel("Variable value")).toHaveValue("hello");
  expect(await page.content()).not.toContain(secret);

  // Removing the secret and changing the variable is a new version the function sees.
  await stored.getByRole("button", { name: "Remove" }).click();
  await edit.getByTestId("env-row").getByLabel("Variable value").fill("hi");
  await edit.getByRole("button", { name: "Save new version" }).click();
  await expect(edit.getByText(/version 2 is building/)).toBeVisible();
  await expect(edit.getByTestId("secret-row")).toHaveCount(0);
  await expect(page.getByTestId("env-var")).toHaveText("GREETING = hi", { timeout: 30_000 });
  await expect(page.getByTestId("env-secret")).toHaveCount(0);
  await waitForStatus(page, "ready");
  await expect(page.locator("[data-testid=serving-version]")).toHaveText("v2", { timeout: 30_000 });
  const after = await testFunction(page, "");
  await expect(after.locator("[data-testid=test-body]")).toContainText('"greeting": "hi"');
  await expect(after.locator("[data-testid=test-body]")).toContainText('"hasToken": false');
});
