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

// Outbound network. The container has none: every TCP connection (net, http, https, fetch)
// is asked of the platform's gate in the socket folder, which checks the tenant's allowlist,
// resolves the name itself and connects; the answer is a one-use unix socket that is the
// connection from then on (TLS stays end to end), or the reason it was refused, raised here.
// This only routes; what is allowed is decided outside the container.
const net = require("net");
const tls = require("tls");
const path = require("path");
const EGRESS = path.join(path.dirname(SOCKET), "egress");
const plainConnect = net.Socket.prototype.connect;
const plainTlsConnect = tls.connect;

function askGate(host, port, requestId, done) {
  const gate = plainConnect.call(new net.Socket(), { path: EGRESS });
  let answer = "";
  gate.setEncoding("utf8");
  gate.on("data", (d) => { answer += d; });
  gate.on("error", (e) => done(new Error(`egress to ${host}:${port}: the platform's gate cannot be reached (${e.code || e.message})`)));
  gate.on("end", () => {
    const line = answer.split("\n")[0];
    if (line.startsWith("OK ")) return done(null, path.join(path.dirname(EGRESS), path.basename(line.slice(3).trim())));
    const reason = line.startsWith("ERR ") ? line.slice(4) : `egress to ${host}:${port} refused`;
    done(Object.assign(new Error(reason), { code: "ECONNREFUSED", host, port }));
  });
  gate.write(`CONNECT ${host} ${port} ${requestId || "-"}\n`);
}

// net.connect's forms: (options[, cb]), (port[, host][, cb]), (path[, cb]), or the array
// Node passes on internally.
function connectArgs(args) {
  if (Array.isArray(args[0])) return connectArgs(args[0]);
  const cb = args.find((a) => typeof a === "function");
  if (args[0] !== null && typeof args[0] === "object") return [args[0], cb];
  if (typeof args[0] === "string" && Number.isNaN(Number(args[0]))) return [{ path: args[0] }, cb];
  return [{ port: args[0], host: typeof args[1] === "string" ? args[1] : undefined }, cb];
}

net.Socket.prototype.connect = function (...args) {
  const [options, cb] = connectArgs(args);
  if (options.path) return plainConnect.apply(this, args);
  const host = options.host || "localhost";
  const port = Number(options.port);
  const log = callLog.getStore();
  // Writes wait, as for any connecting socket, until the connection is made.
  this.connecting = true;
  if (cb) this.once("connect", cb);
  askGate(host, port, log && log.requestId, (error, ticket) => {
    if (error) {
      this.connecting = false;
      return this.destroy(error);
    }
    plainConnect.call(this, { path: ticket });
  });
  return this;
};

// A TLS client's own socket would be made for TCP; it gets one through the gate instead.
tls.connect = function (...args) {
  const [options, cb] = connectArgs(args);
  if (options.socket || options.path) return plainTlsConnect.apply(this, args);
  const host = options.host || "localhost";
  const socket = new net.Socket();
  socket.connect({ host, port: options.port || 443 });
  const servername = options.servername || (net.isIP(host) ? undefined : host);
  return plainTlsConnect({ ...options, socket, servername }, cb);
};

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
  const log = { text: "", dropped: 0, fail: null, requestId: envelope.context && envelope.context.requestId };
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
