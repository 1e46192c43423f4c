// /api/auth/register: create an account.
import { Credentials, hashPassword } from "@/lib/auth";
import { store } from "@/lib/db";
import { conflict, handle } from "@/lib/errors";

const accounts = store({ name: "auth_users", search: ["email"], booleans: [] });

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    const { email, password } = Credentials.parse(await request.json());
    const normalised = email.toLowerCase();
    const { items } = await accounts.list({ offset: 0, limit: 1, q: normalised });
    if (items.some((account) => account.email === normalised)) throw conflict("This email is registered already");
    const account = await accounts.create({ email: normalised, password_hash: hashPassword(password) });
    return Response.json({ id: account.id, email: normalised }, { status: 201 });
  });
}
