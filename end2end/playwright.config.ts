import { defineConfig } from "@playwright/test";

/** Where the portal runs; the suite never starts it (see global-setup.ts). */
export const BASE_URL = (process.env.BASE_URL ?? "http://127.0.0.1:3900").replace(/\/+$/, "");

export default defineConfig({
  testDir: "./tests",
  globalSetup: "./global-setup.ts",
  globalTeardown: "./global-teardown.ts",
  // The tests share one portal and one Docker engine: run them one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: "list",
  outputDir: "test-results",
  // A first build of a base image may take ~90 s; the main flow builds two versions.
  timeout: 8 * 60_000,
  expect: { timeout: 30_000 },
  use: {
    baseURL: BASE_URL,
    actionTimeout: 30_000,
    navigationTimeout: 60_000,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    viewport: { width: 1366, height: 900 },
    browserName: "chromium",
    launchOptions: {
      // Debian's Chromium; never a browser downloaded by Playwright.
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-quic",
      ],
    },
  },
});
