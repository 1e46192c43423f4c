// `npm run migrate`: applies migrations/NNN_<what>.sql in order, each once and in its own
// transaction, and records it in "schema_migrations". Plain SQL files and no dependency
// beyond the database driver: what runs is what a reviewer reads.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import nextEnv from "@next/env";
import pg from "pg";

const DIRECTORY = fileURLToPath(new URL("../migrations/", import.meta.url));
const FILE = /^[0-9]{3}_[a-z0-9_]+\.sql$/;

function migrations() {
  return readdirSync(DIRECTORY).filter((name) => FILE.test(name)).sort();
}

// Any number: it keeps two runners (two deploys starting at once) from racing.
const LOCK = 72_027;

/** Applies what is pending; returns the names of the files it applied. */
export async function migrate() {
  const client = new pg.Client({
    connectionString: process.env.DATABASE_URL ?? "postgresql://localhost:5432/todo",
  });
  await client.connect();
  const applied = [];
  try {
    await client.query("SELECT pg_advisory_lock($1)", [LOCK]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS "schema_migrations" ("version" TEXT PRIMARY KEY, "applied_at" TIMESTAMPTZ NOT NULL DEFAULT now())`,
    );
    const done = new Set((await client.query(`SELECT "version" FROM "schema_migrations"`)).rows.map((row) => row.version));
    for (const name of migrations().filter((file) => !done.has(file))) {
      await client.query("BEGIN");
      try {
        await client.query(readFileSync(join(DIRECTORY, name), "utf8"));
        await client.query(`INSERT INTO "schema_migrations" ("version") VALUES ($1)`, [name]);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${name} failed: ${error.message}`, { cause: error });
      }
      applied.push(name);
    }
  } finally {
    await client.end(); // the advisory lock ends with the session
  }
  return applied;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  nextEnv.loadEnvConfig(process.cwd());
  const applied = await migrate();
  console.log(applied.length ? `applied ${applied.join(", ")}` : "the database is up to date");
}
