// /api/auth/login: exchange email and password for a bearer token.
import { Credentials, DUMMY_HASH, issueToken, verifyPassword } from "@/lib/auth";
import { store } from "@/lib/db";
import { handle, unauthorized } from "@/lib/errors";

const accounts = store({ name: "auth_users", search: ["email"], booleans: [] });

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    const { email, password } = Credentials.parse(await request.json());
    const { items } = await accounts.list({ offset: 0, limit: 10, q: email.toLowerCase() });
    const account = items.find((candidate) => candidate.email === email.toLowerCase());
    const stored = account ? String(account.password_hash) : DUMMY_HASH;
    if (!verifyPassword(password, stored) || !account) throw unauthorized("Wrong email or password");
    return Response.json(await issueToken(account.id));
  });
}
