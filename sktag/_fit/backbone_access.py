"""Backbone access shared by every sktag estimator (estimators, pretrainer, LLMEmbedding)."""

from __future__ import annotations

import copy
import os

import numpy as np
import torch

from .._runtime.upgrade import upgrade_estimator
from ..backbone import load_backbone, model_identity, resolve_device, resolve_dtype
from ..distributed import check_worker_device


def _domain_names(domains):
    if isinstance(domains, str):
        return [domains]
    if isinstance(domains, dict):
        return [d for d in domains.values() if isinstance(d, str)]
    if isinstance(domains, (list, tuple)):
        return [d for d in domains if isinstance(d, str)]
    return []


class BackboneMixin:
    """Lazy access to the shared backbone; pickles carry no weights but do carry validators.

    ``get_backbone`` fetches the backbone from the process-wide cache
    (loading it on first use, and again when ``model``, ``device`` or
    ``dtype`` no longer match the one held) and, for a fitted estimator,
    refuses one whose embedding fingerprint differs from the one it was
    fitted on.  Pickling (to disk, or to joblib/Dask/Ray workers) drops the
    backbone, moves learned tensors to CPU and takes along the validators of
    custom domains registered with :func:`sktag.domains.register_domain`, so
    that the estimator validates its strings the same way in any process.
    """

    def _model_location(self):
        """``model``, or the absolute folder recorded at fit when ``model`` is a relative path.

        A fitted estimator unpickled in another working directory still finds
        the local model it was fitted on (the fingerprint check still applies).
        """
        model = self.model
        ident = getattr(self, "backbone_identity_", None)
        if (isinstance(model, (str, os.PathLike)) and ident and os.path.isabs(ident) and os.path.isdir(ident)
                and not os.path.isabs(os.fspath(model)) and not os.path.isdir(os.fspath(model))):
            return ident
        return model

    def get_backbone(self, refit=False):
        """The frozen backbone this estimator uses (:class:`~sktag.backbone.Backbone`), shared process-wide.

        Loaded on first use (and again when ``model``, ``device`` or ``dtype``
        no longer match the one held); a fitted estimator gets the dtype it
        was fitted in (``dtype_``).

        Parameters
        ----------
        refit : bool, default=False
            ``True`` (a fresh ``fit``) accepts another model than the one this
            estimator was fitted on, and leaves the backbone the estimator
            holds as it was (a fit that fails changes nothing); otherwise a
            backbone whose embedding fingerprint differs from the fitted one
            (``backbone_fingerprint_``) is refused, whether it was just loaded
            or already held.

        Returns
        -------
        Backbone
            The backbone, loaded or the one held.
        """
        bb = getattr(self, "_backbone", None)
        device = resolve_device(self.device)
        # a fitted model predicts (and continues) in the dtype it was fitted in, whatever ``dtype`` says now
        fitted_dtype = None if refit else getattr(self, "dtype_", None)
        dtype = fitted_dtype if fitted_dtype is not None else resolve_dtype(self.dtype, device)
        spec = self._backbone_spec_for(dtype)
        # the held backbone is reused only while it is still the one the
        # parameters name: ``set_params(model=...)`` must not keep the old one
        if bb is None or getattr(self, "_backbone_spec", None) != spec:
            device_map = getattr(self, "device_map", None)
            check_worker_device(device, device_map)  # GPU policy, see sktag.distributed
            bb = load_backbone(self._model_location(), dtype=dtype, device=device, device_map=device_map,
                               trust_remote_code=self.trust_remote_code,
                               attn_implementation=getattr(self, "attn_implementation", "auto"))
        if refit:
            # a fit that has not finished yet holds nothing: the backbone of a
            # fit that fails must not become the one a fitted model uses
            return bb
        # checked on every call, not only on a fresh load: whatever is held is
        # trusted only when it is the model this estimator was fitted on
        fp = getattr(self, "backbone_fingerprint_", None)
        if fp is not None and fp != bb.fingerprint:
            raise ValueError(
                f"This {type(self).__name__} was fitted on backbone {self.backbone_identity_!r} "
                f"(embedding fingerprint {fp}) but model={self.model!r} now loads a different model "
                f"(fingerprint {bb.fingerprint}). Refit, or point model at the original weights."
            )
        self._backbone, self._backbone_spec = bb, spec
        return bb

    def _backbone_spec_for(self, dtype):
        """What the held backbone must match to be reused: model, device, ``dtype`` and loading options."""
        return (model_identity(self._model_location())[0], resolve_device(self.device), dtype,
                repr(getattr(self, "device_map", None)), bool(self.trust_remote_code),
                getattr(self, "attn_implementation", "auto"))

    def _held_backbone(self, backbone) -> dict:
        """The attributes that make ``backbone`` the held one: installed with the rest of a fit that succeeded."""
        return {"_backbone": backbone, "_backbone_spec": self._backbone_spec_for(backbone.dtype)}

    #: the fitted attribute whose presence means "fitted" (a warm start continues from it)
    _fitted_marker = None

    def _continues(self, incremental=False) -> bool:
        """Whether this fit continues the fitted model: ``warm_start`` (or ``partial_fit``) on a fitted estimator."""
        return hasattr(self, self._fitted_marker) and (bool(getattr(self, "warm_start", False)) or incremental)

    def _install_fitted(self, attrs, names=None):
        """Set the fitted attributes ``attrs`` in one go: the one commit of every sktag estimator.

        ``feature_names_in_`` follows scikit-learn's rule: kept when every
        column name of ``X`` (``names``) is a string, removed otherwise.
        Returns the attributes as they were, for :meth:`_restore`.
        """
        old = dict(self.__dict__)
        attrs = dict(attrs)
        if names is not None and all(isinstance(c, str) for c in names):
            attrs["feature_names_in_"] = np.asarray(names, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self.__dict__.update(attrs)
        return old

    def _restore(self, old):
        """Put back the attributes :meth:`_install_fitted` returned (a fit that failed after its commit)."""
        self.__dict__.clear()
        self.__dict__.update(old)

    def domain_validators(self):
        """Validators of this estimator's custom domains (``{domain key: callable}``): carried ones first.

        Those of :func:`sktag.domains.register_domain` in this process, with
        the ones a fitted (and pickled) estimator carried taking precedence.
        """
        from .._forward.encoding import domain_key
        from ..domains import custom_validator

        out = {}
        for d in _domain_names(getattr(self, "domains", None)) + _domain_names(getattr(self, "domain", None)):
            v = custom_validator(d)
            if v is not None:
                out[domain_key(d)] = v
        out.update(getattr(self, "_carried_validators", {}))
        return out

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_backbone", None)
        state.pop("_backbone_spec", None)
        for key, value in state.items():  # learned tensors travel on CPU
            if isinstance(value, torch.nn.Module):
                state[key] = copy.deepcopy(value).to("cpu")
            elif isinstance(value, torch.Tensor):
                state[key] = value.detach().to("cpu")
        validators = self.domain_validators()
        if validators:
            state["_carried_validators"] = validators
        return state

    def __setstate__(self, state):
        self.__dict__.update(upgrade_estimator(state))
