// The data layer: one store per resource over postgresql. Table and column names come
// from this generated code, never from requests; values are always bound parameters.
import { Pool, types } from "pg";

export type Row = Record<string, unknown> & { id: string };
export type Values = Record<string, unknown>;

export interface ListOptions {
  offset: number;
  limit: number;
  q?: string;
  owner?: string;
}

/** `owner`: the account whose records these are, for tables with an owner. */
export interface Store {
  list(options: ListOptions): Promise<{ items: Row[]; total: number }>;
  get(id: string, owner?: string): Promise<Row | null>;
  create(values: Values, owner?: string): Promise<Row>;
  update(id: string, values: Values, owner?: string): Promise<Row | null>;
  remove(id: string, owner?: string): Promise<boolean>;
  /** The record whose `field` equals `value` exactly. */
  findBy(field: string, value: unknown): Promise<Row | null>;
}

export interface Table {
  name: string;
  search: string[];
  booleans: string[];
  timestamps: boolean;
  softDelete: boolean;
  owned: boolean;
  unique: string[];
}

// Route handlers are bundled one by one: what must exist once per process lives here.
const shared = globalThis as typeof globalThis & {
  devoraPool?: Pool;
};

function now(): string {
  return new Date().toISOString();
}

/** What a client reads: the id as a string, no storage-only fields. */
function withoutOwner(values: Values, id: unknown): Row {
  const { owner_id: _owner, ...rest } = values;
  return { ...rest, id: String(id) };
}

const quote = (name: string): string => `"${name}"`;
/** An id is an integer from 1 to 2147483647 (as in Devora's FastAPI projects); the route
 * answers 422 to anything else. */
export function isId(id: string): boolean {
  return /^[1-9][0-9]{0,9}$/.test(id) && Number(id) <= 2147483647;
}

// BIGINT and COUNT(*) arrive as text: numbers where they are exact. DATE stays the calendar
// date it is (pg would make it local midnight); TIMESTAMPTZ becomes a UTC ISO string.
const parseTimestamp = types.getTypeParser(types.builtins.TIMESTAMPTZ, "text") as (text: string) => Date;
types.setTypeParser(types.builtins.INT8, (text: string) => {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : text;
});
types.setTypeParser(types.builtins.NUMERIC, (text: string) => Number(text));
types.setTypeParser(types.builtins.DATE, (text: string) => text);
types.setTypeParser(types.builtins.TIMESTAMPTZ, (text: string) => {
  const value = parseTimestamp(text);
  return Number.isNaN(value.getTime()) ? text : value.toISOString();
});

async function query(text: string, params: unknown[]): Promise<Values[]> {
  shared.devoraPool ??= new Pool({
    connectionString: process.env.DATABASE_URL ?? "postgresql://localhost:5432/todo",
    max: 10,
  });
  return (await shared.devoraPool.query(text, params)).rows;
}

const placeholder = (n: number): string => `$${n}`;
const key = (id: string): unknown => id;
const LIKE = "ILIKE";

/** Adds a bound parameter; its placeholder goes into the SQL where the value belongs. */
function bind(params: unknown[], value: unknown): string {
  params.push(value);
  return placeholder(params.length);
}

function toRow(table: Table, values: Values): Row {
  const row: Values = { ...values };
  for (const field of table.booleans) {
    if (row[field] !== null && row[field] !== undefined) row[field] = Boolean(row[field]);
  }
  return withoutOwner(row, values.id);
}

export function store(table: Table): Store {
  const name = quote(table.name);
  const visible = (params: unknown[], owner?: string): string =>
    (table.softDelete ? ` AND "deleted_at" IS NULL` : "") +
    (table.owned && owner !== undefined ? ` AND "owner_id" = ${bind(params, owner)}` : "");
  const first = (rows: Values[]): Row | null => (rows[0] ? toRow(table, rows[0]) : null);
  return {
    async list({ offset, limit, q, owner }) {
      const params: unknown[] = [];
      let where = `WHERE 1 = 1${visible(params, owner)}`;
      if (q && table.search.length) {
        const pattern = `%${q.replace(/[\\%_]/g, "\\$&")}%`;
        const matches = table.search.map((f) => `${quote(f)} ${LIKE} ${bind(params, pattern)} ESCAPE '\\'`);
        where += ` AND (${matches.join(" OR ")})`;
      }
      const counted = await query(`SELECT COUNT(*) AS "total" FROM ${name} ${where}`, [...params]);
      const rows = await query(
        `SELECT * FROM ${name} ${where} ORDER BY "id" DESC LIMIT ${bind(params, limit)} OFFSET ${bind(params, offset)}`,
        params,
      );
      return { items: rows.map((row) => toRow(table, row)), total: Number(counted[0]?.total ?? 0) };
    },
    async get(id, owner) {
      if (!isId(id)) return null;
      const params: unknown[] = [];
      return first(await query(`SELECT * FROM ${name} WHERE "id" = ${bind(params, key(id))}${visible(params, owner)}`, params));
    },
    async create(values, owner) {
      const row: Values = { ...values };
      if (table.timestamps) row.created_at = row.updated_at = now();
      if (table.owned) row.owner_id = owner;
      const columns = Object.keys(row);
      const params: unknown[] = [];
      const placeholders = columns.map((column) => bind(params, row[column]));
      const created = await query(
        `INSERT INTO ${name} (${columns.map(quote).join(", ")}) VALUES (${placeholders.join(", ")}) RETURNING *`,
        params,
      );
      return toRow(table, created[0]);
    },
    async update(id, values, owner) {
      if (!isId(id)) return null;
      const changes: Values = { ...values };
      if (table.timestamps) changes.updated_at = now();
      const columns = Object.keys(changes);
      if (!columns.length) return this.get(id, owner);
      const params: unknown[] = [];
      const sets = columns.map((column) => `${quote(column)} = ${bind(params, changes[column])}`).join(", ");
      const where = `"id" = ${bind(params, key(id))}${visible(params, owner)}`;
      return first(await query(`UPDATE ${name} SET ${sets} WHERE ${where} RETURNING *`, params));
    },
    async remove(id, owner) {
      if (!isId(id)) return false;
      const params: unknown[] = [];
      const change = table.softDelete
        ? `UPDATE ${name} SET "deleted_at" = ${bind(params, now())}`
        : `DELETE FROM ${name}`;
      const where = `"id" = ${bind(params, key(id))}${visible(params, owner)}`;
      return (await query(`${change} WHERE ${where} RETURNING "id"`, params)).length === 1;
    },
    async findBy(field, value) {
      const params: unknown[] = [];
      const where = `${quote(field)} = ${bind(params, value)}${visible(params)}`;
      return first(await query(`SELECT * FROM ${name} WHERE ${where} LIMIT 1`, params));
    },
  };
}
