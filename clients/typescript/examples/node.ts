/** `node dist/examples/node.js <api origin>`: the quickstart, its result as the last line. */
import { quickstart } from "./quickstart.js";

declare const process: { argv: string[] }; // the one Node global used: no @types/node

if (globalThis.crypto === undefined) {
  // Node 18 (Debian bookworm's) has Web Crypto only as a module.
  const module = "node:crypto";
  Object.assign(globalThis, { crypto: (await import(module)).webcrypto });
}

const baseUrl = process.argv[2] ?? "http://127.0.0.1:8000";
const result = await quickstart(baseUrl, (line) => console.log(line));
console.log(JSON.stringify(result));
