-- 010: a role a channel's digest mentions, by an admin's explicit choice.

ALTER TABLE subscriptions ADD COLUMN mention_role TEXT;  -- a role id; NULL: no mention
