"""Learning the relevance model from labelled days, and measuring it honestly.

A labelled day is an arXiv listing (`DATE.jsonl`) with a label per paper
(`labels-DATE.tsv`: arxiv_id, relevant 0/1, topics). Quality is only ever measured on
days the model did not see: `cross_validate` leaves each day out in turn and runs
the whole pipeline on the rest, threshold choice included.

Training needs scikit-learn (the `train` extra); scoring does not.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.classify import Classifier, Quality, RelevanceModel, measure, quality_from_counts
from bot.features import PaperFeatures, extract_features
from bot.vocabulary import TOPICS, Vocabulary

REGULARIZATION_C = 4.0  # inverse L2 strength; 4, 16 and 64 gave pooled F1 0.698, 0.695, 0.688
MIN_DOCUMENTS = 2  # a feature seen in fewer training papers is left out of the model
MIN_WEIGHT = 0.02  # smaller weights change no decision on the labelled days; dropped
MIN_TOPIC_PAPERS = 3  # a topic model needs this many relevant papers with and without it
_TOPIC_FEATURES = ("t:", "vt:", "va:", "claim:")
THRESHOLDS = [round(0.05 + 0.01 * i, 2) for i in range(86)]  # 0.05 .. 0.90


class TrainingUnavailable(Exception):
    """scikit-learn is not installed: training and cross-validation need the `train` extra."""


class LabelsError(Exception):
    """A labels or listing file cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelledPaper:
    arxiv_id: str
    title: str
    abstract: str
    relevant: bool
    topics: tuple[str, ...]
    reason: str = ""  # the labeller's one line, for relevant papers and close calls


@dataclass(frozen=True, slots=True)
class LabelledDay:
    day: str
    papers: tuple[LabelledPaper, ...]


def _read_listing(path: Path) -> dict[str, tuple[str, str]]:
    if not path.is_file():
        raise LabelsError(f"{path}: no listing file for this labels file")
    listing: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                arxiv_id, title, abstract = row["id"], row["title"], row["summary"]
                if not all(isinstance(v, str) for v in (arxiv_id, title, abstract)):
                    raise TypeError
            except json.JSONDecodeError:
                raise LabelsError(f"{path}:{number}: not a JSON line") from None
            except (KeyError, TypeError):
                raise LabelsError(
                    f"{path}:{number}: a listing line needs string fields id, title, summary"
                ) from None
            listing[arxiv_id] = (title, abstract)
    return listing


