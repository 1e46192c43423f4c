// Calls a route handler the way Next.js does: a Request in, a Response out.
import { randomUUID } from "node:crypto";
import { expect } from "vitest";

import * as login from "@/app/api/auth/login/route";
import * as register from "@/app/api/auth/register/route";

type Handler = (request: Request) => Promise<Response>;

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export async function call(
  handler: Handler,
  method: string,
  path: string,
  { body, token }: { body?: unknown; token?: string } = {},
): Promise<Answer> {
  const headers = new Headers();
  if (body !== undefined) headers.set("content-type", "application/json");
  if (token) headers.set("authorization", `Bearer ${token}`);
  const request = new Request(`http://localhost${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const response = await handler(request);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

export const PASSWORD = "correct horse battery staple";

export function newEmail(): string {
  return `user-${randomUUID()}@example.com`;
}

/** A new account's bearer token. */
export async function signUp(): Promise<string> {
  const email = newEmail();
  expect((await call(register.POST, "POST", "/api/auth/register", { body: { email, password: PASSWORD } })).status).toBe(201);
  const answer = await call(login.POST, "POST", "/api/auth/login", { body: { email, password: PASSWORD } });
  expect(answer.status).toBe(200);
  return answer.body.access_token;
}
