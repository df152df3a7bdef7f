"""The embedding model as int8 ONNX: exported once from the packaged PyTorch weights, run by
onnxruntime with the model's own tokenizer, pooling and normalisation done here in numpy.

The export is cached per model fingerprint under the user cache dir (shared by every data dir),
written to a temporary file and renamed into place under a file lock, so two processes starting
at once export it once and never read half a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# Bump when the export or quantisation changes: the cached files then no longer match.
EXPORT_VERSION = 1
BACKEND = "onnx-int8"
# Signed int8 weights: with per-channel scales as close to the PyTorch vectors as QUInt8 (mean
# cosine 0.994 vs 0.995 on 120 SQuAD texts) and faster here (QUInt8 took 1.4-1.9x as long).
WEIGHT_TYPE = "QInt8"
OPSET = 17


def cache_root() -> Path:
    """Folio's user cache dir: platformdirs' when installed, else $XDG_CACHE_HOME or ~/.cache."""
    try:
        from platformdirs import user_cache_dir
    except ImportError:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "folio"
    return Path(user_cache_dir("folio", appauthor=False))


def export_dir(fingerprint: str) -> Path:
    """Where the export of this model lives: one per model and user, shared by every data dir."""
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in fingerprint)
    return cache_root() / "onnx" / f"{safe}-v{EXPORT_VERSION}"


def _atomic_write(target: Path, write: Callable[[Path], object]) -> None:
    """`write` fills a temporary file beside `target`, which then replaces it in one rename."""
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        os.chmod(temporary, 0o644)  # mkstemp makes it owner-only; the cache is the user's anyway
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _export_fp32(model_path: Path, target: Path) -> list[str]:
    """torch.onnx export of the transformer (dynamic batch and sequence axes). Returns inputs."""
    import torch
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()

    tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    # Eager attention traces into plain ONNX ops; fused attention kernels may not export.
    model = AutoModel.from_pretrained(
        str(model_path), local_files_only=True, attn_implementation="eager"
    ).eval()
    sample = tokenizer(["a first sample", "and a second, longer sample text"], padding=True,
                       return_tensors="pt")  # fmt: skip
    with_token_types = "token_type_ids" in sample
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if with_token_types else [])

    class LastHiddenState(torch.nn.Module):
        """Plain tensor inputs in a fixed order and one output: what the export traces."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any = None) -> Any:
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra)[0]

    wrapper = LastHiddenState().eval()
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["last_hidden_state"] = {0: "batch", 1: "sequence"}
    # The tracer warns about Python conditions on shapes (attention-mask padding checks); the
    # export is checked against PyTorch on padded batches of every length (tests).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            tuple(sample[name] for name in names),
            str(target),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter: dynamic_axes, and no onnxscript needed
        )
    return names


def _down_projections(model_file: Path) -> list[str]:
    """MatMul nodes whose weight maps a wider input to a narrower output (the feed-forward
    down-projections): they stay float32 (see `_quantize`)."""
    import onnx

    graph = onnx.load(str(model_file)).graph
    shapes = {init.name: list(init.dims) for init in graph.initializer}
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and len(shapes.get(node.input[1], [])) == 2
        and shapes[node.input[1]][0] > shapes[node.input[1]][1]
    ]


