// Accounts and bearer tokens: scrypt password hashes (node:crypto) and HS256 JWTs (jose).
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto";
import { SignJWT, jwtVerify } from "jose";
import { z } from "zod";

import { unauthorized } from "@/lib/errors";

export const Credentials = z
  .object({ email: z.string().email().max(320), password: z.string().min(8).max(128) })
  .strict();

const TTL_SECONDS = 900;

function secret(): Uint8Array {
  return new TextEncoder().encode(process.env.JWT_SECRET ?? "development-only-secret-change-me-0123456789");
}

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return Buffer.concat([salt, scryptSync(password, salt, 64)]).toString("base64");
}

export function verifyPassword(password: string, stored: string): boolean {
  const raw = Buffer.from(stored, "base64");
  return timingSafeEqual(scryptSync(password, raw.subarray(0, 16), 64), raw.subarray(16));
}

/** An unknown email costs as much as a wrong password. */
export const DUMMY_HASH = hashPassword(randomBytes(16).toString("hex"));

export async function issueToken(userId: string): Promise<{ access_token: string; token_type: string; expires_in: number }> {
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(userId)
    .setExpirationTime(`${TTL_SECONDS}s`)
    .sign(secret());
  return { access_token: token, token_type: "bearer", expires_in: TTL_SECONDS };
}

/** The signed-in user's id; 401 without a valid, unexpired bearer token. */
export async function requireUser(request: Request): Promise<string> {
  const [scheme, token] = (request.headers.get("authorization") ?? "").split(" ");
  if (scheme?.toLowerCase() !== "bearer" || !token) throw unauthorized("Send Authorization: Bearer <token>");
  try {
    const { payload } = await jwtVerify(token, secret(), { algorithms: ["HS256"] });
    if (!payload.sub) throw unauthorized("The token has no subject");
    return payload.sub;
  } catch {
    throw unauthorized("The token is invalid or expired");
  }
}
