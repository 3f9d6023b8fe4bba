-- 013: forum channels. A forum subscription posts each paper as a forum post, tagged with
-- the forum's tags that match its topics (created first when the admin asked for that).

ALTER TABLE subscriptions ADD COLUMN forum INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscriptions ADD COLUMN create_tags INTEGER NOT NULL DEFAULT 0;
