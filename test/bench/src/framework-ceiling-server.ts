// What HTTP alone costs on this machine: a server that reads the body and answers 200 without
// verifying or storing anything, with express (as the ingress) or bare node:http. The ingress
// bench drives it like the ingress, to separate the framework's ceiling from the ingress's own work.
import { createServer } from "node:http";
import express from "express";

const port = Number(process.argv[3]);
if (process.argv[2] === "express") {
  const app = express();
  app.post("/webhooks/quickbooks", express.raw({ type: () => true, limit: 4 * 1024 * 1024 }), (_req, res) => {
    res.status(200).json({ status: "stored" });
  });
  app.listen(port, "127.0.0.1");
} else {
  createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json" }).end('{"status":"stored"}'));
  }).listen(port, "127.0.0.1");
}
process.on("SIGTERM", () => process.exit(0));
