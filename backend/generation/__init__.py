"""What writes code: the full-stack generator, the job runner and its events; no HTTP."""
