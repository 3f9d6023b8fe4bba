-- 002: LLM summaries, paid for once per (paper, model, prompt version).
-- Why a claim table: two polls running at once (a restart overlapping a
-- cron'd `fetch`, say) must not both pay for the same paper. A worker claims a
-- paper before calling the model; a claim older than its lease is free again.

CREATE TABLE summaries (
    paper_id           INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    prompt_version     TEXT NOT NULL,
    tldr               TEXT NOT NULL,
    bullets            TEXT NOT NULL,      -- JSON array of exactly three strings
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    PRIMARY KEY (paper_id, model, prompt_version)
);
CREATE INDEX summaries_by_paper ON summaries (paper_id, created_at);

CREATE TABLE summary_claims (
    paper_id        INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model           TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    claimed_until   TEXT NOT NULL,         -- ISO 8601 UTC; free again after this
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    -- tokens paid for answers that could not be used, so `stats` shows the real spend
    wasted_prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    wasted_completion_tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (paper_id, model, prompt_version)
);
