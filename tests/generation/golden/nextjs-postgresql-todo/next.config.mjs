/** @type {import("next").NextConfig} */
const config = {
  // `/api/<resource>/<id>` is served by `app/api/<resource>/item/route.ts` with `?id=`.
  async rewrites() {
    return [
      { source: "/api/tasks/:id", destination: "/api/tasks/item?id=:id" },
    ];
  },
};

export default config;
