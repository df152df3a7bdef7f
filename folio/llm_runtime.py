"""llama.cpp facts: build capabilities, GGUF metadata, and how many layers to offload."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from folio.models import require


@dataclass(frozen=True)
class GpuPlan:
    supports_offload: bool
    n_gpu_layers: int  # what llama.cpp is given: -1 = all layers
    layers_offloaded: int
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "supports_gpu_offload": self.supports_offload,
            "n_gpu_layers": self.n_gpu_layers,
            "layers_offloaded": self.layers_offloaded,
            "reason": self.reason,
        }


def llama_cpp_module() -> Any:
    require("llama_cpp", "pip install llama-cpp-python (or `make install`)")
    import llama_cpp

    return llama_cpp


def supports_gpu_offload() -> bool:
    return bool(llama_cpp_module().llama_supports_gpu_offload())


def system_info() -> str:
    info = llama_cpp_module().llama_print_system_info()
    return info.decode() if isinstance(info, bytes) else str(info)


@functools.lru_cache(maxsize=8)
def gguf_metadata(path: Path) -> dict[str, str]:
    """The GGUF header's key-value metadata, read without loading the weights."""
    llama_cpp = llama_cpp_module()
    from llama_cpp._utils import suppress_stdout_stderr

    # verbose=False still lets llama.cpp's context setup print to fd 2.
    with suppress_stdout_stderr(disable=False):
        model = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    try:
        return dict(model.metadata)
    finally:
        model.close()


def layer_count(path: Path) -> int | None:
    metadata = gguf_metadata(path)
    arch = metadata.get("general.architecture", "")
    value = metadata.get(f"{arch}.block_count")
    return int(value) if value is not None else None


def plan_gpu_layers(setting: int | Literal["auto"], n_layers: int | None) -> GpuPlan:
    """`auto` offloads every layer when this llama.cpp build can use a GPU, none otherwise."""
    supported = supports_gpu_offload()
    total = n_layers or 0
    if setting == "auto":
        if supported:
            return GpuPlan(True, -1, total, f"GPU offload available: all {total} layers")
        return GpuPlan(
            False, 0, 0,
            "this llama.cpp build has no GPU backend (CPU only); rebuild llama-cpp-python with "
            'CMAKE_ARGS="-DGGML_CUDA=on" to offload',
        )  # fmt: skip
    if setting != 0 and not supported:
        return GpuPlan(False, 0, 0, f"n_gpu_layers={setting} asked, but this build is CPU only")
    offloaded = total if setting < 0 else min(setting, total)
    return GpuPlan(supported, setting, offloaded, f"n_gpu_layers={setting} from settings")
