"""Machinery shared by :class:`~sktag.TagRegressor` and :class:`~sktag.TagClassifier`."""

from __future__ import annotations

import contextlib
import copy
import numbers
import os
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _engine
from ._data import (
    as_columns,
    check_sample_weight_like,
    encode_rows,
    resolve_domains,
    tokenize_columns,
    validate_columns,
)
from ._validation import check_bool, check_choice, check_float, check_int
from .backbone import load_backbone, resolve_device, resolve_dtype
from .distributed import check_worker_device
from .tags import TagSet

_GiB = 1024**3


class TagModule(torch.nn.Module):
    """The trainable part: domain tags, one function tag and a linear head.

    The tag table (all tags stacked) is what the engine splices into the
    input embeddings; domain tags come first, the function tag last.
    """

    def __init__(self, domain_tags, function_tag, n_outputs, tune_domain_tags=False):
        super().__init__()
        self.domain_tags = torch.nn.ParameterList(
            [torch.nn.Parameter(t.clone().float(), requires_grad=tune_domain_tags) for t in domain_tags]
        )
        self.function_tag = torch.nn.Parameter(function_tag.clone().float())
        d = function_tag.shape[1]
        self.head = torch.nn.Linear(d, n_outputs)

    def tag_table(self):
        return torch.cat([*self.domain_tags, self.function_tag], dim=0)

    def tag_lengths(self):
        return [t.shape[0] for t in self.domain_tags] + [self.function_tag.shape[0]]


def _memory_budget(spec, device) -> int:
    """Bytes the cached prefix may take (``prefix_cache`` parameter)."""
    if spec is False or spec is None:
        return 0
    if spec is True or spec == "auto":
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            return int(0.4 * free)
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover
            total = 8 * _GiB
        return int(min(0.25 * total, 8 * _GiB))
    return int(spec)


def _length_batches(indices, lengths, batch_size, rng=None):
    """Split ``indices`` into batches of similar length.

    With ``rng``: shuffle, sort by length within chunks of 20 batches, then
    shuffle the order of the batches (seeded).  Without (inference): sort all
    by length and also cap each batch at ``batch_size x 128`` padded tokens,
    so that a few long strings do not pad a whole large batch.
    """
    indices = np.asarray(indices)
    if rng is None:
        order = indices[np.argsort(lengths[indices], kind="stable")]
        max_tokens = batch_size * 128
        batches, start = [], 0
        for i in range(1, len(order) + 1):
            # rows are sorted, so the padded size of order[start:i] is (i - start) * lengths[order[i-1]]
            if i == len(order) or i - start + 1 > batch_size or (i - start + 1) * lengths[order[i]] > max_tokens:
                batches.append(order[start:i])
                start = i
        return batches
    perm = rng.permutation(indices)
    chunk = batch_size * 20
    batches = []
    for c in range(0, len(perm), chunk):
        part = perm[c:c + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def _progress(iterable, enabled, **kwargs):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)


class BackboneMixin:
    """Lazy access to the shared backbone; pickles never carry its weights.

    Used by every sktag estimator: ``_get_backbone`` fetches the backbone from
    the process-wide cache (loading it on first use) and, for a fitted
    estimator, refuses one whose embedding fingerprint differs from the one
    it was fitted on.
    """

    def _get_backbone(self):
        bb = getattr(self, "_backbone", None)
        device = resolve_device(self.device)
        dtype = resolve_dtype(self.dtype, device)
        device_map = getattr(self, "device_map", None)
        if bb is None or bb.device != device or bb.dtype != dtype:
            check_worker_device(device, device_map)  # GPU policy, see sktag.distributed
            bb = load_backbone(self.model, dtype=dtype, device=device, device_map=device_map,
                               trust_remote_code=self.trust_remote_code)
            fp = getattr(self, "backbone_fingerprint_", None)
            if fp is not None and fp != bb.fingerprint:
                raise ValueError(
                    f"This {type(self).__name__} was fitted on backbone {self.backbone_identity_!r} "
                    f"(embedding fingerprint {fp}) but model={self.model!r} now loads a different model "
                    f"(fingerprint {bb.fingerprint}). Refit, or point model at the original weights."
                )
            self._backbone = bb
        return bb

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_backbone", None)
        for key, value in state.items():  # learned tensors travel on CPU
            if isinstance(value, torch.nn.Module):
                state[key] = copy.deepcopy(value).to("cpu")
            elif isinstance(value, torch.Tensor):
                state[key] = value.detach().to("cpu")
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


