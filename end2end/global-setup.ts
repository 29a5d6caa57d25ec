// Waits for the portal, then makes two fresh tenants, each with a developer, through the REST API.
import * as fs from "node:fs";
import { Account, E2eState, STATE_FILE, baseUrl, expectCall, tokenFor, uniqueName } from "./lib/api";

const WAIT_MS = 120_000;

async function waitForPortal(url: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url + "/login", { signal: AbortSignal.timeout(5_000) });
      if (response.status < 500) return;
      last = `HTTP ${response.status}`;
    } catch (e) {
      last = String(e);
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
  throw new Error(`the portal at ${url} did not answer within ${WAIT_MS / 1000} s (${last})`);
}

async function freshTenant(adminToken: string, prefix: string): Promise<Account> {
  const org = uniqueName(prefix);
  await expectCall(201, "POST", "/api/v1/tenants", {
    token: adminToken,
    json: { name: org, display_name: `End-to-end ${org}` },
  });
  const account = { org, username: "dev", password: `pw-${Math.random().toString(36).slice(2)}-e2e` };
  await expectCall(201, "POST", `/api/v1/tenants/${org}/users`, {
    token: adminToken,
    json: { username: account.username, password: account.password, role: "developer" },
  });
  return account;
}

export default async function globalSetup(): Promise<void> {
  const url = baseUrl();
  await waitForPortal(url);
  const adminToken = await tokenFor({
    org: "provider",
    username: process.env.VCD_FAAS_ADMIN_USER ?? "admin",
    password: process.env.VCD_FAAS_ADMIN_PASSWORD ?? "adminpass123",
  });
  const state: E2eState = {
    baseUrl: url,
    tenant: await freshTenant(adminToken, "e2e"),
    other: await freshTenant(adminToken, "e2e-other"),
  };
  fs.writeFileSync(STATE_FILE, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
  console.log(`e2e tenants: ${state.tenant.org} (main), ${state.other.org} (other)`);
  if (!process.env.CLUSTER_URL) {
    console.log("CLUSTER_URL is unset: nodes.spec.ts (a front and a worker node, as scripts/test.sh starts them) is skipped");
  }
}
