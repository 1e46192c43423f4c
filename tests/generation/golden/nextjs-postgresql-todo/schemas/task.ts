// Task: what a client may send, and what it reads back.
import { z } from "zod";

import type { Table } from "@/lib/db";

export const TaskCreate = z
  .object({
    title: z.string().min(1).max(255),
    done: z.boolean(),
    due: z.string().date().nullable().optional(),
  })
  .strict();

/** Every field optional; only the ones sent change; required fields cannot be nulled. */
export const TaskUpdate = z
  .object({
    title: z.string().min(1).max(255).optional(),
    done: z.boolean().optional(),
    due: z.string().date().nullable().optional(),
  })
  .strict();

export type Task = z.infer<typeof TaskCreate> & {
  id: string;
};

export const taskTable: Table = {
  name: "tasks",
  search: [],
  booleans: ["done"],
  timestamps: false,
  softDelete: false,
  owned: true,
  unique: [],
};
