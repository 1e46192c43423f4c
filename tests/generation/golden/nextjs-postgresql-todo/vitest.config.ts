// `npm test`: the route handlers against the database the environment names (postgresql).
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// NODE_ENV=test: .env.test.local, .env.test and .env, as Next.js reads them. (@next/env is
// CommonJS without ESM named exports: required, not imported.)
const { loadEnvConfig } = createRequire(import.meta.url)("@next/env") as typeof import("@next/env");
loadEnvConfig(process.cwd());

export default defineConfig({
  resolve: { alias: { "@": fileURLToPath(new URL(".", import.meta.url)) } },
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/migrate.ts"],
    fileParallelism: false,
    testTimeout: 20_000,
  },
});
