// One error hierarchy, rendered in one place as {"code", "detail"}: route errors, validation
// errors, unknown routes and unexpected failures alike.
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
export const invalid = (detail: string) => new AppError(422, "validation_error", detail);

// Unique violations of PostgreSQL, SQLite and MongoDB.
const DUPLICATE = new Set<unknown>(["23505", "SQLITE_CONSTRAINT_UNIQUE", 11000]);

export function problem(error: unknown): Response {
  if (error instanceof AppError) {
    const headers = error.status === 401 ? { "WWW-Authenticate": "Bearer" } : undefined;
    return Response.json({ code: error.code, detail: error.message }, { status: error.status, headers });
  }
  if (error instanceof ZodError) {
    const [first] = error.issues;
    const detail = first ? `${first.path.join(".") || "body"}: ${first.message}` : "Invalid request";
    return Response.json({ code: "validation_error", detail, errors: error.issues }, { status: 422 });
  }
  if (error instanceof SyntaxError) {
    return Response.json({ code: "validation_error", detail: "The body is not JSON" }, { status: 422 });
  }
  if (DUPLICATE.has((error as { code?: unknown } | null)?.code)) {
    return Response.json({ code: "conflict", detail: "This already exists" }, { status: 409 });
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

/** The answer to a method a route does not serve. */
export async function methodNotAllowed(): Promise<Response> {
  return problem(new AppError(405, "method_not_allowed", "This route does not serve this method"));
}
