// /api/tasks through its route handlers, against the configured database.
import { describe, expect, it } from "vitest";

import * as item from "@/app/api/tasks/item/route";
import * as collection from "@/app/api/tasks/route";
import { call, signUp } from "./support";

const PATH = "/api/tasks";
const SAMPLE = {
  title: "sample text",
  done: true,
  due: "2024-01-02",
};
/** SAMPLE as it reads back. */
const SAMPLE_READ = {
  title: "sample text",
  done: true,
  due: "2024-01-02",
};
const MISSING = "2147483647";

describe(PATH, () => {
  it("creates, reads, updates and deletes a record", async () => {
    const token = await signUp();
    const created = await call(collection.POST, "POST", PATH, { body: SAMPLE, token });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ ...SAMPLE_READ, id: expect.any(String) });
    const url = `${PATH}/${created.body.id}`;

    const read = await call(item.GET, "GET", url, { token });
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);

    const patched = await call(item.PATCH, "PATCH", url, { body: { title: "other text" }, token });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ ...SAMPLE_READ, title: "other text" });

    expect((await call(item.DELETE, "DELETE", url, { token })).status).toBe(204);
    const gone = await call(item.GET, "GET", url, { token });
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe("not_found");
  });

  it("lists records, newest first, a page at a time", async () => {
    const token = await signUp();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await call(collection.POST, "POST", PATH, { body: SAMPLE, token })).body.id);
    const page = await call(collection.GET, "GET", `${PATH}?page=1&limit=2`, { token });
    expect(page.status).toBe(200);
    expect(page.body.meta).toMatchObject({ page: 1, limit: 2 });
    expect(page.body.data.map((row: { id: string }) => row.id)).toEqual([ids[2], ids[1]]);
    expect(page.body.meta).toMatchObject({ total: 3, total_pages: 2 });
  });

  it("answers 404 for a missing id and 422 for a malformed one", async () => {
    const token = await signUp();
    const missing = await call(item.GET, "GET", `${PATH}/${MISSING}`, { token });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe("not_found");
    for (const id of ["not-an-id", "-1", "1.5", "0", "2147483648", "9999999999999999999999999999999999999999"]) {
      for (const method of ["GET", "PATCH", "DELETE"] as const) {
        const answer = await call(item[method], method, `${PATH}/${id}`, { token, body: method === "PATCH" ? {} : undefined });
        expect(answer.status).toBe(422);
        expect(answer.body.code).toBe("validation_error");
      }
    }
  });

  it("refuses invalid values with 422", async () => {
    const token = await signUp();
    for (const body of [{ ...SAMPLE, title: 12 }, { ...SAMPLE, unknown_field: 1 }]) {
      const answer = await call(collection.POST, "POST", PATH, { body, token });
      expect(answer.status).toBe(422);
      expect(answer.body.code).toBe("validation_error");
    }
  });

  it("bounds page and limit", async () => {
    const token = await signUp();
    for (const query of ["page=0", "page=1000001", "page=1000000000000000000", "limit=101", "limit=x"]) {
      const answer = await call(collection.GET, "GET", `${PATH}?${query}`, { token });
      expect(answer.status).toBe(422);
      expect(answer.body.code).toBe("validation_error");
    }
  });

  it("keeps a record from other accounts", async () => {
    const owner = await signUp();
    const stranger = await signUp();
    const created = await call(collection.POST, "POST", PATH, { body: SAMPLE, token: owner });
    const url = `${PATH}/${created.body.id}`;
    expect((await call(item.GET, "GET", url, { token: stranger })).status).toBe(404);
    expect((await call(item.PATCH, "PATCH", url, { body: { title: "other text" }, token: stranger })).status).toBe(404);
    expect((await call(item.DELETE, "DELETE", url, { token: stranger })).status).toBe(404);
    const theirs = await call(collection.GET, "GET", PATH, { token: stranger });
    expect(theirs.body.data).toEqual([]);
    expect((await call(item.GET, "GET", url, { token: owner })).body).toEqual(created.body);
  });
});
