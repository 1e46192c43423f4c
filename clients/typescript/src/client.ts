/**
 * The Devora API client: openapi-fetch over the generated `schema.ts`, plus what every caller
 * would otherwise write again — the bearer token, one shared refresh on 401, problem
 * documents as typed errors, Idempotency-Key helpers and a job's events as an async iterator.
 */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type Tokens = components["schemas"]["Tokens"];
export type Problem = components["schemas"]["Problem"];
export type Job = components["schemas"]["JobRead"];
export type JobStatus = Job["status"];

/** A problem document (RFC 9457) the API answered with; `code` is what to branch on. */
export class ApiProblem<P extends { code: string } = Problem> extends Error {
  constructor(
    readonly status: number,
    readonly problem: P,
  ) {
    super(`${status} ${problem.code}: ${"detail" in problem ? String(problem.detail) : ""}`);
    this.name = "ApiProblem";
  }

  get code(): P["code"] {
    return this.problem.code;
  }
}

/** The session is over (refresh token spent elsewhere, revoked or expired): sign in again. */
export class SessionEnded extends Error {
  constructor(readonly reason: "token_reused" | "invalid_token" | "signed_out") {
    super(`session ended: ${reason}`);
    this.name = "SessionEnded";
  }
}

/** Where tokens live between calls; memory by default (pass one backed by storage if wanted). */
export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

export function memoryTokens(initial: Tokens | null = null): TokenStore {
  let tokens = initial;
  return { get: () => tokens, set: (next) => void (tokens = next) };
}

export interface DevoraOptions {
  /** The API origin, e.g. `http://127.0.0.1:8000` (paths carry `/api/v2`). */
  baseUrl: string;
  tokens?: TokenStore;
  /** Called once when the session cannot be refreshed. */
  onSessionEnd?: (reason: SessionEnded["reason"]) => void;
  fetch?: typeof globalThis.fetch;
}

/** The data of a successful openapi-fetch result, or its problem thrown as `ApiProblem`. */
export async function unwrap<T, E>(
  call: Promise<{ data?: T; error?: E; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call;
  if (!response.ok) {
    throw new ApiProblem(response.status, error as E & { code: string });
  }
  return data as T;
}

/** A fresh key for one logical request; send the same key again to retry it safely. */
export function newIdempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}

/** `headers` for an idempotent POST (`/billing/checkout`, `/generate/*`). */
export function idempotent(key: string = newIdempotencyKey()): { "Idempotency-Key": string } {
  return { "Idempotency-Key": key };
}

export interface JobEventData {
  status: { status: JobStatus; [field: string]: unknown };
  progress: { progress: number; stage: string };
  message: { text: string };
  file: { path: string; language: string; size: number; action: "created" | "updated" | "deleted" };
  /** One test of a sandbox run over the job's code. */
  check: { name: string; status: "passed" | "failed" | "error"; duration_ms: number };
  /** A sandbox run's totals (also `result.checks` of the Job). */
  checks: components["schemas"]["Checks"];
  done: Job;
  error: { code: string; message: string };
  canceled: { [field: string]: unknown };
}

export type JobEvent = {
  [K in keyof JobEventData]: { id: number; event: K; data: JobEventData[K] };
}[keyof JobEventData];

const TERMINAL = new Set(["done", "error", "canceled"]);

export interface FollowOptions {
  /** Resume after this event id (what the last `id` was). */
  lastEventId?: number;
  signal?: AbortSignal;
  /**
   * Attempts in a row that may fail (a dropped connection, or 429 when too many streams are
   * open) before the last failure is thrown; any event received starts the count again.
   */
  maxReconnects?: number;
  /** Wait before reconnecting, in milliseconds. */
  retryDelayMs?: number;
  /** The longest a 429's `Retry-After` is waited for before trying again, in milliseconds. */
  maxRetryAfterMs?: number;
}

export class Devora {
  readonly api: Client<paths>;
  readonly tokens: TokenStore;
  private refreshing: Promise<void> | null = null;
  private readonly baseUrl: string;
  private readonly fetchImpl: typeof globalThis.fetch;

  constructor(private readonly options: DevoraOptions) {
    this.baseUrl = options.baseUrl.replace(/\/$/, "");
    this.tokens = options.tokens ?? memoryTokens();
    this.fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
    this.api = createClient<paths>({
      baseUrl: this.baseUrl,
      fetch: (request: Request) => this.send(request),
    });
  }

  /** Sign in; the tokens are kept for every later call. */
  async login(email: string, password: string): Promise<Tokens> {
    const tokens = await unwrap(this.api.POST("/api/v2/auth/login", { body: { email, password } }));
    this.tokens.set(tokens);
    return tokens;
  }

  /** End this login on the server too. */
  async logout(): Promise<void> {
    const tokens = this.tokens.get();
    this.tokens.set(null);
    if (tokens) {
      await unwrap(
        this.api.POST("/api/v2/auth/logout", { body: { refresh_token: tokens.refresh_token } }),
      );
    }
  }

  /**
   * Every request goes through here: the current access token is attached, and one 401 is
   * answered by refreshing (shared by every call that hits it at once) and sending again.
   */
  async send(request: Request): Promise<Response> {
    const retry = request.clone();
    const sentWith = this.tokens.get();
    const response = await this.fetchImpl(this.authorize(request));
    if (response.status !== 401 || sentWith === null || isRefresh(request)) {
      return response;
    }
    await this.refresh(sentWith);
    return this.fetchImpl(this.authorize(retry));
  }

