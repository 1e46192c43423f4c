"""Settings values the suites share."""

TEST_JWT_SECRET = "test-secret-test-secret-test-secret-0123"
# For suites that are not about rate limits.
GENEROUS_LIMITS = {
    f"rate_limit_{name}": "100000/minute"
    for name in (
        "auth_login", "auth_register", "auth_password_forgot", "auth_verify_request",
        "default_user", "default_anonymous", "stripe_webhook", "generate_agentic",
        "generate_fullstack", "admin",
    )
}  # fmt: skip
# Jobs that beat, go stale and are reaped within seconds.
FAST_JOBS = {
    "job_heartbeat_s": 0.2,
    "job_stale_after_s": 1.5,
    "job_reaper_interval_s": 0.3,
    "job_cancel_wait_s": 5,
}
# The admin the admin and contract suites configure.
ADMIN_EMAIL, ADMIN_PASSWORD = "root@example.com", "Admin-Pass-1"
