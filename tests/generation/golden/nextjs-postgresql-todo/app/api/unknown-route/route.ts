// Every /api/ path that no route serves is rewritten here (next.config.mjs): a 404 in the
// error format the rest of the API uses, not Next.js's HTML page.
import { AppError, problem } from "@/lib/errors";

async function unknownRoute(): Promise<Response> {
  return problem(new AppError(404, "not_found", "No such route"));
}

export const GET = unknownRoute;
export const POST = unknownRoute;
export const PUT = unknownRoute;
export const PATCH = unknownRoute;
export const DELETE = unknownRoute;
