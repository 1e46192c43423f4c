// /api/tasks: list and create.
import { TaskCreate, taskTable } from "@/schemas/task";
import { requireUser } from "@/lib/auth";
import { store } from "@/lib/db";
import { AppError, handle } from "@/lib/errors";

const records = store(taskTable);

function bounded(value: string | null, fallback: number, max: number): number {
  if (value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new AppError(422, "validation_error", `must be an integer from 1 to ${max}`);
  }
  return n;
}

export async function GET(request: Request): Promise<Response> {
  return handle(async () => {
    const params = new URL(request.url).searchParams;
    const q = params.get("q") ?? undefined;
    if (q && q.length > 200) throw new AppError(422, "validation_error", "q is too long");
    const page = bounded(params.get("page"), 1, 1_000_000);
    const limit = bounded(params.get("limit"), 20, 100);
    const { items, total } = await records.list({ offset: (page - 1) * limit, limit, q });
    return Response.json({ data: items, meta: { page, limit, total, total_pages: Math.ceil(total / limit) } });
  });
}

export async function POST(request: Request): Promise<Response> {
  return handle(async () => {
    await requireUser(request);
    const values = TaskCreate.parse(await request.json());
    return Response.json(await records.create(values), { status: 201 });
  });
}
