// Deletes every function the run left in its tenants, so their containers and images go too.
// (The REST API has no way to delete a tenant; the empty tenants stay.)
import * as fs from "node:fs";
import { STATE_FILE, call, readState, tokenFor } from "./lib/api";

export default async function globalTeardown(): Promise<void> {
  if (!fs.existsSync(STATE_FILE)) return;
  const state = readState();
  for (const account of [state.tenant, state.other]) {
    try {
      const token = await tokenFor(account);
      const list = await call("GET", "/api/v1/functions", { token });
      for (const f of Array.isArray(list.body) ? list.body : []) {
        await call("DELETE", `/api/v1/functions/${f.name}`, { token });
      }
    } catch (e) {
      console.warn(`cleanup of ${account.org} failed: ${e}`);
    }
  }
}
