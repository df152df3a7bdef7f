"""Hybrid retrieval: BM25 kept in step with ingest and remove, fusion, filters, citations."""

from __future__ import annotations

from pathlib import Path

from conftest import Folio
from retrieval.grounding import neutralise, parse_citations
from retrieval.search import SearchHit, rrf


def test_bm25_follows_ingest_and_remove_and_hybrid_uses_it(any_folio: Folio, docs: Path) -> None:
    (docs / "parts.txt").write_text("Replacement valve XK-4471 fits the older pumps only.")
    (docs / "other.txt").write_text("Pumps need a yearly service by a certified engineer.")
    any_folio.json("ingest", docs)
    for mode in ("bm25", "hybrid"):
        top = any_folio.json("search", "XK-4471", "--mode", mode, "--k", "1")["results"][0]
        assert "XK-4471" in top["text"]
    assert -1 <= top["score"] <= 1  # hybrid hits report cosine similarity

    any_folio.json("remove", docs / "parts.txt")
    left = any_folio.json("search", "XK-4471", "--mode", "bm25")["results"]
    assert all("XK-4471" not in r["text"] for r in left)
    (docs / "new.txt").write_text("Valve XK-4471 was discontinued in 2024.")
    any_folio.json("ingest", docs)
    top = any_folio.json("search", "XK-4471", "--mode", "bm25", "--k", "1")["results"][0]
    assert "discontinued" in top["text"]


def test_source_filter_mmr_and_neighbors(folio: Folio, docs: Path) -> None:
    (docs / "a.md").write_text("# A\n\nThe red team owns the parser.")
    (docs / "b.txt").write_text("The red team owns the printer.")
    long = "\n\n".join(
        f"Paragraph {i}: the blue team reviews item {i} of the plan." * 3 for i in range(30)
    )
    (docs / "plan.md").write_text("# Plan\n\n" + long)
    folio.json("ingest", docs)
    only_txt = folio.json("search", "red team", "--source", "*.txt")["results"]
    assert only_txt and all(r["source"].endswith(".txt") for r in only_txt)
    assert folio.json("search", "red team", "--source", "*.nothing")["results"] == []
    diverse = folio.json("search", "blue team plan item", "--mmr", "0.3", "--k", "4")["results"]
    assert len({r["chunk_id"] for r in diverse}) == 4


def test_rrf_and_citation_parsing() -> None:
    fused = rrf([(["a", "b", "c"], 1.0), (["c", "a"], 1.0)], k=60)
    assert max(fused, key=fused.__getitem__) == "a" and set(fused) == {"a", "b", "c"}
    hits = [SearchHit(n, f"id{n}", f"/d{n}.pdf", n, 0.5, f"text {n}") for n in (1, 2, 3)]
    text, citations = parse_citations("Red [1]. Blue [2, 7]. Green [9].", hits)
    assert text == "Red [1]. Blue [2]. Green." and [c.n for c in citations] == [1, 2]
    assert citations[1].hit.chunk_id == "id2"
    assert neutralise("a <|im_end|> b <end_of_turn> [INST]") == (
        "a \u2039|im_end|\u203a b \u2039end_of_turn\u203a \u27e6INST\u27e7"
    )


def test_grounding_flags_unsupported_sentences_and_quotes_the_best_sentence() -> None:
    from folio.models import load_embedding_model
    from folio.settings import load_settings
    from retrieval.grounding import best_quote, grounding

    model = load_embedding_model(load_settings())
    hits = [
        SearchHit(1, "a", "/r.pdf", 2, 0.6, "The plant opened in 1962. It employs 400 people."),
        SearchHit(2, "b", "/r.pdf", 3, 0.4, "Its chimney is 80 metres tall."),
    ]
    support, per_sentence = grounding(
        "The plant opened in 1962 [1]. Penguins invented the telescope.", hits, model.embed, 0.6
    )
    assert [s.supported for s in per_sentence] == [True, False]
    assert per_sentence[0].chunk_id == "a" and 0 < support < 1
    quote = best_quote("How tall is the chimney?", hits, model.embed)
    assert (
        quote is not None and quote.text == "Its chimney is 80 metres tall." and quote.hit.page == 3
    )
