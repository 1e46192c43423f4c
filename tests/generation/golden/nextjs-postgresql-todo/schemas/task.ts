// Task: what a client may send, and what it reads back.
import { z } from "zod";

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

export const taskTable = {
  name: "tasks",
  search: ["title"],
  booleans: ["done"],
};
