// What a developer sees when something is wrong: invalid fields, code that does not compile,
// and another tenant's function.
import { expectCall, tokenFor } from "../lib/api";
import { expect, expectEditorText, fileTab, open, setEditorText, signIn, statusBadge, test, waitForStatus } from "./support";

test("invalid input is reported at its field and the typed code is kept", async ({ page, state }) => {
  await signIn(page, state.tenant);
  await open(page, "/functions/new");

  const typed = [
    "// my own handler, not the template",
    "module.exports = async (event) => ({ kept: true, path: event.path });",
    "",
  ].join("\n");
  await setEditorText(page, typed);
  await page.locator("#fn-name").fill("Bad_Name");
  // The form already hints while typing…
  await expect(page.locator(".field-hint")).toContainText("lowercase");
  await page.getByRole("button", { name: "Create function" }).click();

  // …and the server's answer is shown at the field, on the same page, with the code kept.
  const nameError = page.locator(".field-error[data-field=name]");
  await expect(nameError).toBeVisible();
  await expect(nameError).toContainText("lowercase");
  await expect(page).toHaveURL(/\/functions\/new$/);
  await expectEditorText(page, typed);
  await expect(page.locator("#fn-name")).toHaveValue("Bad_Name");
  await expect(page.getByRole("alert").filter({ hasText: "Please fix the marked field." })).toBeVisible();
  // The focus moved to the field to fix.
  await expect(page.locator("#fn-name")).toBeFocused();
  // Said once, at the field: the typing hint does not repeat the server's message.
  await expect(page.getByText("may contain only lowercase letters")).toHaveCount(1);

  // Fixing the name and asking for too much memory moves the error to the memory field.
  await page.locator("#fn-name").fill("good-name");
  await page.locator("#fn-memory").fill("999999");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page.locator(".field-error[data-field=memory_mb]")).toBeVisible();
  await expect(page.locator(".field-error[data-field=name]")).toHaveCount(0);
  await expect(page.locator("#fn-memory")).toBeFocused();
  await expectEditorText(page, typed);
  await expect(page).toHaveURL(/\/functions\/new$/);

  // Nothing was created.
  const token = await tokenFor(state.tenant);
  const list = await expectCall(200, "GET", "/api/v1/functions", { token });
  expect(list.map((f: { name: string }) => f.name)).not.toContain("good-name");
});

test("a syntax error fails the build with the interpreter's message", async ({ page, state }) => {
  const name = `broken-${Date.now().toString(36)}`;
  await signIn(page, state.tenant);
  await open(page, "/functions/new");
  await page.locator("#fn-name").fill(name);
  await setEditorText(page, ["module.exports = async (event, context) => {", "  return { message: 'oops' ;", "};", ""].join("\n"));
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page).toHaveURL(new RegExp(`/functions/${state.tenant.org}/${name}$`));

  await waitForStatus(page, "failed");
  await expect(statusBadge(page)).toHaveText("failed");
  await expect(page.getByRole("heading", { name: "Build of v1 failed" })).toBeVisible();
  // The interpreter's error and its line come first, above the whole log.
  await expect(page.locator("[data-testid=build-error]")).toContainText(/SyntaxError: .* \(handler\.js, line 2\)/);
  const log = page.locator("[data-testid=build-log]");
  await expect(log).toContainText("SyntaxError");
  await expect(log).toContainText("handler.js");
  // No terminal colour codes leak into the page.
  expect(await log.textContent()).not.toContain("\u001b");
  await expect(page.locator("[data-testid=serving-version]")).toHaveText("none yet");

  // The Edit form opens at the failing file with its line marked and the error above it.
  const edit = page.getByRole("region", { name: "Edit function" });
  await edit.locator("summary").click();
  await expect(fileTab(edit, "handler.js")).toHaveAttribute("aria-selected", "true");
  await expect(edit.locator("[data-testid=build-error-at]")).toContainText("failed at line 2");
  await expect(edit.locator(".cm-line[data-error-line]")).toHaveText("  return { message: 'oops' ;");
});

test("a user of another tenant cannot see the function", async ({ page, state, newUser }) => {
  const { org } = state.tenant;
  const name = `private-${Date.now().toString(36)}`;
  const token = await tokenFor(state.tenant);
  await expectCall(202, "POST", "/api/v1/functions", {
    token,
    json: { name, language: "nodejs", code: "module.exports = async () => ({ secret: 'tenant-one-only' });\n" },
  });

  // The owner sees it…
  await signIn(page, state.tenant);
  await open(page, `/functions/${org}/${name}`);
  await expect(page.getByRole("heading", { level: 1 })).toContainText(name);

  // …the other tenant's developer gets "not found", and nothing of the function.
  const stranger = await newUser();
  await signIn(stranger, state.other);
  await open(stranger, `/functions/${org}/${name}`);
  await expect(stranger.getByRole("heading", { level: 1, name: "Function not found" })).toBeVisible();
  await expect(stranger.locator("h1 [data-status]")).toHaveCount(0);
  await expect(stranger.locator("body")).not.toContainText("tenant-one-only");
  await expect(stranger.locator("[data-testid=route]")).toHaveCount(0);
  await expect(stranger.getByText(`no function "${name}" in org "${org}"`)).toBeVisible();
  await expect(stranger.locator("body")).not.toContainText("error running server function");
  // No panels to test, edit or delete something that is not there.
  for (const panel of ["Test function", "Edit function", "Delete function"]) {
    await expect(stranger.getByRole("region", { name: panel })).toHaveCount(0);
  }

  // Nor can it call the route with its own token: the same 404 as for a missing function.
  const otherToken = await tokenFor(state.other);
  const answer = await fetch(`${state.baseUrl}/api/org/${org}/${name}`, { headers: { authorization: `Bearer ${otherToken}` } });
  expect(answer.status).toBe(404);
});
