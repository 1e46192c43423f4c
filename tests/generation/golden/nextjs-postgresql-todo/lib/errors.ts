// One error hierarchy, rendered in one place as {"code", "detail"}.
import { ZodError } from "zod";

export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

export const notFound = (what: string) => new AppError(404, "not_found", `No ${what} with this id`);
export const conflict = (detail: string) => new AppError(409, "conflict", detail);
export const unauthorized = (detail: string) => new AppError(401, "unauthorized", detail);

export function problem(error: unknown): Response {
  if (error instanceof AppError) {
    const headers = error.status === 401 ? { "WWW-Authenticate": "Bearer" } : undefined;
    return Response.json({ code: error.code, detail: error.message }, { status: error.status, headers });
  }
  if (error instanceof ZodError) {
    return Response.json(
      { code: "validation_error", detail: "Invalid request", errors: error.issues },
      { status: 422 },
    );
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (code === "23505" || code === "SQLITE_CONSTRAINT_UNIQUE" || code === 11000) {
    return Response.json({ code: "conflict", detail: "This already exists" }, { status: 409 });
  }
  if (error instanceof SyntaxError) {
    return Response.json({ code: "bad_request", detail: "The body is not JSON" }, { status: 400 });
  }
  console.error(error);
  return Response.json({ code: "internal_error", detail: "Internal error" }, { status: 500 });
}

/** Runs a route handler and renders whatever it throws. */
export async function handle(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    return problem(error);
  }
}