def _quantize(source: Path, target: Path, weight_type: str) -> None:
    """Dynamic int8: per-channel weights (per-tensor scales gave cosine 0.958 to PyTorch on
    SQuAD text, per-channel 0.994), and the feed-forward down-projections kept in float32: their
    inputs come out of GELU with outliers that the per-tensor uint8 activations flatten
    (lowest cosine on 80 SQuAD texts 0.989 quantised, 0.994 kept, for about 13% more time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its advice to pre-process: measured, not needed here
    try:
        quantize_dynamic(
            str(source),
            str(target),
            weight_type=getattr(QuantType, weight_type),
            per_channel=True,
            nodes_to_exclude=_down_projections(source),
        )
    finally:
        logging.disable(logging.NOTSET)


def ensure_export(model_path: Path, fingerprint: str, weight_type: str = WEIGHT_TYPE) -> Path:
    """The cached int8 ONNX file for this model, exported and quantised first if missing."""
    from filelock import FileLock

    folder = export_dir(fingerprint)
    model_file = folder / f"model-{weight_type.lower()}.onnx"
    if model_file.is_file():
        return model_file
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / ".export.lock")):
        if model_file.is_file():  # another process exported it while this one waited
            return model_file
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=folder, prefix=".export-") as scratch:
            fp32 = Path(scratch) / "model-fp32.onnx"
            inputs = _export_fp32(model_path, fp32)
            _atomic_write(model_file, lambda tmp: _quantize(fp32, tmp, weight_type))
        info = {
            "model": str(model_path),
            "fingerprint": fingerprint,
            "weight_type": weight_type,
            "inputs": inputs,
            "export_version": EXPORT_VERSION,
            "seconds": round(time.perf_counter() - started, 1),
        }
        _atomic_write(folder / "export.json", lambda tmp: tmp.write_text(json.dumps(info)))
    return model_file


def _usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _pooling(model_path: Path) -> str:
    """The sentence-transformers pooling of the model: 'mean', 'cls' or 'max'."""
    config_file = model_path / "1_Pooling" / "config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_max_tokens"):
        return "max"
    return "mean"


def _sentence_config(model_path: Path) -> dict[str, Any]:
    config_file = model_path / "sentence_bert_config.json"
    return json.loads(config_file.read_text()) if config_file.is_file() else {}


class OnnxSentenceEncoder:
    """sentence-transformers' `encode` for the ONNX export: same tokenizer, truncation at
    max_seq_length, pooling, and unit-length vectors."""

    def __init__(self, model_path: Path, onnx_file: Path, threads: int | None) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
        config = _sentence_config(model_path)
        self.max_seq_length = int(config.get("max_seq_length") or self.tokenizer.model_max_length)
        self.do_lower_case = bool(config.get("do_lower_case", False))
        self.pooling = _pooling(model_path)
        options = ort.SessionOptions()
        # onnxruntime counts the machine's cores; a process pinned to fewer must not oversubscribe.
        options.intra_op_num_threads = threads or _usable_cores()
        options.inter_op_num_threads = 1
        # Idle threads must not spin: the extraction worker needs the other core meanwhile.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.dimension = int(self.session.get_outputs()[0].shape[-1])

    def _tokens(self, texts: list[str]) -> dict[str, list[list[int]]]:
        # As sentence-transformers does: stripped (and lower-cased when configured) texts,
        # truncated at max_seq_length.
        texts = [t.strip() for t in texts]
        if self.do_lower_case:
            texts = [t.lower() for t in texts]
        encoded = self.tokenizer(texts, truncation="longest_first", max_length=self.max_seq_length)
        names = {"input_ids", "attention_mask", *self.input_names}
        return {name: encoded[name] for name in names if name in encoded}

    def _run(self, tokens: dict[str, list[list[int]]], rows: list[int]) -> np.ndarray:
        """Pooled unit vectors of the given rows, padded to the longest of them."""
        width = max(len(tokens["input_ids"][r]) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        feed = {}
        for name in self.input_names:
            fill = pad if name == "input_ids" else 0
            batch = np.full((len(rows), width), fill, dtype=np.int64)
            for i, r in enumerate(rows):
                values = tokens[name][r] if name in tokens else [1] * len(tokens["input_ids"][r])
                batch[i, : len(values)] = values
            feed[name] = batch
        hidden = self.session.run(None, feed)[0]
        mask = feed["attention_mask"].astype(np.float32)[:, :, None]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "max":
            pooled = np.where(mask > 0, hidden, -1e9).max(axis=1)
        else:
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)

    def encode(self, texts: list[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        """Unit-length vectors (the keyword options of sentence-transformers are accepted).

        Each text runs alone, whatever `batch_size`: int8 activations are scaled per tensor,
        so in a batch a text's vector depends on its neighbours, and padding costs time.
        Measured on 232 SEC filing chunks, one thread: one text per run 14.7 chunks/s with
        lowest cosine to PyTorch 0.992; batches of 16 (sorted by tokens) 9.6/s and 0.989;
        of 64, 9.2/s and 0.986."""
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        tokens = self._tokens(texts) if texts else {}
        for row in range(len(texts)):
            vectors[row] = self._run(tokens, [row])[0]
        return vectors
