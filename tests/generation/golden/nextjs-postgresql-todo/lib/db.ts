// The data layer: one store per resource over postgresql. Table and column names come
// from this generated code, never from requests; values are always bound parameters.
import { Pool } from "pg";

export type Row = Record<string, unknown> & { id: string };
export type Values = Record<string, unknown>;

export interface ListOptions {
  offset: number;
  limit: number;
  q?: string;
}

export interface Store {
  list(options: ListOptions): Promise<{ items: Row[]; total: number }>;
  get(id: string): Promise<Row | null>;
  create(values: Values): Promise<Row>;
  update(id: string, values: Values): Promise<Row | null>;
  remove(id: string): Promise<boolean>;
}

export interface Table {
  name: string;
  search: string[];
  booleans: string[];
}

const TIMESTAMPS = false;
const SOFT_DELETE = false;

function now(): string {
  return new Date().toISOString();
}

const quote = (name: string): string => `"${name}"`;

let pool: Pool | undefined;

async function query(text: string, params: unknown[]): Promise<Values[]> {
  pool ??= new Pool({ connectionString: process.env.DATABASE_URL });
  return (await pool.query(text, params)).rows;
}

const placeholder = (n: number): string => `$${n}`;
const LIKE = "ILIKE";

function toRow(table: Table, values: Values): Row {
  const row: Values = { ...values, id: String(values.id) };
  for (const field of table.booleans) {
    if (row[field] !== null && row[field] !== undefined) row[field] = Boolean(row[field]);
  }
  return row as Row;
}

export function store(table: Table): Store {
  const name = quote(table.name);
  const live = SOFT_DELETE ? ` AND "deleted_at" IS NULL` : "";
  const numeric = (id: string): number | null => (/^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : null);
  return {
    async list({ offset, limit, q }) {
      const params: unknown[] = [];
      let where = `WHERE 1 = 1${live}`;
      if (q && table.search.length) {
        params.push(`%${q.replace(/[\\%_]/g, "\\$&")}%`);
        const n = placeholder(params.length);
        where += ` AND (${table.search.map((f) => `${quote(f)} ${LIKE} ${n} ESCAPE '\\'`).join(" OR ")})`;
      }
      const counted = await query(`SELECT COUNT(*) AS total FROM ${name} ${where}`, params);
      params.push(limit, offset);
      const rows = await query(
        `SELECT * FROM ${name} ${where} ORDER BY "id" DESC LIMIT ${placeholder(params.length - 1)} OFFSET ${placeholder(params.length)}`,
        params,
      );
      return { items: rows.map((row) => toRow(table, row)), total: Number(counted[0]?.total ?? 0) };
    },
    async get(id) {
      const key = numeric(id);
      if (key === null) return null;
      const rows = await query(`SELECT * FROM ${name} WHERE "id" = ${placeholder(1)}${live}`, [key]);
      return rows[0] ? toRow(table, rows[0]) : null;
    },
    async create(values) {
      const row: Values = { ...values };
      if (TIMESTAMPS) row.created_at = row.updated_at = now();
      const columns = Object.keys(row);
      const params = columns.map((column) => row[column]);
      const created = await query(
        `INSERT INTO ${name} (${columns.map(quote).join(", ")}) VALUES (${columns.map((_, i) => placeholder(i + 1)).join(", ")}) RETURNING *`,
        params,
      );
      return toRow(table, created[0]);
    },
    async update(id, values) {
      const key = numeric(id);
      if (key === null) return null;
      const changes: Values = { ...values };
      if (TIMESTAMPS) changes.updated_at = now();
      const columns = Object.keys(changes);
      if (columns.length) {
        const sets = columns.map((column, i) => `${quote(column)} = ${placeholder(i + 1)}`).join(", ");
        await query(`UPDATE ${name} SET ${sets} WHERE "id" = ${placeholder(columns.length + 1)}${live}`, [
          ...columns.map((column) => changes[column]),
          key,
        ]);
      }
      return this.get(id);
    },
    async remove(id) {
      const found = await this.get(id);
      if (!found) return false;
      if (SOFT_DELETE) {
        await query(`UPDATE ${name} SET "deleted_at" = ${placeholder(1)} WHERE "id" = ${placeholder(2)}`, [now(), Number(id)]);
      } else {
        await query(`DELETE FROM ${name} WHERE "id" = ${placeholder(1)}`, [Number(id)]);
      }
      return true;
    },
  };
}
