// /api/auth/login: exchange email and password for a bearer token.
import { Credentials, accounts, dummyPasswordHash, issueToken, verifyPassword } from "@/lib/auth";
import { handle, methodNotAllowed, unauthorized } from "@/lib/errors";

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    const { email, password } = Credentials.parse(await request.json());
    const account = await accounts.findBy("email", email.toLowerCase());
    const stored = account ? String(account.password_hash) : await dummyPasswordHash();
    if (!(await verifyPassword(password, stored)) || !account) throw unauthorized("Wrong email or password");
    return Response.json(await issueToken(account.id));
  });
}

export const GET = methodNotAllowed;
