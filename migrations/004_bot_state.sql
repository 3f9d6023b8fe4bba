-- 004: small facts the running service records about itself, read by `health` and
-- used to skip needless global command syncs (Discord rate-limits them).

CREATE TABLE bot_state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
