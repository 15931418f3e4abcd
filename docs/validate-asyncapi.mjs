// Validates an AsyncAPI document with the reference parser (@asyncapi/parser)
// and prints what it found; exits 1 on any error-severity diagnostic.
// Usage: node validate-asyncapi.mjs FILE
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate-asyncapi.mjs FILE");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(file, "utf8"));
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  const level = ["error", "warning", "info", "hint"][d.severity] ?? d.severity;
  console.log(`${level}: ${d.code}: ${d.message} at ${d.path.join(".")}`);
}
if (!document || errors.length > 0) {
  console.error(`${file}: ${errors.length} error(s)`);
  process.exit(1);
}
const ops = document.operations().all().map((o) => `${o.action()} ${o.id()}`);
const messages = document.allMessages().all().map((m) => m.name());
console.log(`VALID asyncapi ${document.version()}: operations [${ops.join(", ")}]`);
console.log(`MESSAGES ${messages.sort().join(",")}`);
