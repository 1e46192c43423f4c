// /api/tasks/<id>: read, update, delete (another account's record is not found).
// Project file paths allow no brackets, so the dynamic segment is a rewrite to this route
// (next.config.mjs), not an `[id]/` folder.
import { TaskUpdate, taskTable } from "@/schemas/task";
import { requireUser } from "@/lib/auth";
import { isId, store } from "@/lib/db";
import { handle, invalid, methodNotAllowed, notFound } from "@/lib/errors";

const records = store(taskTable);
const REQUIRED = ["title", "done"];
const WHAT = "task";

/** The id from the path the client called: a rewrite keeps `request.url` as it was sent
 * (`/api/tasks/<id>`) and does not add its query to it. A malformed id is a 422;
 * a well-formed one naming no record a 404. */
function idOf(request: Request): string {
  const url = new URL(request.url);
  const last = url.pathname.split("/").pop() ?? "";
  const id = last === "item" ? (url.searchParams.get("id") ?? "") : last;
  if (!isId(id)) throw invalid("id: not a valid id");
  return id;
}

export async function GET(request: Request): Promise<Response> {
  return handle(async () => {
    const owner = await requireUser(request);
    const found = await records.get(idOf(request), owner);
    if (!found) throw notFound(WHAT);
    return Response.json(found);
  });
}

export async function PATCH(request: Request): Promise<Response> {
  return handle(async () => {
    const owner = await requireUser(request);
    const changes = TaskUpdate.parse(await request.json());
    for (const field of REQUIRED) {
      if (field in changes && changes[field as keyof typeof changes] === null) throw invalid(`${field} cannot be null`);
    }
    const updated = await records.update(idOf(request), changes, owner);
    if (!updated) throw notFound(WHAT);
    return Response.json(updated);
  });
}

export async function DELETE(request: Request): Promise<Response> {
  return handle(async () => {
    const owner = await requireUser(request);
    if (!(await records.remove(idOf(request), owner))) throw notFound(WHAT);
    return new Response(null, { status: 204 });
  });
}

export const POST = methodNotAllowed;
export const PUT = methodNotAllowed;
