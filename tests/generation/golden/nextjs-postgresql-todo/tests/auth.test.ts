// Accounts and tokens.
import { describe, expect, it } from "vitest";

import * as login from "@/app/api/auth/login/route";
import * as register from "@/app/api/auth/register/route";
import * as collection from "@/app/api/tasks/route";
import { issueToken } from "@/lib/auth";
import { PASSWORD, call, newEmail, signUp } from "./support";

const MISSING_ACCOUNT = "999999999999999999";

describe("auth", () => {
  it("registers an email once, whatever its case", async () => {
    const email = newEmail();
    const first = await call(register.POST, "POST", "/api/auth/register", { body: { email, password: PASSWORD } });
    expect(first.status).toBe(201);
    expect(first.body).toEqual({ id: expect.any(String), email });
    // A newer account whose email contains this one must not hide it.
    expect((await call(register.POST, "POST", "/api/auth/register", { body: { email: `x${email}`, password: PASSWORD } })).status).toBe(201);
    for (const again of [email, email.toUpperCase()]) {
      const answer = await call(register.POST, "POST", "/api/auth/register", { body: { email: again, password: PASSWORD } });
      expect(answer.status).toBe(409);
      expect(answer.body.code).toBe("conflict");
    }
  });

  it("refuses a wrong password and an unknown email alike", async () => {
    const email = newEmail();
    await call(register.POST, "POST", "/api/auth/register", { body: { email, password: PASSWORD } });
    for (const body of [{ email, password: "wrong password" }, { email: newEmail(), password: PASSWORD }]) {
      const answer = await call(login.POST, "POST", "/api/auth/login", { body });
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ code: "unauthorized", detail: "Wrong email or password" });
    }
  });

  it("refuses short passwords", async () => {
    const answer = await call(register.POST, "POST", "/api/auth/register", { body: { email: newEmail(), password: "short" } });
    expect(answer.status).toBe(422);
    expect(answer.body.code).toBe("validation_error");
  });

  it("needs a token", async () => {
    for (const token of [undefined, "not-a-token"]) {
      const answer = await call(collection.GET, "GET", "/api/tasks", { token });
      expect(answer.status).toBe(401);
      expect(answer.body.code).toBe("unauthorized");
    }
  });

  it("refuses a well-signed token for an account that does not exist", async () => {
    const { access_token } = await issueToken(MISSING_ACCOUNT);
    const answer = await call(collection.GET, "GET", "/api/tasks", { token: access_token });
    expect(answer.status).toBe(401);
    expect(answer.body.code).toBe("unauthorized");
  });

  it("gives a token that works", async () => {
    const answer = await call(collection.GET, "GET", "/api/tasks", { token: await signUp() });
    expect(answer.status).toBe(200);
  });
});
