// /api/auth/register: create an account. Emails are unique (an index says so, too).
import { Credentials, accounts, hashPassword } from "@/lib/auth";
import { conflict, handle, methodNotAllowed } from "@/lib/errors";

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    const { email, password } = Credentials.parse(await request.json());
    const normalised = email.toLowerCase();
    if (await accounts.findBy("email", normalised)) throw conflict("This email is registered already");
    const account = await accounts.create({ email: normalised, password_hash: await hashPassword(password) });
    return Response.json({ id: account.id, email: normalised }, { status: 201 });
  });
}

export const GET = methodNotAllowed;
