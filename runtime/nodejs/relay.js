// vcd-faas dependency install, inside its network-less container: carries the package
// manager's proxy connections (127.0.0.1:3128) to the platform's relay socket, which lets
// through only the package sources. Runs the install command once it listens; exits with it.
"use strict";
const net = require("net");
const { spawn } = require("child_process");

const server = net.createServer((client) => {
  const relay = net.connect("/run/relay/sock");
  client.pipe(relay).pipe(client);
  client.on("error", () => relay.destroy());
  relay.on("error", () => client.destroy());
});
server.listen(3128, "127.0.0.1", () => {
  const install = spawn("sh", ["-c", process.argv[process.argv.length - 1]], { stdio: "inherit" });
  install.on("exit", (code) => process.exit(code === null ? 1 : code));
});
