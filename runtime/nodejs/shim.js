// vcd-faas runtime shim for Node.js: serves the user's handler on a unix socket.
// The gateway POSTs {event, context} to /invoke and gets {statusCode, headers, body,
// isBase64Encoded, logs, error} back. The handler is loaded before the socket opens, so the
// container is ready to serve as soon as the socket exists. Calls may overlap (the function's
// concurrency): each call's logs are kept in its own async context.
"use strict";
const http = require("http");
const { AsyncLocalStorage } = require("async_hooks");
const fs = require("fs");
const util = require("util");

const SOCKET = process.env.FAAS_SOCKET || "/run/faas/sock";
const MAX_LOG = 64 * 1024;

// The running call's log: { text, dropped, fail }. Output past MAX_LOG is counted, not kept.
const callLog = new AsyncLocalStorage();
function capture(stream) {
  return (...args) => {
    const line = util.format(...args) + "\n";
    const log = callLog.getStore();
    if (log) {
      const room = Math.max(0, MAX_LOG - log.text.length);
      log.text += line.slice(0, room);
      log.dropped += Math.max(0, line.length - room);
    }
    stream.write(line);
  };
}

function logOf(log) {
  if (!log.dropped) return log.text;
  return log.text + `\n[vcd-faas: ${log.dropped} more characters of log not kept; the first ${MAX_LOG} are above]\n`;
}
console.log = console.info = console.debug = capture(process.stdout);
console.error = console.warn = capture(process.stderr);

let handler;
function loadHandler() {
  try {
    handler = require("/app/handler.js");
    if (handler && typeof handler !== "function" && typeof handler.handler === "function") handler = handler.handler;
    if (typeof handler !== "function") throw new Error("handler.js must export a function: module.exports = async (event, context) => result");
  } catch (e) {
    // Serve the load error on every call rather than dying, so callers see why.
    const message = (e && e.stack) || String(e);
    handler = async () => { throw Object.assign(new Error(message), { loadError: true }); };
  }
}

// A function with configuration gets it with each call (secrets never are container
// environment); it is loaded at its first call, once that is set, so module-level reads of
// process.env see it. Others are loaded now, before the socket opens.
const ENV_BY_CALL = process.env.FAAS_ENV_BY_CALL === "1";
let appliedEnv = [];
if (!ENV_BY_CALL) loadHandler();

function applyEnv(env) {
  for (const name of appliedEnv) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
  appliedEnv = Object.keys(env);
}

function toReply(result) {
  if (result && typeof result === "object" && !Buffer.isBuffer(result) && "statusCode" in result) {
    const headers = {};
    for (const [k, v] of Object.entries(result.headers || {})) headers[k.toLowerCase()] = String(v);
    let body = result.body;
    if (body === undefined || body === null) body = "";
    else if (Buffer.isBuffer(body)) return { statusCode: result.statusCode | 0, headers, body: body.toString("base64"), isBase64Encoded: true };
    else if (typeof body !== "string") {
      body = JSON.stringify(body);
      if (!headers["content-type"]) headers["content-type"] = "application/json";
    }
    return { statusCode: Number(result.statusCode) || 200, headers, body, isBase64Encoded: false };
  }
  if (Buffer.isBuffer(result)) return { statusCode: 200, headers: { "content-type": "application/octet-stream" }, body: result.toString("base64"), isBase64Encoded: true };
  if (typeof result === "string") return { statusCode: 200, headers: { "content-type": "text/plain; charset=utf-8" }, body: result, isBase64Encoded: false };
  if (result === undefined) return { statusCode: 204, headers: {}, body: "", isBase64Encoded: false };
  return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(result), isBase64Encoded: false };
}

// The first line of an error, with its type ("TypeError: …"), never its stack.
function describe(e) {
  if (e && e.loadError) return String(e.message).split("\n").find((l) => /Error/.test(l)) || "the handler failed to load";
  if (e instanceof Error) return `${e.name}: ${e.message}`.split("\n")[0];
  return String(e).split("\n")[0];
}

function invoke(envelope) {
  const log = { text: "", dropped: 0, fail: null };
  return callLog.run(log, () => run(envelope, log));
}

async function run(envelope, log) {
  const { event, context } = envelope;
  if (ENV_BY_CALL) {
    applyEnv(envelope.env || {});
    if (!handler) loadHandler();
  }
  if (event.isBase64Encoded) event.body = Buffer.from(event.body, "base64");
  delete event.isBase64Encoded;
  // An exception the handler's own callbacks throw outside its promise fails the call too.
  const escaped = new Promise((_, reject) => { log.fail = reject; });
  try {
    const reply = toReply(await Promise.race([handler(event, context), escaped]));
    return { ...reply, logs: logOf(log), error: null };
  } catch (e) {
    const text = e && e.loadError ? e.message : (e && e.stack) || String(e);
    console.error(text);
    return { statusCode: 500, headers: {}, body: "", isBase64Encoded: false, logs: logOf(log), error: describe(e) };
  } finally {
    log.fail = null;
  }
}

// An uncaught exception (a timer's callback, an event handler) or an unhandled rejection leaves
// the process in an unknown state. The container then retires: it stops listening, so the
// gateway replaces it; it still answers the requests already sent on open connections, each
// with `connection: close` (closing an idle connection could lose a request on its way), and
// ends when the last connection closes. The call the error came from, if it still runs, fails
// with it; other calls never see it.
let active = 0;
let connections = 0;
let retiring = false;
function exitIfRetired() {
  if (retiring && active === 0 && connections === 0) process.exit(1);
}
function retire(e) {
  const log = callLog.getStore();
  if (log && log.fail) log.fail(e);
  else process.stderr.write(`uncaught ${(e && e.stack) || String(e)}\n`);
  if (retiring) return;
  retiring = true;
  process.stderr.write("vcd-faas: this container takes no more calls after an uncaught error\n");
  server.close();
  exitIfRetired();
  setTimeout(() => process.exit(1), 60000).unref();
}
process.on("uncaughtException", retire);
process.on("unhandledRejection", retire);

const server = http.createServer((req, res) => {
  const chunks = [];
  active++;
  req.on("data", (c) => chunks.push(c));
  req.on("end", async () => {
    let reply;
    try {
      reply = await invoke(JSON.parse(Buffer.concat(chunks).toString("utf8")));
    } catch (e) {
      reply = { statusCode: 500, headers: {}, body: "", isBase64Encoded: false, logs: "", error: "runtime: " + e.message };
    }
    const out = JSON.stringify(reply);
    const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(out) };
    if (retiring) headers.connection = "close";
    res.writeHead(200, headers);
    res.end(out, () => {
      active--;
      exitIfRetired();
    });
  });
});
server.on("connection", (socket) => {
  connections++;
  socket.on("close", () => {
    connections--;
    exitIfRetired();
  });
});
// Connections stay open while idle: the gateway reuses them for the next calls.
server.keepAliveTimeout = 0;
try { fs.unlinkSync(SOCKET); } catch (_) {}
server.listen(SOCKET);
