"""The learned relevance model: honest quality on held-out days, reasons, re-scoring,
and the training and evaluation commands with bad input."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.classify import TOPICS, Classifier, load_classifier, load_model
from bot.models import Judgement, JudgeScope
from bot.pipeline import classify_pending
from bot.store import Store
from bot.training import cross_validate, load_labelled_days, pooled
from bot.vocabulary import load_vocabulary
from tests.helpers import FIXTURES, ROOT, make_paper, run_bot

LABELS = FIXTURES / "arxiv"


def recorded_pooled_f1() -> float:
    """The figure BENCHMARKS.md records for the shipped pipeline."""
    text = (ROOT / "BENCHMARKS.md").read_text()
    match = re.search(r"pooled leave-one-day-out F1: (\d\.\d+)", text)
    assert match, "BENCHMARKS.md must record 'pooled leave-one-day-out F1: X.XX'"
    return float(match.group(1))


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return load_classifier()


@pytest.mark.slow
def test_leave_one_day_out_quality_holds(report_line: Callable[[str], None]) -> None:
    """Every day scored by a model trained (threshold included) on the other nine."""
    days = load_labelled_days(LABELS)
    assert len(days) == 10
    results = cross_validate(days, load_vocabulary())
    for r in results:
        q = r.quality
        report_line(
            f"held-out {r.day}: P {q.precision:.2f} R {q.recall:.2f} F1 {q.f1:.2f}"
            f" tags {r.tags_shared}/{r.tags_total}"
        )
    quality = pooled(results)
    shared = sum(r.tags_shared for r in results)
    total = sum(r.tags_total for r in results)
    report_line(
        f"classifier, leave one day out, pooled over {len(days)} days: P {quality.precision:.2f}"
        f" R {quality.recall:.2f} F1 {quality.f1:.2f}; tags {shared}/{total}"
    )
    assert quality.f1 >= recorded_pooled_f1() - 0.05
    assert shared / total >= 0.8


def test_scores_topics_and_reasons_follow_the_text(classifier: Classifier) -> None:
    quantized = classifier.classify(
        "GPTQ-style 4-bit post-training quantization for LLMs",
        "We quantize weights to 4 bits and cut memory by 3x with no accuracy loss.",
    )
    unrelated = classifier.classify(
        "A benchmark of clinical question answering agents",
        "We release a dataset of patient questions and evaluate agentic systems.",
    )
    assert 0.0 <= unrelated.relevance < 0.5 < quantized.relevance <= 1.0
    assert "quantization" in quantized.topics
    assert quantized.reason.startswith("title: ") and "quantiz" in quantized.reason
    assert unrelated.reason.startswith("against: ")
    # Vector quantization in generative models is not model compression.
    vq = classifier.classify(
        "Vector-quantized tokenizers for image generation",
        "We train a VQ-VAE whose vector quantization codebook yields better images.",
    )
    assert vq.relevance < 0.5


def test_every_relevant_paper_has_a_topic_and_a_reason(classifier: Classifier) -> None:
    for day in load_labelled_days(LABELS)[:3]:
        for paper in day.papers:
            result = classifier.classify(paper.title, paper.abstract)
            assert set(result.topics) <= set(TOPICS)
            if result.relevance >= 0.5:
                assert result.topics, paper.arxiv_id
                assert result.reason and len(result.reason) < 200, paper.arxiv_id


async def test_a_new_model_rescores_stored_papers(store: Store, tmp_path: Path) -> None:
    await store.upsert_papers([make_paper("2511.00010", "Zebrafish chips")])
    default = load_classifier()
    assert await classify_pending(store, default) == 1
    assert await classify_pending(store, default) == 0  # already scored by this version
    paper = await store.get_paper("2511.00010")
    assert paper is not None and paper.relevance is not None and paper.relevance < 0.5

    # A model that has learned that zebrafish matter: a new version, so everything is
    # scored again, and the paper becomes relevant with a reason naming the word.
    model = json.loads((ROOT / "bot" / "data" / "relevance-model.json").read_text())
    model["weights"]["t:zebrafish"] = 40.0
    custom = tmp_path / "model.json"
    custom.write_text(json.dumps(model))
    zebra = load_classifier(model_path=custom)
    assert zebra.version != default.version
    assert await classify_pending(store, zebra) == 1
    paper = await store.get_paper("2511.00010")
    assert paper is not None and paper.relevance > 0.5
    assert paper.reason == "title: zebrafish" and paper.decided_by == "model"


async def test_stored_verdicts_survive_a_rescore(store: Store) -> None:
    """A verdict paid for once keeps deciding after the model changes: the re-score and
    the verdict land in one write."""
    await store.upsert_papers([make_paper("2511.00011", "Cheap routing across LLMs")])
    classifier = load_classifier()
    await classify_pending(store, classifier)
    paper = await store.get_paper("2511.00011")
    assert paper is not None and paper.score is not None
    scope = JudgeScope("m", "p1", 0.0, 1.0)
    await store.claim_judgement("2511.00011", "m", "p1")
    await store.save_judgements(
        [Judgement("2511.00011", True, ("inference-serving",), "routes to cheap models")], scope
    )
    paper = await store.get_paper("2511.00011")
    assert paper is not None and paper.relevance >= 0.5 and paper.decided_by == "judge"
    assert paper.topics == ("inference-serving",)
    # Re-score everything (as a model upgrade does): the verdict is applied again.
    await store.save_classifications(
        [("2511.00011", classifier.classify_paper(paper))], "another-version", scope
    )
    paper = await store.get_paper("2511.00011")
    assert paper is not None and paper.relevance >= 0.5
    assert paper.reason == "judge: routes to cheap models"


def test_vocabulary_file_still_can_be_overridden(tmp_path: Path) -> None:
    custom = tmp_path / "vocab.toml"
    custom.write_text('[scoring]\ntag_min = 1.0\n[topics.hardware]\n"zebrafish" = 5.0\n')
    classifier = load_classifier(vocabulary_path=custom)
    assert classifier.version != load_classifier().version
    assert classifier.vocabulary.topics("Zebrafish chips", "") == ("hardware",)
    with pytest.raises(ValueError, match="unknown topics"):
        bad = tmp_path / "bad.toml"
        bad.write_text('[topics.astrology]\n"stars" = 1.0\n')
        load_vocabulary(bad)


def _labelled_days(target: Path, days: tuple[str, ...] = ("2025-06-18", "2025-08-20")) -> Path:
    target.mkdir()
    for day in days:
        for name in (f"{day}.jsonl", f"labels-{day}.tsv", f"rationale-{day}.tsv"):
            shutil.copy(LABELS / name, target / name)
    return target


@pytest.mark.loopback
def test_training_is_one_reproducible_command(tmp_path: Path) -> None:
    labels = _labelled_days(tmp_path / "labels")
    first = run_bot(["train-classifier", "--labels", str(labels), "--output", "m1.json"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Trained on 2 days (195 papers, 18 relevant)" in first.stdout
    again = run_bot(["train-classifier", "--labels", str(labels), "--output", "m2.json"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "m1.json").read_bytes() == (tmp_path / "m2.json").read_bytes()
    model = load_model(tmp_path / "m1.json")
    assert model.metadata["trained_on"] == ["2025-06-18", "2025-08-20"]
    assert 0 < model.threshold < 1

    # The new model is used when configured, and evaluating it on its own training days
    # says that the figures flatter it.
    evaluated = run_bot(
        ["evaluate", "--labels", str(labels)],
        tmp_path,
        {"RELEVANCE_MODEL_PATH": str(tmp_path / "m1.json")},
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert model.version in evaluated.stdout
    assert "trained on 2 of these days" in evaluated.stdout
    assert re.search(r"^pooled\s+195\s+18\s", evaluated.stdout, re.M)


@pytest.mark.loopback
def test_cross_validation_command_prints_every_held_out_day(tmp_path: Path) -> None:
    labels = _labelled_days(tmp_path / "labels", ("2025-06-18", "2025-08-20", "2025-12-10"))
    result = run_bot(
        ["evaluate", "--labels", str(labels), "--cross-validate", "--errors"], tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^2025-06-18\s+96\s+12\s+\d\.\d\d", result.stdout, re.M)
    assert re.search(r"^2025-08-20\s+99\s+6\s+\d\.\d\d", result.stdout, re.M)
    assert re.search(r"^2025-12-10\s+88\s+6\s+\d\.\d\d", result.stdout, re.M)
    assert re.search(r"^tags: \d+/24 labelled-relevant papers", result.stdout, re.M)


@pytest.mark.parametrize(
    ("broken", "content", "message"),
    [
        (
            "labels-2025-06-18.tsv",
            "arxiv_id\trelevant\ttopics\n9999.99999\t1\t\n",
            "labels-2025-06-18.tsv:2: '9999.99999' is not in the day's listing",
        ),
        (
            "labels-2025-06-18.tsv",
            "arxiv_id\ttopics\n2506.14111\t\n",
            "labels-2025-06-18.tsv:1: missing column relevant",
        ),
        (
            "labels-2025-06-18.tsv",
            "arxiv_id\trelevant\ttopics\n{first}\t2\t\n",
            "labels-2025-06-18.tsv:2: relevant must be 0 or 1, not '2'",
        ),
        (
            "labels-2025-06-18.tsv",
            "arxiv_id\trelevant\ttopics\n{first}\t1\tastrology\n",
            "labels-2025-06-18.tsv:2: unknown topic astrology",
        ),
        (
            "2025-06-18.jsonl",
            "{first_line}\nthis is not json\n",
            "2025-06-18.jsonl:2: not a JSON line",
        ),
    ],
)
@pytest.mark.loopback
def test_bad_labels_name_the_file_and_line_and_write_nothing(
    tmp_path: Path, broken: str, content: str, message: str
) -> None:
    labels = _labelled_days(tmp_path / "labels")
    first_line = (labels / "2025-06-18.jsonl").read_text().splitlines()[0]
    first = json.loads(first_line)["id"]
    if isinstance(content, bytes):
        (labels / broken).write_bytes(content)
    else:
        (labels / broken).write_text(content.format(first=first, first_line=first_line))
    message = message.format(first=first)
    commands = [["train-classifier", "--labels", str(labels), "--output", "model.json"]]
    if broken == "labels-2025-06-18.tsv" and "9999" in str(content):  # one shared loader
        commands.append(["evaluate", "--labels", str(labels)])
    for command in commands:
        result = run_bot(command, tmp_path)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [f"error: {labels / message}"]
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "model.json").exists()


@pytest.mark.loopback
def test_missing_or_corrupt_model_file_is_one_line(tmp_path: Path) -> None:
    corrupt = tmp_path / "model.json"
    corrupt.write_text('{"format": 1, "weights": {"t:x": "heavy"}}')
    result = run_bot(["classify"], tmp_path, {"RELEVANCE_MODEL_PATH": str(corrupt)})
    assert result.returncode == 2
    assert not (tmp_path / "data").exists()  # stopped before the database was created
    assert result.stderr.startswith(f"error: {corrupt}: not a usable relevance model")
    assert len(result.stderr.strip().splitlines()) == 1
    missing = run_bot(["classify"], tmp_path, {"RELEVANCE_MODEL_PATH": str(tmp_path / "no.json")})
    assert missing.returncode == 2
    assert "RELEVANCE_MODEL_PATH: no file at" in missing.stderr
    no_labels = run_bot(["evaluate", "--labels", str(tmp_path / "nowhere")], tmp_path)
    assert no_labels.returncode == 2 and "not a folder" in no_labels.stderr