def _read_reasons(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        header = handle.readline().rstrip("\r\n").split("\t")
        if "arxiv_id" not in header or "reason" not in header:
            raise LabelsError(f"{path}:1: a rationale file needs columns arxiv_id and reason")
        handle.seek(0)
        return {
            row["arxiv_id"]: row.get("reason") or ""
            for row in csv.DictReader(handle, delimiter="\t")
        }


def _read_labels(path: Path, listing: dict[str, tuple[str, str]]) -> list[tuple[str, bool, tuple]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, [])
        missing = [c for c in ("arxiv_id", "relevant", "topics") if c not in header]
        if missing:
            raise LabelsError(f"{path}:1: missing column {', '.join(missing)}")
        at = {name: header.index(name) for name in ("arxiv_id", "relevant", "topics")}
        rows = []
        seen: set[str] = set()
        for number, row in enumerate(reader, 2):
            if not any(cell.strip() for cell in row):
                continue
            row = row + [""] * (len(header) - len(row))
            arxiv_id, relevant = row[at["arxiv_id"]].strip(), row[at["relevant"]].strip()
            if arxiv_id not in listing:
                raise LabelsError(f"{path}:{number}: {arxiv_id!r} is not in the day's listing")
            if arxiv_id in seen:
                raise LabelsError(f"{path}:{number}: {arxiv_id} is labelled twice")
            seen.add(arxiv_id)
            if relevant not in ("0", "1"):
                raise LabelsError(f"{path}:{number}: relevant must be 0 or 1, not {relevant!r}")
            topics = tuple(t.strip() for t in row[at["topics"]].split(",") if t.strip())
            unknown = [t for t in topics if t not in TOPICS]
            if unknown:
                raise LabelsError(f"{path}:{number}: unknown topic {', '.join(unknown)}")
            rows.append((arxiv_id, relevant == "1", topics))
    return rows


def load_labelled_days(labels_dir: Path, listings_dir: Path | None = None) -> list[LabelledDay]:
    """Every `labels-DATE.tsv` in `labels_dir` with its `DATE.jsonl` listing (from
    `listings_dir`, default the same folder) and optional `rationale-DATE.tsv`."""
    if not labels_dir.is_dir():
        raise LabelsError(f"{labels_dir}: not a folder")
    listings_dir = listings_dir or labels_dir
    days = []
    for path in sorted(labels_dir.glob("labels-*.tsv")):
        day = path.stem.removeprefix("labels-")
        listing_path = listings_dir / f"{day}.jsonl"
        reasons_path = labels_dir / f"rationale-{day}.tsv"
        reading = listing_path
        try:
            listing = _read_listing(listing_path)
            reading = reasons_path
            reasons = _read_reasons(reasons_path)
            reading = path
            labels = _read_labels(path, listing)
        except UnicodeDecodeError:
            raise LabelsError(f"{reading}: not UTF-8 text") from None
        except OSError as exc:
            raise LabelsError(f"{reading}: cannot read it ({exc.strerror})") from None
        papers = tuple(
            LabelledPaper(arxiv_id, *listing[arxiv_id], relevant, topics, reasons.get(arxiv_id, ""))
            for arxiv_id, relevant, topics in labels
        )
        days.append(LabelledDay(day, papers))
    if not days:
        raise LabelsError(f"{labels_dir}: no labels-DATE.tsv files")
    return days


class _Fits:
    """Features of the labelled papers as one matrix, built once, and fits keyed by the
    days they were trained on: a cross-validation's inner and outer folds share their
    training sets in pairs, and each fit only slices rows and columns of the matrix."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.vocabulary = vocabulary
        self._features: dict[str, PaperFeatures] = {}
        self._fits: dict[frozenset[str], tuple[dict, float]] = {}
        self._matrix: Any = None
        self._names: list[str] = []
        self._row: dict[str, int] = {}

    def features(self, paper: LabelledPaper) -> PaperFeatures:
        found = self._features.get(paper.arxiv_id)
        if found is None:
            found = extract_features(paper.title, paper.abstract, self.vocabulary)
            self._features[paper.arxiv_id] = found
        return found

    def fit(self, days: Sequence[LabelledDay]) -> tuple[dict, float]:
        key = frozenset(d.day for d in days)
        if key not in self._fits:
            papers = [p for d in days for p in d.papers]
            self._fits[key] = self.fit_papers(papers, [p.relevant for p in papers])
        return self._fits[key]

    def fit_topics(self, days: Sequence[LabelledDay]) -> dict[str, dict]:
        """One small model per topic over the relevant papers, on the features that name
        what a paper is about (title words, vocabulary groups, claims): it tags relevant
        papers whose text names no vocabulary phrase."""
        relevant = [p for d in days for p in d.papers if p.relevant]
        models = {}
        for topic in TOPICS:
            labels = [topic in p.topics for p in relevant]
            if MIN_TOPIC_PAPERS <= sum(labels) <= len(labels) - MIN_TOPIC_PAPERS:
                weights, intercept = self.fit_papers(relevant, labels, _TOPIC_FEATURES, 1.0)
                models[topic] = {"intercept": round(intercept, 6), "weights": weights}
        return models

    def _rows(self, papers: Sequence[LabelledPaper]) -> Any:
        """The matrix rows of `papers`, extending the matrix with papers not seen yet.
        Columns are feature names in sorted order, as DictVectorizer would put them."""
        from scipy.sparse import csr_matrix

        missing = [p for p in papers if p.arxiv_id not in self._row]
        if missing:
            known = [p for p in self._features if p in self._row]
            everything = [*known, *dict.fromkeys(p.arxiv_id for p in missing)]
            for paper in missing:
                self.features(paper)
            self._names = sorted({n for i in everything for n in self._features[i].values})
            column = {name: j for j, name in enumerate(self._names)}
            data, indices, pointers = [], [], [0]
            for arxiv_id in everything:
                values = self._features[arxiv_id].values
                ordered = sorted((column[n], v) for n, v in values.items())
                indices += [j for j, _ in ordered]
                data += [v for _, v in ordered]
                pointers.append(len(indices))
            self._matrix = csr_matrix(
                (data, indices, pointers), shape=(len(everything), len(self._names))
            )
            self._row = {arxiv_id: i for i, arxiv_id in enumerate(everything)}
        return self._matrix[[self._row[p.arxiv_id] for p in papers]]

    def fit_papers(
        self,
        papers: Sequence[LabelledPaper],
        labels: Sequence[bool],
        prefixes: tuple[str, ...] = (),
        c: float = REGULARIZATION_C,
    ) -> tuple[dict, float]:
        try:
            import numpy as np
            from sklearn.linear_model import LogisticRegression
        except ImportError:
            raise TrainingUnavailable(
                "training needs scikit-learn: pip install '.[train]'"
            ) from None
        if len(set(labels)) < 2:
            raise LabelsError(
                "a training fold holds only relevant or only irrelevant papers; label more days"
            )
        rows = self._rows(papers)
        # A feature seen in fewer than MIN_DOCUMENTS of these papers is left out.
        keep = np.asarray((rows != 0).sum(axis=0)).ravel() >= MIN_DOCUMENTS
        if prefixes:
            keep &= np.array([name.startswith(prefixes) for name in self._names])
        columns = np.flatnonzero(keep)
        fitted = LogisticRegression(C=c, max_iter=5000)
        fitted.fit(rows[:, columns], list(labels))
        weights = {
            self._names[j]: float(w)
            for j, w in zip(columns, fitted.coef_[0], strict=True)
            if abs(w) >= MIN_WEIGHT
        }
        return weights, float(fitted.intercept_[0])


def _model(
    weights: dict, intercept: float, threshold: float, metadata: dict, topics: dict | None = None
) -> RelevanceModel:
    draft = RelevanceModel(
        weights, intercept, threshold, version="", metadata=metadata, topics=topics or {}
    )
    return RelevanceModel.from_json(draft.to_json().encode(), "trained model")


def _choose_threshold(days: Sequence[LabelledDay], fits: _Fits) -> float:
    """The probability cut-off that maximises F1 over the given days, each scored by a
    model trained on the others (never by one that saw the day). F1 is flat and noisy
    near its top, so take the middle of the thresholds within 0.01 of the best."""
    scored: list[tuple[float, bool]] = []
    for held_out in days:
        weights, intercept = fits.fit([d for d in days if d is not held_out])
        # Scored with weights rounded as the model file rounds them (RelevanceModel.to_json),
        # without writing and reading one for every fold.
        model = RelevanceModel(
            {k: round(v, 5) for k, v in weights.items()}, round(intercept, 6), 0.5, ""
        )
        scored += [(model.probability(fits.features(p)), p.relevant) for p in held_out.papers]
    truth = [relevant for _, relevant in scored]
    f1 = {t: measure([s >= t for s, _ in scored], truth).f1 for t in THRESHOLDS}
    near_best = [t for t in THRESHOLDS if f1[t] >= max(f1.values()) - 0.01]
    return near_best[len(near_best) // 2]


def train_model(
    days: Sequence[LabelledDay], vocabulary: Vocabulary, fits: _Fits | None = None
) -> RelevanceModel:
    if len(days) < 2:
        raise LabelsError("training needs at least two labelled days (one to choose a threshold)")
    labels = {p.relevant for d in days for p in d.papers}
    if labels != {True, False}:
        raise LabelsError("training needs relevant and irrelevant papers among the labels")
    fits = fits or _Fits(vocabulary)
    threshold = _choose_threshold(days, fits)
    weights, intercept = fits.fit(days)
    topics = fits.fit_topics(days)
    metadata = {
        "trained_on": [d.day for d in days],
        "papers": sum(len(d.papers) for d in days),
        "relevant": sum(p.relevant for d in days for p in d.papers),
        "regularization_c": REGULARIZATION_C,
        "vocabulary": vocabulary.version,
    }
    return _model(weights, intercept, threshold, metadata, topics)


@dataclass(frozen=True, slots=True)
class DayResult:
    day: str
    papers: int
    quality: Quality
    tags_shared: int  # labelled-relevant papers whose predicted tags share one with the label
    tags_total: int
    threshold: float
    scored: list[tuple[LabelledPaper, float]] = field(default_factory=list)

    @property
    def errors(self) -> list[tuple[LabelledPaper, float]]:
        return [(p, s) for p, s in self.scored if (s >= 0.5) != p.relevant]


def evaluate_days(classifier: Classifier, days: Sequence[LabelledDay]) -> list[DayResult]:
    results = []
    for day in days:
        scored = [(p, classifier.classify(p.title, p.abstract).relevance) for p in day.papers]
        quality = measure([s >= 0.5 for _, s in scored], [p.relevant for p, _ in scored])
        shared = total = 0
        for paper in day.papers:
            if paper.relevant and paper.topics:
                predicted = classifier.topics(paper.title, paper.abstract, relevant=True)
                total += 1
                shared += bool(set(predicted) & set(paper.topics))
        results.append(
            DayResult(
                day.day, len(day.papers), quality, shared, total, classifier.model.threshold, scored
            )
        )
    return results


def cross_validate(days: Sequence[LabelledDay], vocabulary: Vocabulary) -> list[DayResult]:
    """Leave one day out, for every day: train (threshold included) on the others, test on it."""
    fits = _Fits(vocabulary)
    results = []
    for held_out in days:
        model = train_model([d for d in days if d is not held_out], vocabulary, fits)
        results += evaluate_days(Classifier(model, vocabulary), [held_out])
    return results


def pooled(results: Sequence[DayResult]) -> Quality:
    return quality_from_counts(
        sum(r.quality.true_positives for r in results),
        sum(r.quality.false_positives for r in results),
        sum(r.quality.false_negatives for r in results),
    )


def format_results(results: Sequence[DayResult]) -> list[str]:
    lines = [f"{'day':<12}{'papers':>7}{'relevant':>9}{'P':>7}{'R':>7}{'F1':>7}{'tags':>9}"]
    for r in results:
        q = r.quality
        relevant = q.true_positives + q.false_negatives
        lines.append(
            f"{r.day:<12}{r.papers:>7}{relevant:>9}{q.precision:>7.2f}{q.recall:>7.2f}"
            f"{q.f1:>7.2f}{f'{r.tags_shared}/{r.tags_total}':>9}"
        )
    q = pooled(results)
    shared, total = sum(r.tags_shared for r in results), sum(r.tags_total for r in results)
    lines.append(
        f"{'pooled':<12}{sum(r.papers for r in results):>7}"
        f"{q.true_positives + q.false_negatives:>9}{q.precision:>7.2f}{q.recall:>7.2f}"
        f"{q.f1:>7.2f}{f'{shared}/{total}':>9}"
    )
    lines.append(f"tags: {shared}/{total} labelled-relevant papers share a topic with their label")
    return lines
