-- Failed logins per (normalised) email, to throttle password guessing across instances.
-- Rows older than the throttling window are deleted whenever that email fails again or
-- logs in successfully.
CREATE TABLE login_failures (
    email     text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email_idx ON login_failures (email, failed_at);
