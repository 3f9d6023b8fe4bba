-- 012: a channel can take its digest's papers in a thread under the day's header.

ALTER TABLE subscriptions ADD COLUMN thread INTEGER NOT NULL DEFAULT 0;