  /**
   * Spend the refresh token once for everyone: concurrent callers wait on the same promise;
   * a caller that saw older tokens than the current ones just uses the current ones.
   */
  async refresh(seen: Tokens | null = this.tokens.get()): Promise<void> {
    const current = this.tokens.get();
    if (current === null) {
      throw new SessionEnded("signed_out");
    }
    if (seen !== null && current.access_token !== seen.access_token) {
      return; // someone refreshed since this call was sent
    }
    this.refreshing ??= this.spend(current).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async spend(tokens: Tokens): Promise<void> {
    const response = await this.fetchImpl(
      new Request(`${this.baseUrl}/api/v2/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: tokens.refresh_token }),
      }),
    );
    if (response.ok) {
      this.tokens.set((await response.json()) as Tokens);
      return;
    }
    const problem = (await response.json().catch(() => ({ code: "invalid_token" }))) as Problem;
    if (response.status === 401) {
      const reason = problem.code === "token_reused" ? "token_reused" : "invalid_token";
      this.tokens.set(null);
      this.options.onSessionEnd?.(reason);
      throw new SessionEnded(reason);
    }
    throw new ApiProblem(response.status, problem);
  }

  private authorize(request: Request): Request {
    const tokens = this.tokens.get();
    if (tokens !== null && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${tokens.access_token}`);
    }
    return request;
  }

  /**
   * A job's events, stored then live, until its terminal event (`done`, `error` or
   * `canceled`). Built on `fetch` streaming, because `EventSource` cannot send a bearer
   * token. The server ends a stream after a while (`JOB_STREAM_MAX_S`) even while the job
   * goes on, and a connection may drop: either way the stream is resumed with `Last-Event-ID`,
   * so no event repeats. Too many open streams (429) is retried after `Retry-After`, then
   * thrown as `ApiProblem` (`too_many_streams`). Leaving the loop early closes the stream.
   */
  async *jobEvents(jobId: string, options: FollowOptions = {}): AsyncGenerator<JobEvent> {
    let last = options.lastEventId ?? 0;
    let failures = 0;
    const maxReconnects = options.maxReconnects ?? 5;
    const retryDelayMs = options.retryDelayMs ?? 500;
    const url = `${this.baseUrl}/api/v2/generate/jobs/${encodeURIComponent(jobId)}/events`;
    for (;;) {
      const headers: Record<string, string> = { Accept: "text/event-stream" };
      if (last > 0) {
        headers["Last-Event-ID"] = String(last);
      }
      let response: Response;
      try {
        response = await this.send(new Request(url, { headers, signal: options.signal }));
      } catch (error) {
        if (options.signal?.aborted || failures >= maxReconnects) throw error;
        failures += 1;
        await sleep(retryDelayMs);
        continue;
      }
      if (!response.ok || response.body === null) {
        const problem = (await response.json()) as Problem;
        if (response.status !== 429 || failures >= maxReconnects) {
          throw new ApiProblem(response.status, problem);
        }
        failures += 1;
        await sleep(retryAfterMs(response, retryDelayMs, options.maxRetryAfterMs ?? 30_000));
        continue;
      }
      let received = false;
      let broke = false;
      try {
        for await (const event of parseEventStream(response.body)) {
          last = event.id;
          received = true;
          failures = 0;
          yield event;
          if (TERMINAL.has(event.event)) return;
        }
      } catch (error) {
        if (options.signal?.aborted) throw error;
        broke = true; // the connection broke mid-stream: resume after the last event handed out
      }
      if (!broke && !received) {
        // Ended with nothing new: the job may be over, its terminal event before `last`.
        const job = await unwrap(
          this.api.GET("/api/v2/generate/jobs/{job_id}", { params: { path: { job_id: jobId } } }),
        );
        if (job.status !== "queued" && job.status !== "running") return;
      } else if (broke) {
        if (failures >= maxReconnects) {
          throw new Error(`job ${jobId}: the event stream kept dropping after event ${last}`);
        }
        failures += 1;
      }
      await sleep(retryDelayMs);
    }
  }
}

function isRefresh(request: Request): boolean {
  return new URL(request.url).pathname.endsWith("/api/v2/auth/refresh");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What a 429's `Retry-After` (seconds) asks for, at most `cap`; `fallback` without one. */
function retryAfterMs(response: Response, fallback: number, cap: number): number {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds * 1000, cap) : fallback;
}

/** Server-Sent Events (the WHATWG format) from a byte stream; comments are keep-alives. */
export async function* parseEventStream(body: ReadableStream<Uint8Array>): AsyncGenerator<JobEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let fields: { id?: string; event?: string; data: string[] } = { data: [] };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (fields.data.length > 0 && fields.id !== undefined) {
            yield {
              id: Number(fields.id),
              event: (fields.event ?? "message") as JobEvent["event"],
              data: JSON.parse(fields.data.join("\n")),
            } as JobEvent;
          }
          fields = { data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        const raw = colon < 0 ? "" : line.slice(colon + 1);
        const text = raw.startsWith(" ") ? raw.slice(1) : raw;
        if (name === "data") fields.data.push(text);
        else if (name === "id") fields.id = text;
        else if (name === "event") fields.event = text;
      }
    }
  } finally {
    // Stopped early (or done): close the connection, or the server holds the stream's slot.
    await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
