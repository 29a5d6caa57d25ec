// Fixtures and steps shared by the specs: every page fails its test on an uncaught error.
import { test as base, expect, Browser, BrowserContext, Locator, Page } from "@playwright/test";
import { Account, E2eState, readState } from "../lib/api";

type Fixtures = {
  /** Accounts made by the global setup for this run. */
  state: E2eState;
  /** Opens a fresh browser context (another signed-in user); its pages are watched too. */
  newUser: () => Promise<Page>;
  /** Collects uncaught page errors of every page of the test and fails the test on any. */
  pageErrors: string[];
};

function watch(page: Page, errors: string[]): void {
  page.on("pageerror", (e) => errors.push(`${page.url()}: ${e.name}: ${e.message}\n${e.stack ?? ""}`));
}

function watchContext(context: BrowserContext, errors: string[]): void {
  context.pages().forEach((p) => watch(p, errors));
  context.on("page", (p) => watch(p, errors));
}

export const test = base.extend<Fixtures>({
  state: async ({}, use) => {
    await use(readState());
  },
  pageErrors: [
    async ({ context }, use) => {
      const errors: string[] = [];
      watchContext(context, errors);
      await use(errors);
      expect(errors, "uncaught errors in the page").toEqual([]);
    },
    { auto: true },
  ],
  newUser: async ({ browser, pageErrors }, use) => {
    const contexts: BrowserContext[] = [];
    await use(async () => {
      const context = await (browser as Browser).newContext();
      contexts.push(context);
      watchContext(context, pageErrors);
      return context.newPage();
    });
    for (const c of contexts) await c.close();
  },
});

export { expect };

/** Waits until the client has taken over the page (the frame sets body[data-hydrated]). */
export async function hydrated(page: Page): Promise<void> {
  await expect(page.locator('body[data-hydrated="true"]')).toBeAttached();
}

/** Opens `path` and waits for hydration. */
export async function open(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await hydrated(page);
}

/** Signs in through the login form and lands on the function list. */
export async function signIn(page: Page, account: Account): Promise<void> {
  await page.goto("/login");
  await page.locator("#org").fill(account.org);
  await page.locator("#username").fill(account.username);
  await page.locator("#password").fill(account.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await hydrated(page);
  await expect(page.getByRole("heading", { level: 1, name: "Functions" })).toBeVisible();
  await expect(page.locator(".topbar .org")).toHaveText(account.org);
}

/** Signs in as the provider admin of this run and lands on the dashboard. */
export async function signInAsProvider(page: Page): Promise<void> {
  await page.goto("/login");
  await page.locator("#org").fill("provider");
  await page.locator("#username").fill(process.env.VCD_FAAS_ADMIN_USER ?? "admin");
  await page.locator("#password").fill(process.env.VCD_FAAS_ADMIN_PASSWORD ?? "adminpass123");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/$/);
  await hydrated(page);
}

/** The status badge next to the function's name. */
export function statusBadge(page: Page): Locator {
  return page.locator("h1 [data-status]");
}

/**
 * Waits, without reloading, until the status badge shows `want`; a `failed` build that was not
 * wanted ends the wait at once with the build log.
 */
export async function waitForStatus(page: Page, want: string, timeoutMs = 180_000): Promise<string[]> {
  const seen: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await statusBadge(page).getAttribute("data-status", { timeout: 10_000 }).catch(() => null);
    if (status && seen[seen.length - 1] !== status) seen.push(status);
    if (status === want) return seen;
    if (status === "failed" && want !== "failed") {
      const log = await page.locator("[data-testid=build-log]").textContent().catch(() => "");
      throw new Error(`the build failed (statuses seen: ${seen.join(" → ")}):\n${log}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`status did not become ${want} within ${timeoutMs / 1000} s (seen: ${seen.join(" → ") || "nothing"})`);
    }
    await page.waitForTimeout(250);
  }
}

/** Fills the Test Function panel and presses the button; returns the result box. */
export async function testFunction(page: Page, query: string): Promise<Locator> {
  const panel = page.getByRole("region", { name: "Test function" });
  await panel.locator("#t-query").fill(query);
  const button = panel.getByRole("button", { name: "Test Function" });
  await button.click();
  // The button says "Calling…" while the call runs.
  await expect(button).toBeEnabled({ timeout: 60_000 });
  return panel.locator("[data-testid=test-result]");
}

/** Where a form or section shows a file's code (CodeMirror, mounted once the page hydrated). */
function editorHost(scope: Page | Locator): Locator {
  return scope.locator(".code-view.mounted .code-host").first();
}

/** The text of the file open in `scope`'s editor, read from the editor itself. */
export async function editorText(scope: Page | Locator): Promise<string> {
  return editorHost(scope).evaluate((el: any) => el.vcdFaasEditor.getDoc() as string);
}

/** Waits until the open file's text is `want` (or matches it). */
export async function expectEditorText(scope: Page | Locator, want: string | RegExp): Promise<void> {
  const poll = expect.poll(() => editorText(scope), { timeout: 30_000 });
  await (typeof want === "string" ? poll.toBe(want) : poll.toMatch(want));
}

/** Replaces the open file's text through the editor's content element, as a paste would. */
export async function setEditorText(scope: Page | Locator, text: string): Promise<void> {
  await editorHost(scope).locator(".cm-content").fill(text);
  await expectEditorText(scope, text);
}

/** The tab of one file in `scope`. */
export function fileTab(scope: Page | Locator, path: string): Locator {
  return scope.getByRole("tab", { name: path, exact: true });
}