class BaseTagEstimator(BackboneMixin):
    """Shared fit/predict logic; subclasses define the task (loss, targets, head)."""

    _task = None  # "regression" or "classification"

    def __init__(
        self,
        model="smollm2-135m",
        domains="SMILES",
        *,
        tag_length=10,
        domain_tags=None,
        tune_domain_tags=False,
        isolate_segments=False,
        max_iter=30,
        batch_size=32,
        learning_rate_init=1e-3,
        alpha=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        max_length=512,
        truncation="warn",
        canonicalize=True,
        on_invalid="raise",
        predict_batch_size=64,
        prefix_cache="auto",
        device="auto",
        dtype="auto",
        device_map=None,
        trust_remote_code=False,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.model = model
        self.domains = domains
        self.tag_length = tag_length
        self.domain_tags = domain_tags
        self.tune_domain_tags = tune_domain_tags
        self.isolate_segments = isolate_segments
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.alpha = alpha
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.max_length = max_length
        self.truncation = truncation
        self.canonicalize = canonicalize
        self.on_invalid = on_invalid
        self.predict_batch_size = predict_batch_size
        self.prefix_cache = prefix_cache
        self.device = device
        self.dtype = dtype
        self.device_map = device_map
        self.trust_remote_code = trust_remote_code
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    # ------------------------------------------------------------------ params
    def _validate_params(self):
        check_int("tag_length", self.tag_length, 1)
        check_int("max_iter", self.max_iter, 1)
        check_int("batch_size", self.batch_size, 1, allow=("auto",))
        check_int("predict_batch_size", self.predict_batch_size, 1)
        check_int("n_iter_no_change", self.n_iter_no_change, 1)
        check_int("max_length", self.max_length, 1)
        check_int("verbose", self.verbose, 0)
        check_float("learning_rate_init", self.learning_rate_init, 0.0, low_open=True)
        check_float("alpha", self.alpha, 0.0)
        check_float("tol", self.tol, 0.0)
        check_float("validation_fraction", self.validation_fraction, 0.0, 1.0, low_open=True)
        check_choice("truncation", self.truncation, ("warn", "raise"))
        check_choice("on_invalid", self.on_invalid, ("raise", "nan"))
        for name in ("tune_domain_tags", "isolate_segments", "early_stopping", "canonicalize",
                     "warm_start", "trust_remote_code"):
            check_bool(name, getattr(self, name))
        pc = self.prefix_cache
        if not (pc in ("auto", True, False, None) or (isinstance(pc, numbers.Integral) and pc >= 0)):
            raise ValueError(f"prefix_cache must be 'auto', False or a number of bytes >= 0, got {pc!r}.")
        if self.domain_tags is not None and not isinstance(self.domain_tags, (TagSet, str, os.PathLike)):
            raise ValueError('domain_tags must be None, "text", a TagSet or the path of a saved TagSet.')
        device = resolve_device(self.device)
        resolve_dtype(self.dtype, device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.one_d_array = True
        tags.input_tags.two_d_array = True
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ inputs
    def _initial_domain_tags(self, backbone, domains):
        """Tensor per unique domain: pretrained when given, else the init rule."""
        pretrained = self.domain_tags
        if isinstance(pretrained, str) and pretrained == "text":
            # the ablation of the Tag-LLM paper: the literal words "SMILES: "
            # instead of a learned tag.  Their token embeddings are exactly
            # what the text would feed the model.
            out = []
            for dom in domains:
                ids = backbone.tokenizer(f"{dom}: ", add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    out.append(backbone.embeddings(torch.as_tensor(ids, device=backbone.device)).float().cpu())
            return out
        if isinstance(pretrained, (str, os.PathLike)):
            pretrained = TagSet.load(pretrained, backbone=backbone)
        elif isinstance(pretrained, TagSet):
            pretrained.check_backbone(backbone)
        out = []
        for dom in domains:
            if pretrained is not None and dom in pretrained:
                out.append(pretrained[dom].clone())
            else:
                out.append(backbone.tag_init().expand(self.tag_length, -1).clone())
        return out

    def _set_layout(self, columns, names):
        """Record the input layout of ``fit``: columns, names, their domains."""
        column_domains = resolve_domains(self.domains, len(columns), names)
        domains = list(dict.fromkeys(column_domains))
        if hasattr(self, "module_") and self.warm_start and domains != self.domains_:
            raise ValueError(
                f"warm_start: X now has the domains {domains} but the fitted tags are for "
                f"{self.domains_}; refit with warm_start=False."
            )
        self.n_features_in_ = len(columns)
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.column_domains_ = column_domains
        self.domains_ = domains

    def _prepare_X(self, split, backbone, *, fitting, errors):
        """Validate and encode ``split = as_columns(X)``; returns (rows, valid_mask)."""
        columns, names, row_labels = split
        n = len(columns[0])
        if not fitting:
            if len(columns) != self.n_features_in_:
                raise ValueError(
                    f"X has {len(columns)} columns, but this estimator was fitted with "
                    f"{self.n_features_in_}."
                )
            fitted_names = getattr(self, "feature_names_in_", None)
            if fitted_names is not None and names is not None and list(fitted_names) != names:
                raise ValueError(
                    f"The column names of X {names} differ from those seen in fit "
                    f"{list(fitted_names)}; pass the same columns in the same order."
                )
            if fitted_names is not None and names is None:
                warnings.warn(
                    "X has no column names, but this estimator was fitted with a DataFrame; "
                    "columns are matched by position.",
                    UserWarning,
                    stacklevel=3,
                )
        if n == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        cols, valid = validate_columns(
            columns, self.column_domains_, names, row_labels, canonicalize=self.canonicalize, errors=errors
        )
        tokenized = tokenize_columns(backbone.tokenizer, cols, self.max_length, self.truncation)
        tag_index = {d: i for i, d in enumerate(self.domains_)}
        lengths = self.module_.tag_lengths()
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        rows = encode_rows(tokenized, [tag_index[d] for d in self.column_domains_], offsets, lengths)
        return rows, valid

    def _function_slots(self):
        lengths = self.module_.tag_lengths()
        start = int(sum(lengths[:-1]))
        return np.arange(start, start + lengths[-1])

    # ------------------------------------------------------------------ engine
    def _autocast(self, backbone):
        if backbone.device.type == "cuda" and backbone.dtype in (torch.bfloat16, torch.float16):
            return torch.autocast("cuda", dtype=backbone.dtype)
        return contextlib.nullcontext()

    def _hidden_full(self, backbone, rows, batch_rows):
        batch = _engine.collate([rows[i] for i in batch_rows], tail=self._function_slots(),
                                device=backbone.device)
        return _engine.full_forward(backbone, batch, self.module_.tag_table(), self.isolate_segments)

    def _prefix(self, backbone, rows, batch_rows):
        batch = _engine.collate([rows[i] for i in batch_rows], device=backbone.device)
        kv = _engine.prefix_kv(backbone, batch, self.module_.tag_table().detach(), self.isolate_segments)
        return kv, batch.valid

    def _forward_outputs(self, backbone, rows, batch_rows, store=None):
        """Head outputs of ``batch_rows`` (training path)."""
        with self._autocast(backbone):
            if self.tune_domain_tags:
                h = self._hidden_full(backbone, rows, batch_rows)
            else:
                if store is not None:
                    kv, valid = store.gather(batch_rows)
                else:
                    kv, valid = self._prefix(backbone, rows, batch_rows)
                h = _engine.tag_forward(backbone, kv, valid, self.module_.function_tag)
        return self.module_.head(h.float().to(self.module_.head.weight.device))

    @torch.inference_mode()
    def _raw_predict(self, X):
        """Head outputs for ``X`` in the original row order (NaN for invalid rows)."""
        check_is_fitted(self, "module_")
        backbone = self._get_backbone()
        self.module_.to(backbone.device)
        rows, valid = self._prepare_X(as_columns(X), backbone, fitting=False, errors=self.on_invalid)
        n_out = self.module_.head.out_features
        out = np.full((len(rows), n_out), np.nan, dtype=np.float64)
        idx = np.flatnonzero(valid)
        if len(idx):
            lengths = np.array([len(r) for r in rows])
            for b in _length_batches(idx, lengths, self.predict_batch_size):
                with self._autocast(backbone):
                    h = self._hidden_full(backbone, rows, b)
                out[b] = self.module_.head(h.float().to(self.module_.head.weight.device)).double().cpu().numpy()
        return out

    # ------------------------------------------------------------------ fitting
    def _fit(self, X, y, sample_weight=None):
        self._validate_params()
        backbone = self._get_backbone()
        rng = check_random_state(self.random_state)
        continuing = self.warm_start and hasattr(self, "module_")
        split = as_columns(X)
        columns, names, _ = split
        if len(columns[0]) == 0:
            raise ValueError("X has 0 samples; at least one is required.")
        # the layout (domains) comes before encoding: the module needs it
        self._set_layout(columns, names)

        if not continuing:
            domains = self.domains_
            self.backbone_identity_ = backbone.identity
            self.backbone_fingerprint_ = backbone.fingerprint
            targets = self._init_targets(y, self._weights_or_none(sample_weight, y))
            n_outputs = self._n_head_outputs()
            gen = torch.Generator().manual_seed(int(rng.randint(0, 2**31 - 1)))
            module = TagModule(
                self._initial_domain_tags(backbone, domains),
                backbone.tag_init().expand(self.tag_length, -1),
                n_outputs,
                tune_domain_tags=self.tune_domain_tags,
            )
            bound = 1.0 / np.sqrt(backbone.hidden_size)
            with torch.no_grad():
                module.head.weight.uniform_(-bound, bound, generator=gen)
                module.head.bias.zero_()
            self.module_ = module
            self._reset_training_state()
        else:
            targets = self._continue_targets(y)
            self.module_.domain_tags.requires_grad_(self.tune_domain_tags)
        self.module_.to(backbone.device)

        rows, _ = self._prepare_X(split, backbone, fitting=True, errors="raise")
        n = len(rows)
        if len(targets) != n:
            raise ValueError(f"X has {n} samples but y has {len(targets)}; they must match.")
        sw = check_sample_weight_like(sample_weight, n)

        train_idx, val_idx = self._split_validation(n, targets, rng)
        lengths = np.array([len(r) for r in rows])
        y_t = torch.as_tensor(self._encode_targets_tensor(targets), device=backbone.device)
        w_t = torch.as_tensor(sw, dtype=torch.float32, device=backbone.device)

        store = self._build_store(backbone, rows, lengths, np.concatenate([train_idx, val_idx]))
        params = [p for p in self.module_.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.learning_rate_init, weight_decay=self.alpha)
        batch_size = self._batch_size(backbone)

        best_state = None
        no_improve = 0
        show = self.verbose > 0
        epochs = _progress(range(self.max_iter), show, desc="fit", unit="epoch")
        t0 = time.perf_counter()
        converged = False
        start_state = None
        try:
            for _ in epochs:
                start_state = copy.deepcopy(self.module_.state_dict())
                start_opt = copy.deepcopy(opt.state_dict())
                while True:
                    try:
                        total = self._epoch(backbone, rows, lengths, train_idx, batch_size, rng,
                                            store, opt, y_t, w_t)
                        break
                    except torch.cuda.OutOfMemoryError:
                        # batch_size="auto": halve and redo the epoch from its start
                        if self.batch_size != "auto" or batch_size == 1:
                            raise
                        batch_size //= 2
                        self.module_.load_state_dict(start_state)
                        opt.load_state_dict(start_opt)
                        torch.cuda.empty_cache()
                        warnings.warn(f"CUDA out of memory; batch_size='auto' retries with {batch_size}.",
                                      UserWarning, stacklevel=3)
                self.batch_size_ = batch_size
                epoch_loss = float(total) / len(train_idx)  # the one host-device sync per epoch
                if not np.isfinite(epoch_loss):
                    self.module_.load_state_dict(start_state)
                    raise FloatingPointError(
                        f"The training loss became {epoch_loss} in epoch {self.n_iter_ + 1}; the weights "
                        f"of the last finite epoch were kept. Lower learning_rate_init "
                        f"(now {self.learning_rate_init}) or check the targets."
                    )
                self.n_iter_ += 1
                self.t_ += len(train_idx)
                self.loss_curve_.append(epoch_loss)
                if self.early_stopping:
                    score = self._validation_score(backbone, rows, lengths, val_idx, targets, sw, store)
                    self.validation_scores_.append(score)
                    improved = score > self.best_validation_score_ + self.tol
                    if score > self.best_validation_score_:
                        self.best_validation_score_ = score
                        best_state = copy.deepcopy(self.module_.state_dict())
                else:
                    improved = epoch_loss < self.best_loss_ - self.tol
                    if epoch_loss < self.best_loss_:
                        best_state = copy.deepcopy(self.module_.state_dict())
                self.best_loss_ = min(self.best_loss_, epoch_loss)
                no_improve = 0 if improved else no_improve + 1
                if show:
                    post = {"loss": f"{epoch_loss:.4f}"}
                    if self.early_stopping:
                        post["val"] = f"{self.validation_scores_[-1]:.4f}"
                    epochs.set_postfix(post)
                if no_improve >= self.n_iter_no_change:
                    converged = True
                    break
        except KeyboardInterrupt:
            # Never keep the weights of a half-finished epoch: the best epoch of
            # this fit, else the weights the interrupted epoch started from.
            if best_state is not None or start_state is not None:
                self.module_.load_state_dict(best_state if best_state is not None else start_state)
            warnings.warn(
                f"fit was interrupted after {self.n_iter_} complete epochs; the estimator keeps the "
                "best weights so far and can be used, or trained further with warm_start=True.",
                UserWarning,
                stacklevel=3,
            )
            if self.n_iter_ == 0:
                raise
            return self
        finally:
            self.fit_time_ = time.perf_counter() - t0
            del store
        if self.early_stopping and best_state is not None:
            self.module_.load_state_dict(best_state)
        if not converged and not self.early_stopping:
            warnings.warn(
                f"Stopped after max_iter={self.max_iter} epochs while the training loss was still "
                "improving; raise max_iter if the fit is not good enough.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _epoch(self, backbone, rows, lengths, train_idx, batch_size, rng, store, opt, y_t, w_t):
        """One pass over the training rows; returns the summed loss (a device tensor)."""
        total = torch.zeros((), device=backbone.device)
        batches = _length_batches(train_idx, lengths, batch_size, rng)
        for b in _progress(batches, self.verbose > 1, desc="batches", leave=False):
            b_t = _engine.to_device(b, backbone.device)
            out = self._forward_outputs(backbone, rows, b, store)
            per_sample = self._loss(out, y_t[b_t])
            w = w_t[b_t]
            loss = (per_sample * w).sum() / w.sum().clamp_min(1e-12)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total = total + loss.detach() * len(b)
        return total

    def _reset_training_state(self):
        """The bookkeeping of a fresh fit (also what ``from_tags`` leaves for warm starts)."""
        self.loss_curve_ = []
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = -np.inf if self.early_stopping else None
        self.best_loss_ = np.inf
        self.n_iter_ = 0
        self.t_ = 0

    @staticmethod
    def _weights_or_none(sample_weight, y):
        if sample_weight is None or y is None:
            return None
        return check_sample_weight_like(sample_weight, len(np.asarray(y)))

    def _batch_size(self, backbone):
        if self.batch_size == "auto":
            return 64 if backbone.device.type == "cuda" else 32
        return int(self.batch_size)

    def _build_store(self, backbone, rows, lengths, idx):
        """Cache the prefix of every training/validation row if it fits the budget."""
        if self.tune_domain_tags:
            return None
        need = _engine.PrefixStore.nbytes(backbone, lengths[idx].sum())
        budget = _memory_budget(self.prefix_cache, backbone.device)
        self.prefix_cache_bytes_ = need if need <= budget else 0
        if need > budget:
            if self.verbose:
                print(f"[sktag] prefix cache needs {need / _GiB:.2f} GiB > budget {budget / _GiB:.2f} GiB; "
                      "recomputing prefixes every batch.")
            return None
        cfg = backbone.config.get_text_config(decoder=True)
        kvh = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        store = _engine.PrefixStore(cfg.num_hidden_layers, kvh, hd, lengths, backbone.dtype, backbone.device)
        table = self.module_.tag_table().detach()
        batches = _length_batches(idx, lengths, self.predict_batch_size)
        with torch.inference_mode():
            for b in _progress(batches, self.verbose > 0, desc="caching prefixes", leave=False):
                batch = _engine.collate([rows[i] for i in b], device=backbone.device)
                with self._autocast(backbone):
                    kv = _engine.prefix_kv(backbone, batch, table, self.isolate_segments)
                store.put(b, kv, batch.valid)
        return store

    def _split_validation(self, n, targets, rng):
        idx = np.arange(n)
        if not self.early_stopping:
            return idx, idx[:0]
        from sklearn.model_selection import train_test_split

        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 1 or n - n_val < 1:
            raise ValueError(
                f"early_stopping needs at least one training and one validation sample; with "
                f"{n} samples and validation_fraction={self.validation_fraction} there are {n_val} "
                "validation samples."
            )
        stratify = self._stratify_labels(targets)
        try:
            tr, va = train_test_split(idx, test_size=n_val, random_state=rng.randint(0, 2**31 - 1),
                                      stratify=stratify)
        except ValueError as exc:
            raise ValueError(
                f"Cannot hold out a stratified validation set of {n_val} samples: {exc}. Use more "
                "samples, a larger validation_fraction or early_stopping=False."
            ) from exc
        return np.sort(tr), np.sort(va)

    def _stratify_labels(self, targets):
        return None

    @torch.no_grad()
    def _validation_score(self, backbone, rows, lengths, val_idx, targets, sw, store):
        outs = []
        for b in _length_batches(val_idx, lengths, self.predict_batch_size):
            outs.append((b, self._forward_outputs(backbone, rows, b, store).double().cpu().numpy()))
        raw = np.empty((len(rows), self.module_.head.out_features))
        for b, o in outs:
            raw[b] = o
        return self._score_raw(raw[val_idx], targets[val_idx], sw[val_idx])

    # ----------------------------------------------------------------- tags API
    def tagset(self, name=None, description=""):
        """The fitted tags as a :class:`~sktag.TagSet`, with the task head.

        Parameters
        ----------
        name : str, optional
            Name of the function tag; defaults to ``function_tag_name_`` or
            the class name.
        description : str, default=""
        """
        check_is_fitted(self, "module_")
        name = name or getattr(self, "function_tag_name_", None) or type(self).__name__
        ts = TagSet(self.backbone_identity_, self.backbone_fingerprint_, self.module_.function_tag.shape[1])
        for dom, t in zip(self.domains_, self.module_.domain_tags):
            ts.add(dom, t.detach().cpu(), kind="domain")
        ts.add(name, self.module_.function_tag.detach().cpu(), kind="function", description=description)
        ts.add_head(name, self.module_.head.weight.detach().cpu(), self.module_.head.bias.detach().cpu(),
                    self._task_metadata())
        return ts

    def save_tags(self, path, name=None, description=""):
        """Save :meth:`tagset` to a safetensors file (no pickle)."""
        self.tagset(name, description).save(path)

    @classmethod
    def from_tags(cls, tags, function_tag, *, domain_tags=None, domains=None, **params):
        """A fitted estimator from saved tags and a head, without training.

        This is how tags compose: a function tag and its head learned with
        one set of domain tags can be applied with another (``domain_tags``)
        or another column layout (``domains``).

        Parameters
        ----------
        tags : TagSet or path
            Holds ``function_tag`` with its head (and usually domain tags).
        function_tag : str
            Name of the function tag to use.
        domain_tags : TagSet or path, optional
            Domain tags to use instead of those in ``tags``.
        domains : str, list or dict, optional
            Column -> domain mapping; defaults to the one recorded with the head.
        **params
            Other constructor parameters (``model``, ``device``, ...).

        Returns
        -------
        estimator : fitted instance of ``cls``
        """
        ts = TagSet.load(tags) if not isinstance(tags, TagSet) else tags
        if function_tag not in ts.heads:
            raise ValueError(f"{function_tag!r} has no head in this TagSet; heads: {list(ts.heads)}.")
        head = ts.heads[function_tag]
        task = head["task"]
        if task.get("task") != cls._task:
            raise ValueError(f"the head of {function_tag!r} is a {task.get('task')} head, not {cls._task}.")
        doms = ts if domain_tags is None else (
            TagSet.load(domain_tags) if not isinstance(domain_tags, TagSet) else domain_tags)
        if domains is None and isinstance(task["domains"], dict) and task.get("feature_names_in") is None:
            # {0: ..., 1: ...} of a 2-D array: JSON turned the keys into strings
            default_domains = list(task["column_domains"])
        else:
            default_domains = task["domains"]
        est = cls(domains=domains if domains is not None else default_domains,
                  tag_length=ts.info(function_tag)["tag_length"], domain_tags=doms, **params)
        est._validate_params()
        backbone = est._get_backbone()
        ts.check_backbone(backbone)
        if doms is not ts:
            doms.check_backbone(backbone)
        n_cols = len(task["column_domains"]) if domains is None else (
            len(domains) if isinstance(domains, (list, tuple, dict)) else task.get("n_features_in", 1))
        est.n_features_in_ = n_cols
        if isinstance(est.domains, dict):
            est.feature_names_in_ = np.asarray(list(est.domains), dtype=object)
            est.column_domains_ = list(est.domains.values())
        elif domains is None and task.get("feature_names_in") is not None:
            est.feature_names_in_ = np.asarray(task["feature_names_in"], dtype=object)
            est.column_domains_ = list(task["column_domains"])
        else:
            est.column_domains_ = resolve_domains(est.domains, n_cols, None)
        dom_list = list(dict.fromkeys(est.column_domains_))
        missing = [d for d in dom_list if d not in doms]
        if missing:
            raise ValueError(f"no domain tag for {missing} in the given tags ({list(doms)}).")
        est.backbone_identity_ = backbone.identity
        est.backbone_fingerprint_ = backbone.fingerprint
        est.domains_ = dom_list
        est.module_ = TagModule(
            [doms[d] for d in dom_list], ts[function_tag], head["weight"].shape[0]
        )
        with torch.no_grad():
            est.module_.head.weight.copy_(head["weight"])
            est.module_.head.bias.copy_(head["bias"])
        est._restore_task(task)
        est.function_tag_name_ = function_tag
        est._reset_training_state()  # so that warm_start=True can continue training
        return est

    def _task_metadata(self):
        meta = {
            "task": self._task,
            "domains": self.domains if not isinstance(self.domains, tuple) else list(self.domains),
            "column_domains": list(self.column_domains_),
            "n_features_in": int(self.n_features_in_),
            "feature_names_in": (list(map(str, self.feature_names_in_))
                                 if hasattr(self, "feature_names_in_") else None),
        }
        meta.update(self._task_state())
        return meta

