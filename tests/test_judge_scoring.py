"""How verdicts on close calls are scored against labels, apart from any model: the
same arithmetic serves `evaluate --judge` and the second-reading benchmark."""

from __future__ import annotations

from bot.classify import measure
from bot.judge import EXAMPLE_IDS, score_verdicts
from bot.training import DayResult, LabelledPaper


def test_verdicts_decide_inside_the_band_only_and_missing_ones_keep_the_offline_decision() -> None:
    def paper(arxiv_id: str, relevant: bool) -> LabelledPaper:
        return LabelledPaper(arxiv_id, "t", "a", relevant, ())

    example = next(iter(EXAMPLE_IDS))
    scored = [
        (paper("2501.00001", True), 0.95),  # above the band: offline relevant, stays
        (paper("2501.00002", True), 0.40),  # in the band, offline wrong, verdict right
        (paper("2501.00003", False), 0.60),  # in the band, offline wrong, no verdict
        (paper("2501.00004", False), 0.05),  # below the band: a verdict here is ignored
        (paper(example, True), 0.30),  # a prompt example: never judged
        (paper("2501.00005", False), 0.85),  # on the band's edge: judged
    ]
    day = DayResult("2025-01-01", len(scored), measure([], []), 0, 0, 0.3, scored)
    verdicts = {"2501.00002": True, "2501.00004": True, example: True, "2501.00005": False}
    result = score_verdicts([day], verdicts, 0.15, 0.85, "reader")
    assert (result.band, result.judged) == (3, 2)
    assert (result.right_offline, result.right_judge) == (0, 2)
    assert result.offline.true_positives == 1 and result.offline.false_positives == 2
    assert result.combined.true_positives == 2  # 00001 and the judged 00002
    assert result.combined.false_positives == 1  # 00003 keeps its offline decision
    assert result.combined.false_negatives == 1  # the example keeps its offline decision
