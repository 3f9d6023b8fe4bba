"""What a careful reader settling the close calls would make of the labelled days.

    python bench/bench_second_reading.py                 # the default band, 0.15 to 0.85
    python bench/bench_second_reading.py --low 0.10      # another band

No model is reachable from the machines this project is built on, so the LLM judge has
never been measured against a real model here. This script measures its stand-in: a
blind second reading of the close calls (bench/data/second-reading.tsv: one verdict per
paper, made from the title and abstract against bot/data/relevance.md with the labels
hidden). It runs the leave-one-day-out evaluation, replaces the offline decision of
every paper in the band with the reading's verdict, exactly as the service lets a
judge's verdict decide, and scores both against the labels. A band paper without a
verdict keeps its offline decision, and so does a paper the judge prompt uses as an
example (the file holds five; they never count). It also lists every paper in the band
where the reading and the label differ. Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.classify import Quality  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.judge import in_band, score_verdicts  # noqa: E402
from bot.training import cross_validate, load_labelled_days  # noqa: E402
from bot.vocabulary import load_vocabulary  # noqa: E402

LABELS = ROOT / "tests" / "fixtures" / "arxiv"
READING = ROOT / "bench" / "data" / "second-reading.tsv"
READER = "second reading"
BORDERLINE = "[borderline]"  # the labeller's mark on a close call


def read_verdicts(path: Path) -> dict[str, bool]:
    verdicts: dict[str, bool] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle, delimiter="\t"), 2):
            arxiv_id, relevant = row.get("arxiv_id"), row.get("relevant")
            if not arxiv_id or relevant not in ("0", "1") or arxiv_id in verdicts:
                sys.exit(f"{path}:{number}: needs a new arxiv_id and relevant 0 or 1")
            verdicts[arxiv_id] = relevant == "1"
    return verdicts


def main() -> None:
    defaults = Settings.model_fields
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--low", type=float, default=defaults["judge_band_low"].default)
    parser.add_argument("--high", type=float, default=defaults["judge_band_high"].default)
    args = parser.parse_args()
    if not 0 <= args.low < args.high <= 1:
        parser.error("the band needs 0 <= --low < --high <= 1")

    verdicts = read_verdicts(READING)
    results = cross_validate(load_labelled_days(LABELS), load_vocabulary())
    pooled = score_verdicts(results, verdicts, args.low, args.high, READER)

    print(f"{'held-out day':<14}{'band':>6}{'read':>6}{'F1 offline':>12}{'F1 with reading':>17}")
    per_day: dict[str, float] = {}
    for result in results:
        day = score_verdicts([result], verdicts, args.low, args.high, READER)
        per_day[result.day] = round(day.combined.f1, 3)
        print(
            f"{result.day:<14}{day.band:>6}{day.judged:>6}"
            f"{day.offline.f1:>12.2f}{day.combined.f1:>17.2f}"
        )
    print(
        f"In the band {args.low:.2f}-{args.high:.2f}: {pooled.band} papers, {pooled.judged} read;"
        f" offline right on {pooled.right_offline}, the reading on {pooled.right_judge}."
    )
    borderline = {
        p.arxiv_id for r in results for p, _ in r.scored if p.reason.startswith(BORDERLINE)
    }
    close = score_verdicts(
        results, {i: v for i, v in verdicts.items() if i in borderline}, args.low, args.high, READER
    )
    print(
        f"Of them marked {BORDERLINE} by the labeller: {close.judged} read;"
        f" offline right on {close.right_offline}, the reading on {close.right_judge}."
    )
    for paper, score in in_band(results, args.low, args.high):
        if verdicts.get(paper.arxiv_id, paper.relevant) != paper.relevant:
            print(
                f"  differs: {paper.arxiv_id} score {score:.2f} label {int(paper.relevant)}"
                f" reading {int(not paper.relevant)} | {paper.reason[:90]}"
            )
    for name, quality in (("offline", pooled.offline), ("with reading", pooled.combined)):
        print(
            f"Pooled {name + ':':<14}P {quality.precision:.2f} R {quality.recall:.2f}"
            f" F1 {quality.f1:.2f}"
        )
    print(
        json.dumps(
            {
                "band": [args.low, args.high],
                "band_papers": pooled.band,
                "read": pooled.judged,
                "right_offline": pooled.right_offline,
                "right_reading": pooled.right_judge,
                "offline": _figures(pooled.offline),
                "with_reading": _figures(pooled.combined),
                "per_day_f1_with_reading": per_day,
            }
        )
    )


def _figures(quality: Quality) -> dict[str, float]:
    return {
        "precision": round(quality.precision, 3),
        "recall": round(quality.recall, 3),
        "f1": round(quality.f1, 3),
    }


if __name__ == "__main__":
    main()
