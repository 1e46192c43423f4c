"""The full-stack generator and the job kind that runs it."""
