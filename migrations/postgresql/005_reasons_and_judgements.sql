-- 005 (PostgreSQL: double precision): why each paper was picked, and an LLM's verdicts on close calls.
-- Why separate columns: `relevance` is what decides (digests, search filters), and
-- inside the judge's band it follows the judge's verdict. Keeping the offline model's
-- own score and reason lets a re-score, a band change or turning the judge off and on
-- re-apply or withdraw stored verdicts without paying again.

ALTER TABLE papers ADD COLUMN score DOUBLE PRECISION;        -- the offline model's relevance
ALTER TABLE papers ADD COLUMN reason TEXT;       -- the offline model's strongest evidence
ALTER TABLE papers ADD COLUMN verdict TEXT;      -- 'judge: ...' while a verdict decides
ALTER TABLE papers ADD COLUMN decided_by TEXT;   -- 'model', 'judge', or 'model; judge failed: ...'
UPDATE papers SET score = relevance;
CREATE INDEX papers_judged ON papers (decided_by) WHERE decided_by = 'judge';

CREATE TABLE judgements (
    paper_id           INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model              TEXT NOT NULL,
    prompt_version     TEXT NOT NULL,
    relevant           INTEGER NOT NULL CHECK (relevant IN (0, 1)),
    topics             TEXT NOT NULL,      -- JSON array of topic tags
    reason             TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,   -- this paper's share of its request
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    created_at         TEXT NOT NULL,
    PRIMARY KEY (paper_id, model, prompt_version)
);

-- Same lease as summary_claims: two polls at once never pay twice for a verdict.
CREATE TABLE judgement_claims (
    paper_id        INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model           TEXT NOT NULL,
    prompt_version  TEXT NOT NULL,
    claimed_until   TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    wasted_prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    wasted_completion_tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (paper_id, model, prompt_version)
);
