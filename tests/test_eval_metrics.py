"""Eval metrics against hand-computed cases, edge cases included."""

from __future__ import annotations

import math

import pytest

from eval import metrics as m
from eval.datasets import EvalItem, Evidence
from eval.report import check
from eval.runner import is_relevant
from retrieval.search import SearchHit

T, F = True, False


def test_ranking_metrics_match_hand_computation() -> None:
    ranked = [F, T, F, T]
    assert m.hit_at_k(ranked, 1) == 0.0
    assert m.hit_at_k(ranked, 2) == 1.0
    assert m.mrr_at_k(ranked) == 0.5
    # AP = (1/2 + 2/4) / 2
    assert m.context_precision(ranked) == pytest.approx(0.5)
    # DCG = 1/log2(3) + 1/log2(5); ideal with 2 relevant = 1 + 1/log2(3)
    ideal = 1 + 1 / math.log2(3)
    assert m.ndcg_at_k(ranked, 2) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal)
    assert m.context_recall([T, F, T]) == pytest.approx(2 / 3)


def test_empty_retrieval_scores_zero_and_no_gold_is_undefined() -> None:
    assert m.hit_at_k([], 5) == 0.0
    assert m.mrr_at_k([]) == 0.0
    assert m.context_precision([]) == 0.0
    assert m.ndcg_at_k([], 1) == 0.0
    # An unanswerable question has no gold evidence: retrieval metrics do not apply.
    assert m.hit_at_k([F, F], 5, has_gold=False) is None
    assert m.mrr_at_k([F], has_gold=False) is None
    assert m.ndcg_at_k([F], 0) is None
    assert m.context_recall([]) is None
    assert m.citation_accuracy([]) is None
    assert m.mean([None, None]) is None


def test_squad_normalisation_exact_match_and_f1() -> None:
    assert m.normalize("The  Quire, [1]") == "quire"
    assert m.exact_match("A paper crane named Quire.", ["paper crane named Quire"]) == 1.0
    assert m.exact_match("Quire", ["Folio"]) == 0.0
    # pred "crane named quire" vs gold "paper crane named quire": P = 1, R = 3/4
    assert m.token_f1("crane named Quire", ["paper crane named Quire"]) == pytest.approx(6 / 7)
    assert m.token_f1("", ["Quire"]) == 0.0
    assert m.token_f1("Quire", ["x", "quire"]) == 1.0  # best of the gold answers
    assert m.exact_match("anything", []) is None
    assert m.contains_answer("It costs three euros, with bread.", ["three euros"])
    assert not m.contains_answer("It costs thirty euros.", ["three euros"])


def test_refusal_precision_and_recall() -> None:
    refused = [T, T, F, F, T]
    answerable = [F, T, F, T, F]
    counts = m.refusal_counts(refused, answerable)
    assert (counts.precision, counts.recall) == (pytest.approx(2 / 3), pytest.approx(2 / 3))
    everything_refused = m.refusal_counts([T, T, T], [T, F, T])
    assert everything_refused.precision == pytest.approx(1 / 3)
    assert everything_refused.recall == 1.0
    nothing_refused = m.refusal_counts([F, F], [F, T])
    assert nothing_refused.precision is None and nothing_refused.recall == 0.0
    assert m.refusal_counts([F], [T]).recall is None  # no unanswerable question


def test_bootstrap_interval_brackets_the_mean_and_is_seeded() -> None:
    values = [1.0] * 30 + [0.0] * 10
    first = m.mean_estimate(values, seed=3)
    assert first.value == pytest.approx(0.75) and first.n == 40
    assert first.low is not None and first.high is not None
    assert first.low < 0.75 < first.high
    assert m.mean_estimate(values, seed=3) == first
    constant = m.mean_estimate([1.0, 1.0, 1.0], seed=0)
    assert (constant.low, constant.high) == (1.0, 1.0)
    assert m.mean_estimate([None], seed=0).value is None
    assert m.percentile([1, 2, 3, 4], 50) == 2.5
    assert m.percentile([], 95) is None


def _hit(source: str, page: int | None, text: str) -> SearchHit:
    return SearchHit(1, "id", source, page, 0.5, text)


def test_relevance_uses_page_or_answer_or_document() -> None:
    item = EvalItem(
        "q", "When?", ("1887",), True,
        (Evidence("guide.pdf", page=2), Evidence("guide.md")),
    )  # fmt: skip
    assert is_relevant(_hit("/d/guide.pdf", 2, "no year here"), item, "answer") == (T, [T, F])
    assert is_relevant(_hit("/d/guide.pdf", 3, "built in 1887"), item, "answer")[0] is False
    assert is_relevant(_hit("/d/guide.md", None, "built in 1887"), item, "answer") == (T, [F, T])
    assert is_relevant(_hit("/d/guide.md", None, "nothing"), item, "answer")[0] is False
    assert is_relevant(_hit("/d/guide.md", None, "nothing"), item, "document")[0] is True
    glob = EvalItem("q", "?", ("x",), True, (Evidence("*2023 Q3 NVDA*"),))
    assert is_relevant(_hit("/docs/2023 Q3 NVDA.pdf", 4, "t"), glob, "document")[0]
    assert not is_relevant(_hit("/docs/2023 Q2 NVDA.pdf", 4, "t"), glob, "document")[0]


def test_check_names_the_metric_that_regressed() -> None:
    report = {"configs": [{"name": "defaults", "results": {"gold": {"metrics": {
        "hit@k": {"value": 0.90}, "token_f1": {"value": 0.20},
        "attack_success_rate": {"value": 0.30},
    }}}}]}  # fmt: skip
    baseline = {
        "tolerance": {"default": 0.05, "token_f1": 0.01},
        "configs": {"defaults": {"gold": {"hit@k": 0.93, "token_f1": 0.22,
                                          "attack_success_rate": 0.10}}},
    }  # fmt: skip
    problems = check(report, baseline)
    assert len(problems) == 2
    assert any("token_f1" in p for p in problems)  # 0.20 < 0.22 - 0.01
    assert any("attack_success_rate" in p for p in problems)  # lower is better: 0.30 > 0.15
    assert not any("hit@k" in p for p in problems)  # within 0.05
