-- 011: people following an author or a phrase. A match reaches them by direct message, or
-- as a mention in the digest of the channel where they set the watch, as they chose; a
-- person whose DMs are closed is mentioned instead (told why, once).

CREATE TABLE watches (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    guild_id    TEXT NOT NULL,
    channel_id  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('author', 'phrase')),
    text        TEXT NOT NULL,
    by_dm       INTEGER NOT NULL,
    dms_closed  INTEGER NOT NULL DEFAULT 0,  -- 1: DMs refused; 2: and the mention said so
    created_at  TEXT NOT NULL,
    UNIQUE (user_id, kind, text)
);

-- A paper that matched a watch, once; its direct message, when it went by DM.
CREATE TABLE watch_hits (
    watch_id   INTEGER NOT NULL REFERENCES watches (id) ON DELETE CASCADE,
    paper_id   INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    notice_id  INTEGER REFERENCES watch_notices (id),
    PRIMARY KEY (watch_id, paper_id)
) WITHOUT ROWID;

-- One direct message per person per round of matches, recorded before it is sent.
CREATE TABLE watch_notices (
    id          INTEGER PRIMARY KEY,
    user_id     TEXT NOT NULL,
    payload     TEXT NOT NULL,
    message_id  TEXT,            -- Discord's, once sent
    refused     INTEGER NOT NULL DEFAULT 0
);

-- Papers watches have not been matched against yet. Papers stored before this release count
-- as matched (watches follow papers arriving from now on); polls store new ones unmatched,
-- and a paper fetched by id is matched once a poll meets it.
ALTER TABLE papers ADD COLUMN watched INTEGER NOT NULL DEFAULT 1;
CREATE INDEX papers_unwatched ON papers (id) WHERE watched = 0;
