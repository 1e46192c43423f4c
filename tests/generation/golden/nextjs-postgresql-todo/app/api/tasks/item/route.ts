// /api/tasks/:id (rewritten here by next.config.mjs, as ?id=): read, update, delete.
// Project file paths allow no brackets, so the dynamic segment is a rewrite, not `[id]/`.
import { TaskUpdate, taskTable } from "@/schemas/task";
import { requireUser } from "@/lib/auth";
import { store } from "@/lib/db";
import { AppError, handle, notFound } from "@/lib/errors";

const records = store(taskTable);
const REQUIRED = ["title", "done"];

function idOf(request: Request): string {
  return new URL(request.url).searchParams.get("id") ?? "";
}

export async function GET(request: Request): Promise<Response> {
  return handle(async () => {
    const found = await records.get(idOf(request));
    if (!found) throw notFound("task");
    return Response.json(found);
  });
}

export async function PATCH(request: Request): Promise<Response> {
  return handle(async () => {
    await requireUser(request);
    const changes = TaskUpdate.parse(await request.json());
    for (const field of REQUIRED) {
      if (field in changes && changes[field as keyof typeof changes] === null) {
        throw new AppError(422, "validation_error", `${field} cannot be null`);
      }
    }
    const updated = await records.update(idOf(request), changes);
    if (!updated) throw notFound("task");
    return Response.json(updated);
  });
}

export async function DELETE(request: Request): Promise<Response> {
  return handle(async () => {
    await requireUser(request);
    if (!(await records.remove(idOf(request)))) {
      throw notFound("task");
    }
    return new Response(null, { status: 204 });
  });
}
