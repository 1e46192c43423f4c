-- Tables of Todo. Identifiers are quoted: `order` or `user` are fine as names.
CREATE TABLE IF NOT EXISTS "tasks" (
  "id" BIGSERIAL PRIMARY KEY,
  "title" VARCHAR(255) NOT NULL,
  "done" BOOLEAN NOT NULL,
  "due" DATE
);
CREATE TABLE IF NOT EXISTS "auth_users" (
  "id" BIGSERIAL PRIMARY KEY,
  "email" TEXT NOT NULL UNIQUE,
  "password_hash" TEXT NOT NULL
);
