-- 003: channel subscriptions and the digests delivered to them.
-- Why digests are stored with their rendered messages: a restart in the middle of
-- posting resumes at the first unsent message with exactly the same text, and the
-- (subscription, paper) key makes a paper reach a channel once, by construction.

CREATE TABLE subscriptions (
    id             INTEGER PRIMARY KEY,
    guild_id       TEXT NOT NULL,
    channel_id     TEXT NOT NULL UNIQUE,
    topics         TEXT NOT NULL DEFAULT '[]',   -- JSON array; empty means every topic
    digest_time    TEXT NOT NULL,                -- HH:MM, UTC
    min_score      REAL NOT NULL,
    post_empty     INTEGER NOT NULL DEFAULT 0,   -- post a short note on days without papers
    status         TEXT NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'paused', 'deleted')),
    status_reason  TEXT,
    starts_on      TEXT NOT NULL,                -- first listing day its first digest covers
    next_due_at    TEXT NOT NULL,                -- ISO 8601 UTC
    last_digest_at TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE INDEX subscriptions_by_guild ON subscriptions (guild_id);
CREATE INDEX subscriptions_due ON subscriptions (status, next_due_at);

CREATE TABLE digests (
    id               INTEGER PRIMARY KEY,
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL CHECK (kind IN ('papers', 'empty', 'arxiv-down')),
    paper_count      INTEGER NOT NULL,           -- shown and mentioned-as-more together
    created_at       TEXT NOT NULL,
    finished_at      TEXT                        -- NULL until every message is posted
);
CREATE INDEX digests_unfinished ON digests (subscription_id, finished_at);

CREATE TABLE digest_papers (
    subscription_id  INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    paper_id         INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    digest_id        INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    position         INTEGER NOT NULL,           -- rank in the digest, from 0
    PRIMARY KEY (subscription_id, paper_id)      -- a paper reaches a channel once
) WITHOUT ROWID;

CREATE TABLE digest_messages (
    digest_id   INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    payload     TEXT NOT NULL,                   -- JSON: content, embeds, summary buttons
    message_id  TEXT,                            -- Discord's id once posted
    sent_at     TEXT,
    PRIMARY KEY (digest_id, position)
) WITHOUT ROWID;
