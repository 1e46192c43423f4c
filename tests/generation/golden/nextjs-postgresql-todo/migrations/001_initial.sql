-- The tables of Todo, applied once by `npm run migrate`. Later changes go in
-- new files (002_<what>.sql, …); an applied file is never edited. Identifiers are quoted:
-- `order` or `user` are fine as names.
CREATE TABLE "auth_users" (
  "id" BIGSERIAL PRIMARY KEY,
  "email" VARCHAR(320) NOT NULL UNIQUE,
  "password_hash" TEXT NOT NULL
);

CREATE TABLE "tasks" (
  "id" BIGSERIAL PRIMARY KEY,
  "owner_id" BIGINT NOT NULL REFERENCES "auth_users" ("id"),
  "title" VARCHAR(255) NOT NULL,
  "done" BOOLEAN NOT NULL,
  "due" DATE
);
CREATE INDEX "tasks_owner_id" ON "tasks" ("owner_id", "id");
