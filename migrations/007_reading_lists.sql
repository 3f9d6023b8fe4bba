-- 007: reading lists. One list per person, and one per channel whose subscription
-- shares a list; entries keep the order they were saved in (the export lists a month's
-- papers in that order, as hand-kept lists do) and the notes an imported list carried.

CREATE TABLE reading_list_entries (
    id INTEGER PRIMARY KEY,                    -- save order
    owner_kind TEXT NOT NULL CHECK (owner_kind IN ('user', 'channel')),
    owner_id TEXT NOT NULL,                    -- a Discord user or channel id
    arxiv_id TEXT NOT NULL REFERENCES papers (arxiv_id),
    notes TEXT,                                -- an imported list's Notes block; NULL: none
    saved_at TEXT NOT NULL,
    UNIQUE (owner_kind, owner_id, arxiv_id)
);

ALTER TABLE subscriptions ADD COLUMN shared_list INTEGER NOT NULL DEFAULT 0;

-- A paper someone saved by id that no poll brought (maybe outside the polled categories)
-- is searchable, but never a digest's, the archive's or a topic count's: a private save
-- must not surface in public. A poll that meets it later makes it an ordinary paper.
ALTER TABLE papers ADD COLUMN from_poll INTEGER NOT NULL DEFAULT 1;
