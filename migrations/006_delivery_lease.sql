-- 006: one delivery at a time per subscription, and how long a channel has been failing.
-- Why a lease in the database: a scheduled digest and `/digest now` (or two processes)
-- must never post the same messages twice; a holder that dies frees it when it expires.

ALTER TABLE subscriptions ADD COLUMN delivering_until TEXT;  -- lease end (UTC); NULL or past: free
ALTER TABLE subscriptions ADD COLUMN delivering_by TEXT;     -- the holder's token
ALTER TABLE subscriptions ADD COLUMN failing_since TEXT;     -- first transient failure not yet overcome
ALTER TABLE subscriptions ADD COLUMN retry_at TEXT;          -- no attempt before this (backoff)
