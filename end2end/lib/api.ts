// Small REST client for the portal's /api/v1, shared by the global setup, teardown and tests.
import * as fs from "node:fs";
import * as path from "node:path";

export const STATE_FILE = path.join(__dirname, "..", ".e2e-state.json");

export interface Account {
  org: string;
  username: string;
  password: string;
}

/** What the global setup made for this run. */
export interface E2eState {
  baseUrl: string;
  /** A fresh tenant with a developer: the tests' main account. */
  tenant: Account;
  /** A second fresh tenant with a developer, to check isolation. */
  other: Account;
}

export function baseUrl(): string {
  return (process.env.BASE_URL ?? "http://127.0.0.1:3900").replace(/\/+$/, "");
}

export function readState(): E2eState {
  if (!fs.existsSync(STATE_FILE)) {
    throw new Error(`${STATE_FILE} is missing: run the suite with \`npx playwright test\` so global-setup.ts makes it`);
  }
  return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as E2eState;
}

export interface ApiAnswer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

export interface CallOptions {
  token?: string;
  json?: unknown;
  /** Another portal than BASE_URL's (the cluster front of nodes.spec.ts, say). */
  base?: string;
}

/** One call; the body is sent as JSON; the answer's body is parsed as JSON when it is JSON. */
export async function call(method: string, urlPath: string, opts: CallOptions = {}): Promise<ApiAnswer> {
  const headers: Record<string, string> = {};
  if (opts.token) headers["authorization"] = `Bearer ${opts.token}`;
  if (opts.json !== undefined) headers["content-type"] = "application/json";
  const response = await fetch((opts.base ?? baseUrl()).replace(/\/+$/, "") + urlPath, {
    method,
    headers,
    body: opts.json === undefined ? undefined : JSON.stringify(opts.json),
  });
  const text = await response.text();
  let body: any = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: response.status, body, text, headers: response.headers };
}

/** Like `call`, but throws unless the status is the expected one. */
export async function expectCall(
  expected: number,
  method: string,
  urlPath: string,
  opts: CallOptions = {},
): Promise<any> {
  const answer = await call(method, urlPath, opts);
  if (answer.status !== expected) {
    throw new Error(`${method} ${urlPath}: expected ${expected}, got ${answer.status}: ${answer.text}`);
  }
  return answer.body;
}

export async function tokenFor(account: Account, base?: string): Promise<string> {
  const body = await expectCall(201, "POST", "/api/v1/tokens", {
    base,
    json: { org: account.org, username: account.username, password: account.password, name: "e2e" },
  });
  return body.token as string;
}

/** A name of lowercase letters, digits and '-', starting with a letter. */
export function uniqueName(prefix: string): string {
  const random = Math.random().toString(36).slice(2, 8).replace(/[^a-z0-9]/g, "");
  return `${prefix}-${Date.now().toString(36).slice(-4)}${random}`;
}
