// Before the tests: the test database gets every migration, as `npm run migrate` applies them.
import { migrate } from "../scripts/migrate.mjs";

export default async function setup(): Promise<void> {
  await migrate();
}
