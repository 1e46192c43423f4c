/**
 * What the React app does, start to end: register, sign in, create a project, start a
 * fullstack job and print its events as they come. Runs the same under Node and in a browser.
 */
import {
  ApiProblem,
  Devora,
  SessionEnded,
  idempotent,
  memoryTokens,
  newIdempotencyKey,
  unwrap,
  type JobEvent,
} from "../src/index.js";

export interface QuickstartResult {
  email: string;
  projectId: string;
  jobId: string;
  refreshes: number;
  events: Array<Pick<JobEvent, "id" | "event">>;
  resumedFrom: number;
  duplicateEmailCode: string;
  finalStatus: string;
  sessionEnded: string;
}

export async function quickstart(
  baseUrl: string,
  print: (line: string) => void,
): Promise<QuickstartResult> {
  let refreshes = 0;
  const countingFetch: typeof fetch = (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    if (url.endsWith("/api/v2/auth/refresh")) refreshes += 1;
    return fetch(input, init);
  };
  const devora = new Devora({ baseUrl, fetch: countingFetch });
  const api = devora.api;

  const email = `ada-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
  const password = "Correct-Horse-9";
  await unwrap(api.POST("/api/v2/auth/register", { body: { email, password, full_name: "Ada" } }));
  print(`registered ${email}`);

  // A problem is a typed error: branch on its code.
  let duplicateEmailCode = "";
  try {
    await unwrap(api.POST("/api/v2/auth/register", { body: { email, password } }));
  } catch (error) {
    if (!(error instanceof ApiProblem)) throw error;
    duplicateEmailCode = error.code;
    print(`registering again: ${error.status} ${error.code}`);
  }

  await devora.login(email, password);
  const me = await unwrap(api.GET("/api/v2/auth/me"));
  print(`signed in as ${me.email}`);

  // An access token that went stale: three calls at once share one refresh.
  const tokens = devora.tokens.get();
  if (tokens === null) throw new Error("not signed in");
  devora.tokens.set({ ...tokens, access_token: `${tokens.access_token}x` });
  await Promise.all([
    unwrap(api.GET("/api/v2/auth/me")),
    unwrap(api.GET("/api/v2/projects")),
    unwrap(api.GET("/api/v2/generate/usage")),
  ]);
  print(`three calls with a stale token, refreshes: ${refreshes}`);

  const project = await unwrap(
    api.POST("/api/v2/projects", { body: { name: "Shop", description: "A small shop" } }),
  );
  print(`created project ${project.id}`);

  const key = newIdempotencyKey();
  const spec = {
    project_name: "Shop",
    data_models: [{ name: "Product", fields: [{ name: "title", type: "string" as const }] }],
    framework: "fastapi" as const,
    database: "sqlite" as const,
  };
  const job = await unwrap(
    api.POST("/api/v2/generate/fullstack", { body: spec, headers: idempotent(key) }),
  );
  const again = await unwrap(
    api.POST("/api/v2/generate/fullstack", { body: spec, headers: idempotent(key) }),
  );
  if (again.id !== job.id) throw new Error("the same Idempotency-Key started a second job");
  print(`started job ${job.id} (retried with the same key: same job)`);

  // Follow the events; stop after two as if the connection dropped, then resume.
  const events: QuickstartResult["events"] = [];
  for await (const event of devora.jobEvents(job.id)) {
    events.push({ id: event.id, event: event.event });
    print(`event ${event.id} ${event.event}`);
    if (events.length === 2) break;
  }
  const resumedFrom = events[events.length - 1]?.id ?? 0;
  let finalStatus = "";
  for await (const event of devora.jobEvents(job.id, { lastEventId: resumedFrom })) {
    events.push({ id: event.id, event: event.event });
    if (event.event === "file") print(`event ${event.id} file ${event.data.path}`);
    else print(`event ${event.id} ${event.event}`);
    if (event.event === "done") finalStatus = event.data.status;
    if (event.event === "error") finalStatus = `failed: ${event.data.code}`;
  }
  print(`job ended: ${finalStatus}`);

  // Someone replays the refresh token this client already spent: the server ends that login
  // everywhere, and the client that finds out says so instead of retrying.
  let sessionEnded = "";
  const thief = new Devora({
    baseUrl,
    tokens: memoryTokens({ ...tokens, access_token: `${tokens.access_token}x` }),
    onSessionEnd: (reason) => (sessionEnded = reason),
  });
  try {
    await unwrap(thief.api.GET("/api/v2/auth/me"));
  } catch (error) {
    if (!(error instanceof SessionEnded)) throw error;
  }
  const after = await api.GET("/api/v2/auth/me");
  print(`replayed a spent refresh token: ${sessionEnded}; our session now: ${after.response.status}`);
  return {
    email, projectId: project.id, jobId: job.id, refreshes, events, resumedFrom,
    duplicateEmailCode, finalStatus, sessionEnded,
  };
}
