-- 008 (PostgreSQL: no WITHOUT ROWID): votes. One per person per paper per channel, 1 (👍) or -1 (👎); changing a vote
-- replaces it, clicking it again removes it. A channel's votes are what it likes.

CREATE TABLE votes (
    channel_id  TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    paper_id    INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    guild_id    TEXT NOT NULL,
    value       INTEGER NOT NULL CHECK (value IN (-1, 1)),
    voted_at    TEXT NOT NULL,
    PRIMARY KEY (channel_id, user_id, paper_id)
);

CREATE INDEX votes_by_guild ON votes (guild_id, voted_at);
