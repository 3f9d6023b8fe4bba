-- 009: a weekly digest of a channel's most liked papers, on Mondays at its digest time.
-- Its messages are recorded like any digest's (kind 'papers', no digest_papers rows: its
-- papers were delivered already) and posted with the same lease and nonces.

ALTER TABLE subscriptions ADD COLUMN weekly INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN next_weekly_at TEXT;  -- NULL: no weekly digest
