"""Embedding backends: the int8 ONNX export agrees with PyTorch, is made once and cached under the
user cache dir, and a collection records which backend built it (a change needs --rebuild)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from folio.models import embedding_fingerprint, load_embedding_model, resolve_embedding_path
from folio.onnx_embedding import export_dir
from folio.settings import load_settings
from tests.conftest import Folio

LONG = " ".join(
    f"Paragraph {n}: the quarterly report describes revenue, margins and risks in detail."
    for n in range(80)
)  # far past all-MiniLM-L6-v2's 256-token window: both backends must truncate alike
SAMPLES = [
    "What was Apple's total net sales in the three months ended July 1, 2023?",
    "| Total net sales | $ 81,797 | $ 82,959 | (1)% |",
    "The project mascot is a heron named Quill.",
    "Where are the spare keys kept?",
    "Risk factors related to supply chain disruptions and component shortages",
    LONG,
    "Ein deutscher Satz über Umsatz und Gewinn.",
]


@pytest.fixture(scope="session")
def user_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user cache dir for the session: the export (about 30 s) is made once and shared."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture
def onnx_env(
    base_env: dict[str, str], user_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(user_cache))  # for loads in this process too
    # onnx-int8 is the default: an earlier test in this process may hold a model loaded from the
    # real user cache; load afresh from this one (and leave none from it behind).
    from folio.models import _load_embedding

    _load_embedding.cache_clear()
    yield {**base_env, "XDG_CACHE_HOME": str(user_cache), "FOLIO_TORCH_THREADS": "1"}
    _load_embedding.cache_clear()


def _exported_file(user_cache: Path) -> Path:
    files = list((user_cache / "folio").rglob("*.onnx"))
    assert len(files) == 1, files
    return files[0]


@pytest.mark.slow
def test_onnx_vectors_agree_with_torch_and_live_in_the_user_cache(
    onnx_env: dict[str, str], user_cache: Path
) -> None:
    torch_model = load_embedding_model(load_settings(embedding_backend="torch"))
    onnx_model = load_embedding_model(load_settings(embedding_backend="onnx-int8"))
    assert onnx_model.backend == "onnx-int8" and onnx_model.dimension == torch_model.dimension
    assert onnx_model.max_seq_length == torch_model.max_seq_length == 256
    reference = np.array(torch_model.embed(SAMPLES))
    vectors = np.array(onnx_model.embed(SAMPLES, batch_size=4))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosines = (reference * vectors).sum(axis=1)
    assert cosines.min() > 0.99, dict(zip(SAMPLES, cosines.round(4), strict=True))
    # Truncation at max_seq_length: the long text embeds like its first 256 tokens.
    head = onnx_model.tokenizer.convert_tokens_to_string(onnx_model.tokenizer.tokenize(LONG)[:254])
    assert float(np.dot(onnx_model.embed([head])[0], vectors[SAMPLES.index(LONG)])) > 0.99
    # The export sits under the user cache dir, not in the data dir.
    exported = _exported_file(user_cache)
    assert exported.is_relative_to(user_cache / "folio")
    assert not list(Path(onnx_env["FOLIO_DATA_DIR"]).parent.rglob("*.onnx"))


@pytest.mark.slow
def test_backend_change_needs_rebuild_and_the_export_is_reused(
    folio: Folio, onnx_env: dict[str, str], user_cache: Path, docs: Path
) -> None:
    (docs / "notes.md").write_text(
        "# Facilities\n\nThe Lisbon office keeps its spare keys in the blue cabinet.\n"
    )
    # Built with torch (the backend before onnx-int8 became the default).
    built = Folio({**onnx_env, "FOLIO_EMBEDDING_BACKEND": "torch"}).json("ingest", docs)
    assert built["added"] == 1 and not built["failed"]

    # The same collection, now asked to embed with onnx-int8: refused, and the message says how.
    onnx = Folio({**onnx_env, "FOLIO_EMBEDDING_BACKEND": "onnx-int8"})
    refused = onnx("ingest", docs)
    assert refused.exit_code == 2
    assert "onnx-int8" in refused.stderr and "--rebuild" in refused.stderr

    rebuilt = onnx.json("ingest", docs, "--rebuild")
    assert rebuilt["added"] == 1 and rebuilt["chunks_added"] >= 1 and not rebuilt["failed"]
    found = onnx.json("search", "where are the spare keys kept?")["results"]
    assert "blue cabinet" in found[0]["text"]
    collection = onnx.json("doctor")["chroma"]["collections"][0]
    assert collection["embedder"].endswith("+onnx-int8")

    # A new process loads the cached export instead of exporting again.
    exported = _exported_file(user_cache)
    before = exported.stat().st_mtime_ns
    process = onnx.subprocess("search", "spare keys", "--json")
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "blue cabinet" in json.loads(out)["results"][0]["text"]
    assert exported.stat().st_mtime_ns == before
    assert _exported_file(user_cache) == exported


_EXPORT = """
import sys
from pathlib import Path
from folio.models import embedding_fingerprint, resolve_embedding_path
from folio.onnx_embedding import ensure_export
path = resolve_embedding_path("all-MiniLM-L6-v2")
print(ensure_export(path, embedding_fingerprint(path)))
"""


@pytest.mark.slow
def test_two_processes_at_first_use_export_once(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _EXPORT],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    paths = {out.strip().splitlines()[-1] for out, _ in outputs}
    assert len(paths) == 1
    folder = Path(paths.pop()).parent
    # One finished model, no temporary leftovers, and it loads.
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".export.lock")) == [
        "export.json",
        "model-qint8.onnx",
    ]
    import onnxruntime

    onnxruntime.InferenceSession(str(folder / "model-qint8.onnx"))


def test_export_dir_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = resolve_embedding_path("all-MiniLM-L6-v2")
    folder = export_dir(embedding_fingerprint(path))
    assert folder.is_relative_to(tmp_path / "folio")


def test_torch_embedder_uses_cuda_when_torch_sees_a_gpu(
    folio: Folio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No GPU here: torch.cuda.is_available is faked (the only fake in the suite) to check the
    device choice and what `folio doctor` reports."""
    import torch

    from folio.models import embedding_device

    assert embedding_device(torch) == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert embedding_device(torch) == "cuda"
    folio = Folio({**folio.env, "FOLIO_EMBEDDING_BACKEND": "torch"})  # GPU machines set torch
    report = folio.json("doctor")
    assert report["embedding_model"]["device"] == "cuda"
    assert report["embedding_model"]["backend"] == "torch"
    assert "embeds on cuda with torch" in folio("doctor").stdout

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert folio.json("doctor")["embedding_model"]["device"] == "cpu"
