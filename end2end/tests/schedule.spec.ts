// A schedule set in the portal: a pattern the platform cannot read is refused at its field with
// what is kept typed; a good one shows on the function page with its zone and next run, and the
// route still answers.
import { expect, open, setEditorText, signIn, test, testFunction, waitForStatus } from "./support";

test("a schedule is checked at its fields and shown with its next run", async ({ page, state }) => {
  const name = `tick-${Date.now().toString(36)}`;
  await signIn(page, state.tenant);
  await open(page, "/functions/new");
  await page.locator("#fn-name").fill(name);
  await setEditorText(page, "module.exports = async (event) => ({ scheduled: event.body || null });\n");
  await page.locator("#fn-trigger").selectOption("schedule");
  await page.locator("#fn-cron").fill("0 9 * * * *");
  await page.locator("#fn-timezone").fill("Europe/Sofia");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page.locator('.field-error[data-field="trigger.cron"]')).toContainText("has 6 fields");
  await expect(page).toHaveURL(/\/functions\/new$/);
  await expect(page.locator("#fn-timezone")).toHaveValue("Europe/Sofia");

  await page.locator("#fn-timezone").fill("Mars/Olympus");
  await page.locator("#fn-cron").fill("0 9 * * 1-5");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page.locator('.field-error[data-field="trigger.timezone"]')).toBeVisible();

  await page.locator("#fn-timezone").fill("Europe/Sofia");
  await page.getByRole("button", { name: "Create function" }).click();
  await expect(page).toHaveURL(new RegExp(`/functions/${state.tenant.org}/${name}$`));
  await waitForStatus(page, "ready");
  const schedule = page.getByRole("region", { name: "Schedule" });
  await expect(schedule.getByTestId("schedule-cron")).toHaveText("0 9 * * 1-5");
  await expect(schedule.getByTestId("schedule-timezone")).toHaveText("Europe/Sofia");
  // Next run: 09:00 local time on a weekday, written with Sofia's offset.
  await expect(schedule.getByTestId("next-run")).toContainText(/T09:00:00\+0[23]:00/);
  await expect(schedule.getByTestId("no-scheduled-runs")).toBeVisible();

  const result = await testFunction(page, "");
  await expect(result.locator("[data-testid=test-status]")).toHaveText("200");
});
