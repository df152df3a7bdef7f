"""Refusal from retrieval evidence: the committed model, off-topic questions refused without the
LLM, on-topic ones answered, and the threshold as a probability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO, Folio
from folio.settings import Settings
from helpers import write_pdf
from retrieval.refusal import FEATURES, MODEL_FILE, load_model

ON_TOPIC = "Which bees guard the hive entrance in autumn?"
OFF_TOPIC = "Who won the football world cup in 2018?"


@pytest.fixture
def apiary(folio: Folio, docs: Path, tmp_path: Path) -> Folio:
    """Two small documents, and an LLM file that fails if anything tries to load it."""
    write_pdf(
        docs / "apiary.pdf",
        [
            "# Apiary notes\nIn autumn the older worker bees guard the hive entrance against "
            "wasps.\nThe colony shrinks to about ten thousand bees before winter.",
            "# Honey harvest\nThe beekeeper Mira Holt extracts the heather honey in late August "
            "with a tangential extractor.",
        ],
    )
    (docs / "hives.md").write_text(
        "# Hive boxes\n\nEach brood box of the apiary holds eleven frames of comb.\n"
    )
    assert folio.json("ingest", docs)["added"] == 2
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # any call to the LLM fails on this file
    folio.env["FOLIO_LLM_MODEL"] = str(broken)
    return folio


def test_the_model_loads_from_its_committed_parameters() -> None:
    data = json.loads(MODEL_FILE.read_text())
    model = load_model()
    assert model.features == tuple(data["features"]) and set(model.features) <= set(FEATURES)
    assert 0.0 < model.threshold < 1.0
    assert "bench.fit_refusal" in model.about  # the command that produced it
    # The fitted threshold is the documented default of the setting.
    assert Settings(data_dir=REPO).refusal_threshold == model.threshold
    strong = {"dense_top": 0.8, "bm25_norm": 0.6, "coverage": 1.0, "rare_coverage": 1.0,
              "missing": 0.0, "agreement": 1.0, "names": 1.0}  # fmt: skip
    weak = {"dense_top": 0.05, "bm25_norm": 0.0, "coverage": 0.0, "rare_coverage": 0.0,
            "missing": 1.0, "agreement": 0.0, "names": 0.0}  # fmt: skip
    assert model.probability(strong) > model.threshold > model.probability(weak)


def test_off_topic_question_is_refused_without_the_llm(apiary: Folio) -> None:
    result = apiary.json("ask", OFF_TOPIC, "--answer-mode", "generate")
    assert result["refused"] is True and result["answer"] == "Not found in your documents."
    refusal = result["refusal"]
    assert refusal["p_answerable"] < refusal["threshold"]
    assert set(refusal["features"]) == set(load_model().features)
    # Nothing was generated, and the (unloadable) model was never loaded.
    assert result["timings"]["first_token_ms"] is None
    assert result["timings"]["completion_tokens"] == 0
    assert {"path", "n_gpu_layers"} <= set(result["model"])  # the configured model, unloaded


def test_on_topic_question_is_answered(apiary: Folio) -> None:
    for question, expected in ((ON_TOPIC, "guard the hive entrance"),
                               ("How many frames does a brood box hold?", "eleven frames"),
                               ("Who extracts the heather honey?", "Mira Holt")):  # fmt: skip
        result = apiary.json("ask", question)  # quote mode: no LLM either
        assert result["refused"] is False, (question, result["refusal"])
        assert result["refusal"]["p_answerable"] >= result["refusal"]["threshold"]
        assert expected in result["answer"]


def test_threshold_0_never_refuses_and_1_always_refuses(apiary: Folio) -> None:
    apiary.env["FOLIO_REFUSAL_THRESHOLD"] = "0"
    answered = apiary.json("ask", OFF_TOPIC)
    assert answered["refused"] is False and answered["refusal"]["threshold"] == 0.0
    apiary.env["FOLIO_REFUSAL_THRESHOLD"] = "1"
    refused = apiary.json("ask", ON_TOPIC)
    assert refused["refused"] is True and refused["refusal"]["threshold"] == 1.0
    apiary.env["FOLIO_REFUSAL_THRESHOLD"] = "1.5"  # a probability now
    bad = apiary("ask", ON_TOPIC)
    assert bad.exit_code == 2 and "refusal_threshold" in bad.stderr


def test_one_document_collection_refuses_and_answers(folio: Folio, docs: Path) -> None:
    (docs / "note.txt").write_text("The office printer on floor three jams when fed A5 paper.")
    folio.json("ingest", docs)
    assert folio.json("ask", "Which paper jams the office printer?")["refused"] is False
    assert folio.json("ask", "What is the capital city of Australia?")["refused"] is True
