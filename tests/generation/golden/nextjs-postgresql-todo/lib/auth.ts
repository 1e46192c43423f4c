// Accounts and bearer tokens: scrypt password hashes (node:crypto) and HS256 JWTs (jose).
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";
import { SignJWT, jwtVerify } from "jose";
import { z } from "zod";

import { store, type Row, type Table } from "@/lib/db";
import { unauthorized } from "@/lib/errors";

export const Credentials = z
  .object({ email: z.string().email().max(320), password: z.string().min(8).max(128) })
  .strict();

const accountsTable: Table = {
  name: "auth_users",
  search: [],
  booleans: [],
  timestamps: false,
  softDelete: false,
  owned: false,
  unique: ["email"],
};
export const accounts = store(accountsTable);

const TTL_SECONDS = 900;
const shared = globalThis as typeof globalThis & { devoraJwtSecret?: Uint8Array };

/** `JWT_SECRET`; `next start` refuses to run without it (next.config.mjs). Elsewhere (`next dev`,
 * tests) a random secret that lasts as long as the process. */
function secret(): Uint8Array {
  const configured = process.env.JWT_SECRET;
  if (configured) return new TextEncoder().encode(configured);
  if (process.env.NODE_ENV === "production") throw new Error("JWT_SECRET is not set");
  if (!shared.devoraJwtSecret) {
    console.warn("JWT_SECRET is not set: tokens are signed with a random secret for this process only");
    shared.devoraJwtSecret = randomBytes(32);
  }
  return shared.devoraJwtSecret;
}

// scrypt runs on libuv's thread pool: hashing never blocks the event loop.
function derive(password: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 64, (error, key) => (error ? reject(error) : resolve(key)));
  });
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return Buffer.concat([salt, await derive(password, salt)]).toString("base64");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const raw = Buffer.from(stored, "base64");
  return timingSafeEqual(await derive(password, raw.subarray(0, 16)), raw.subarray(16));
}

let dummyHash: Promise<string> | undefined;

/** A hash to check against when the email is unknown: it costs as much as a wrong password. */
export function dummyPasswordHash(): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(16).toString("hex"));
  return dummyHash;
}

export async function issueToken(userId: string): Promise<{ access_token: string; token_type: string; expires_in: number }> {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(`${TTL_SECONDS}s`)
    .sign(secret());
  return { access_token: token, token_type: "bearer", expires_in: TTL_SECONDS };
}

/** The signed-in account's id; 401 without a valid, unexpired token naming a live account. */
export async function requireUser(request: Request): Promise<string> {
  const [scheme, token] = (request.headers.get("authorization") ?? "").split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) throw unauthorized("Send Authorization: Bearer <token>");
  let subject: string | undefined;
  try {
    subject = (await jwtVerify(token, secret(), { algorithms: ["HS256"] })).payload.sub;
  } catch {
    throw unauthorized("The token is invalid or expired");
  }
  const account: Row | null = subject ? await accounts.get(subject) : null;
  if (!account) throw unauthorized("The token names no account");
  return account.id;
}
