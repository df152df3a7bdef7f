"""One typed settings object, built by a function.

Precedence: defaults < YAML file < FOLIO_* env < explicit overrides.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

COLLECTION_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")


def check_collection_name(value: str) -> str:
    if not COLLECTION_NAME.match(value):
        raise ValueError(
            "collection names use lowercase letters, digits, '-' and '_' (1-60 characters)"
        )
    return value


def default_data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "folio"


class Settings(BaseSettings):
    """Everything a Folio command can be configured with. Env names are FOLIO_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="FOLIO_", extra="forbid", validate_default=True)

    # Storage
    data_dir: Path = Field(default_factory=default_data_dir)
    collection: str = "default"
    chroma_url: str | None = Field(
        default=None, description="http://host:port of a Chroma server; unset = embedded Chroma"
    )
    lock_timeout_s: float = Field(default=600.0, ge=0)

    # Embeddings and chunking (chunk sizes are in the embedding model's tokens)
    embedding_model: str = "all-MiniLM-L6-v2"
    embedding_batch_size: int = Field(default=64, ge=1)
    chunk_size: int = Field(default=200, ge=16)
    chunk_overlap: int = Field(default=32, ge=0)
    max_file_mb: float = Field(default=200.0, gt=0)
    # Chunks embedded and committed together: larger groups batch better, smaller ones lose
    # less work to a crash.
    commit_every_chunks: int = Field(default=2048, ge=1)
    torch_threads: int | None = Field(default=None, ge=1)
    # How chunks and questions are embedded: PyTorch (sentence-transformers), or an int8 ONNX
    # export of the same model run by onnxruntime (made once, cached under the user cache dir).
    # A collection records the backend that built it: changing it needs `folio ingest --rebuild`.
    # onnx-int8 by measurement (README): about twice the embedding speed on CPU, retrieval
    # unchanged (paired intervals on gold + SQuAD + SEC 10-Q include zero), the refusal model's
    # parameters still hold. On a GPU machine set `torch` (it embeds on CUDA).
    embedding_backend: Literal["torch", "onnx-int8"] = "onnx-int8"
    # Pages without a text layer (scanned PDFs) and image files are read with OCR.
    ocr: bool = True
    # Pages of one document read by OCR at once (one single-threaded Tesseract process each);
    # unset = the cores this process may use.
    ocr_processes: int | None = Field(default=None, ge=1)

    # Retrieval
    retrieval_mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    k: int = Field(default=5, ge=1, le=100)
    fusion_dense_weight: float = Field(default=1.0, ge=0)
    # BM25 weighted 2:1 by the eval study (README): +0.032 MRR@10 pooled over gold, SQuAD and
    # SEC 10-Q (paired 95% CI 0.011-0.054), no significant MRR loss on any of them.
    fusion_bm25_weight: float = Field(default=2.0, ge=0)
    rrf_k: int = Field(default=60, ge=1)
    # How hybrid mode fuses: "rrf" (the weights above), "adaptive" (RRF with each retriever's
    # weight scaled per query by how far its best score stands out from its other top scores),
    # "convex" (fusion_convex_dense * min-max-normalised cosine + the rest * normalised BM25).
    fusion: Literal["rrf", "adaptive", "convex"] = "rrf"
    fusion_convex_dense: float = Field(default=0.5, ge=0, le=1)
    # Candidates each retriever contributes before fusing; unset = max(4 k, 20).
    fusion_candidates: int | None = Field(default=None, ge=1, le=1000)
    # Questions that name documents (company, quarter, title, file name) rank their chunks first.
    # On by measurement (README): SEC 10-Q, 20 filings in one collection, MRR@10 0.519 -> 1.000,
    # pooled with gold and SQuAD +0.281 (paired 95% CI 0.234-0.328), no dataset worse.
    document_stage: bool = True
    mmr_lambda: float | None = Field(default=None, ge=0, le=1)
    neighbors: int = Field(default=0, ge=0, le=5)
    # How a follow-up that refers back is searched: as it is (bare), the LLM's rewrite, the
    # rewrite fused with "previous question + follow-up" (the old default), the previous
    # question's subject carried into the follow-up, or the rewrite (only when it kept the
    # subject) fused with that. `carry` won on eval/followups (hit@5 0.97 vs 0.85 for fusion).
    followup_retrieval: Literal["bare", "rewrite", "fusion", "carry", "carry+rewrite"] = "carry"

    # Answering
    prompt: str = "grounded-qa"
    # Measured on SQuAD with the packaged models (README): quotes beat generation by far.
    answer_mode: Literal["quote", "generate", "quote+generate"] = "quote"
    # The refusal model's P(answerable) (retrieval/refusal.py) below this: "not found", the LLM
    # is not called. 0 never refuses, 1 always does. The default is the fitted model's decision
    # threshold (`python -m bench.fit_refusal`: refuses at most 4% of answerable questions).
    refusal_threshold: float = Field(default=0.5628, ge=0, le=1)
    # Generated answers whose grounding support is below this are flagged (and not shown alone).
    support_threshold: float = Field(default=0.6, ge=0, le=1)

    # LLM (llama.cpp)
    llm_model: str = "smollm2"
    n_ctx: int = Field(default=2048, ge=256)
    n_gpu_layers: int | Literal["auto"] = "auto"
    n_threads: int | None = Field(default=None, ge=1)
    n_batch: int = Field(default=256, ge=1)

    # LLM server: any OpenAI-compatible /v1 endpoint (llama.cpp's server, vLLM, Ollama). When set,
    # generation goes there and `llm_model` is not loaded.
    llm_url: str | None = Field(
        default=None, description="OpenAI base URL of an LLM server, e.g. http://127.0.0.1:8080/v1"
    )
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_server_model: str | None = Field(
        default=None, description="model name to request; unset = the first /v1/models lists"
    )
    llm_timeout_s: float = Field(default=120.0, gt=0)

    # Access control: `folio serve` needs `Authorization: Bearer <api_key>` when it is set; the web
    # UI asks for the password whose salted hash `folio password-hash` printed.
    api_key: str | None = Field(default=None, repr=False)
    ui_password_hash: str | None = Field(default=None, repr=False)
    # Largest request body `folio serve` accepts (uploads); larger ones get 413 before being read.
    max_upload_mb: float = Field(default=200.0, gt=0)

    # Sampling
    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=0.95, gt=0, le=1)
    top_k: int = Field(default=40, ge=0)
    repeat_penalty: float = Field(default=1.1, gt=0)
    max_tokens: int = Field(default=256, ge=1)
    seed: int = 0

    @field_validator("collection")
    @classmethod
    def _check_collection(cls, value: str) -> str:
        return check_collection_name(value)

    @field_validator("api_key", "ui_password_hash", "llm_api_key")
    @classmethod
    def _no_blank_secret(cls, value: str | None) -> str | None:
        # A key of spaces would be "set" yet match nothing a client can send: say so instead.
        if value is not None and value != "" and not value.strip():
            raise ValueError("is blank (spaces only): set a real value, or leave it unset")
        return value or None

    @model_validator(mode="after")
    def _check_chunking(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        return self

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The YAML file (if any) is named in model_config by load_settings; env beats it.
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class SettingsError(ValueError):
    """The configuration is unusable; the message says why."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults, then the YAML file, then FOLIO_* env, then overrides.

    Overrides whose value is None are ignored, so CLI options can pass them through unset. With
    no file given, FOLIO_CONFIG names it (how `folio ui` and `folio serve` pass `--config` on).
    """
    values = {key: value for key, value in overrides.items() if value is not None}
    if config_file is None and os.environ.get("FOLIO_CONFIG"):
        config_file = Path(os.environ["FOLIO_CONFIG"])
    settings_cls: type[Settings] = Settings
    if config_file is not None:
        if not config_file.is_file():
            raise SettingsError(f"{config_file}: config file not found")
        settings_cls = type(
            "Settings",
            (Settings,),
            {
                "model_config": SettingsConfigDict(
                    **{**Settings.model_config, "yaml_file": config_file}
                )
            },
        )
    try:
        return settings_cls(**values)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise SettingsError(one_line_error(exc)) from exc


def one_line_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = [
            f"{'.'.join(str(p) for p in err.get('loc', ())) or 'settings'}: {err.get('msg')}"
            for err in errors()
        ]
        return "invalid settings: " + "; ".join(parts)
    return str(exc)
