// `/api/<resource>/<id>` is served by `app/api/<resource>/item/route.ts` (file paths allow no
// `[id]` folder); any other unknown `/api/` path gets a JSON 404.
const PRODUCTION_SERVER = "phase-production-server";

/** @type {(phase: string) => import("next").NextConfig} */
export default function config(phase) {
  // Without a secret of its own every token would be forgeable: `next start` refuses to run.
  if (phase === PRODUCTION_SERVER && (process.env.JWT_SECRET ?? "").length < 32) {
    throw new Error("Set JWT_SECRET to at least 32 random characters (openssl rand -hex 32) before `next start`");
  }
  return {
    async rewrites() {
      return {
        beforeFiles: [],
        afterFiles: [
          { source: "/api/tasks/:id", destination: "/api/tasks/item?id=:id" },
        ],
        fallback: [{ source: "/api/:path*", destination: "/api/unknown-route" }],
      };
    },
  };
}
