"""Dataset loaders on small samples of each format, written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.datasets import DatasetError, Evidence, load_dataset, load_jsonl, load_sec10q, load_squad
from helpers import write_pdf


def squad_json(path: Path, v2: bool) -> Path:
    qas = [{"id": "q1", "question": "Who built it?", "answers": [
        {"text": "Ada", "answer_start": 0}, {"text": "Ada", "answer_start": 0},
        {"text": "Ada Lund", "answer_start": 0}]}]  # fmt: skip
    if v2:
        qas.append({"id": "q2", "question": "Who paid?", "answers": [], "is_impossible": True})
    data = {"version": "v2.0" if v2 else "1.1", "data": [
        {"title": "Sky/Tower",
         "paragraphs": [{"context": "Ada Lund built the tower.", "qas": qas}]},
        {"title": "Bridge", "paragraphs": [{"context": "The bridge is grey.", "qas": []}]},
    ]}  # fmt: skip
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("v2", [False, True])
def test_squad_articles_become_documents_and_v2_keeps_unanswerable(
    tmp_path: Path, v2: bool
) -> None:
    data = load_squad(squad_json(tmp_path / "squad.json", v2), tmp_path / "work", None, 0)
    assert sorted(p.name for p in data.documents) == ["Bridge.txt", "Sky_Tower.txt"]
    assert (tmp_path / "work" / "squad-squad" / "Sky_Tower.txt").read_text() == (
        "Ada Lund built the tower."
    )
    first = data.items[0]
    assert first.answers == ("Ada", "Ada Lund") and first.answerable
    assert first.evidence == (Evidence("Sky_Tower.txt"),)
    if v2:
        second = data.items[1]
        assert not second.answerable and second.answers == () and second.evidence == ()
    else:
        assert len(data.items) == 1


def test_sec10q_csv_with_bom_gives_document_level_gold(tmp_path: Path) -> None:
    docs = tmp_path / "sec" / "docs"
    for name in ("2023 Q3 NVDA.pdf", "2023 Q2 NVDA.pdf", "2023 Q3 AAPL.pdf"):
        write_pdf(docs / name, [f"Report {name}"])
    rows = [
        ("What was revenue?", "*2023 Q3 NVDA*", "Revenue was high."),
        ("How did NVDA do?", "*NVDA*", "Well."),
        ("What about Apple?", "*2023 Q3 AAPL*", "Fine."),
    ]
    lines = ["Question,Source Docs,Question Type,Source Chunk Type,Answer"]
    lines += [f'"{q}",{g},Single-Doc,Text,"{a}"' for q, g, a in rows]
    (tmp_path / "sec" / "qna_data.csv").write_text("\n".join(lines), encoding="utf-8-sig")
    data = load_sec10q(tmp_path / "sec", None, 0)
    assert data.relevance == "document" and len(data.documents) == 3
    assert data.items[0].question == "What was revenue?"  # no BOM in the first column
    assert data.items[1].evidence == (Evidence("2023 Q2 NVDA.pdf"), Evidence("2023 Q3 NVDA.pdf"))
    # A slice keeps only the questions whose every gold document is in it.
    sliced = load_sec10q(tmp_path / "sec", None, 0, documents_glob="*2023 Q3*")
    assert [i.question for i in sliced.items] == ["What was revenue?", "What about Apple?"]
    assert load_dataset(str(tmp_path / "sec"), tmp_path, tmp_path, None, 0).name == "sec10q"


def test_generic_jsonl_with_and_without_a_documents_header(tmp_path: Path) -> None:
    doc = tmp_path / "docs" / "notes.md"
    doc.parent.mkdir()
    doc.write_text("# Notes\n\nThe code is 42.")
    with_header = tmp_path / "set.jsonl"
    with_header.write_text(
        json.dumps({"dataset": "mine", "documents": ["docs/notes.md"]}) + "\n"
        + json.dumps({"question": "Code?", "answers": ["42"],
                      "evidence": [{"source": "notes.md", "page": None}]}) + "\n"
        + json.dumps({"question": "Colour?", "answers": [], "answerable": False}) + "\n"
    )  # fmt: skip
    data = load_jsonl(with_header, None, 0)
    assert data.name == "mine" and data.documents == [doc]
    assert [i.answerable for i in data.items] == [True, False]
    bare = tmp_path / "bare.jsonl"
    bare.write_text(json.dumps({"question": "Code?", "answers": ["42"],
                                "evidence": [{"source": str(doc)}]}) + "\n")  # fmt: skip
    assert load_jsonl(bare, None, 0).documents == [doc]


def test_bad_datasets_fail_with_the_file_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"question": "x"\n')
    with pytest.raises(DatasetError, match=r"broken\.jsonl: not JSON lines"):
        load_jsonl(broken, None, 0)
    orphan = tmp_path / "orphan.jsonl"
    orphan.write_text(json.dumps({"question": "x", "evidence": [{"source": "nowhere.pdf"}]}))
    with pytest.raises(DatasetError, match=r"orphan\.jsonl: names no documents"):
        load_jsonl(orphan, None, 0)
    with pytest.raises(DatasetError, match="no such dataset"):
        load_dataset("nope", tmp_path, tmp_path, None, 0)
    not_squad = tmp_path / "x.json"
    not_squad.write_text("[]")
    with pytest.raises(DatasetError, match=r"x\.json: not SQuAD JSON"):
        load_dataset(str(not_squad), tmp_path, tmp_path, None, 0)


def test_limit_samples_questions_reproducibly(tmp_path: Path) -> None:
    first = load_dataset("gold", tmp_path / "a", tmp_path, 8, seed=5)
    again = load_dataset("gold", tmp_path / "b", tmp_path, 8, seed=5)
    other = load_dataset("gold", tmp_path / "c", tmp_path, 8, seed=6)
    assert [i.id for i in first.items] == [i.id for i in again.items]
    assert [i.id for i in first.items] != [i.id for i in other.items]
    assert sorted(p.name for p in first.documents) == [
        "folio-user-guide.md",
        "folio-user-guide.pdf",
    ]
