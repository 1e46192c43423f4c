// /api/tasks: list and create (the caller's own records only).
import { TaskCreate, taskTable } from "@/schemas/task";
import { requireUser } from "@/lib/auth";
import { store } from "@/lib/db";
import { handle, invalid, methodNotAllowed } from "@/lib/errors";

const records = store(taskTable);

function bounded(value: string | null, name: string, fallback: number, max: number): number {
  if (value === null) return fallback;
  const n = /^[0-9]{1,16}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= max)) throw invalid(`${name} must be an integer from 1 to ${max}`);
  return n;
}

export async function GET(request: Request): Promise<Response> {
  return handle(async () => {
    const owner = await requireUser(request);
    const params = new URL(request.url).searchParams;
    const q = params.get("q") ?? undefined;
    if (q && q.length > 200) throw invalid("q must be at most 200 characters");
    const page = bounded(params.get("page"), "page", 1, 1_000_000);
    const limit = bounded(params.get("limit"), "limit", 20, 100);
    const { items, total } = await records.list({ offset: (page - 1) * limit, limit, q, owner });
    return Response.json({ data: items, meta: { page, limit, total, total_pages: Math.ceil(total / limit) } });
  });
}

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    const owner = await requireUser(request);
    const values = TaskCreate.parse(await request.json());
    return Response.json(await records.create(values, owner), { status: 201 });
  });
}

export const PUT = methodNotAllowed;
export const PATCH = methodNotAllowed;
export const DELETE = methodNotAllowed;
