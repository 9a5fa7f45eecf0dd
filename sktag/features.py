"""Classical molecular featurisers as scikit-learn transformers.

These are the non-LLM baselines for SMILES input: drop them into a pipeline
in place of a Tag-LLM estimator, e.g.
``make_pipeline(MorganFingerprint(), RandomForestRegressor())``.

Both transformers take one column of SMILES strings: a 1-D list / array /
:class:`pandas.Series`, or a single-column :class:`pandas.DataFrame` / 2-D
array.  They learn nothing in ``fit`` (they are stateless), so ``transform``
also works on an unfitted instance.  A string's features are kept in the
prefix store (:func:`sktag.set_prefix_store`) under the featuriser's
parameters and the string, so the folds of a cross-validation and the models
of a benchmark featurise each string once.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from ._forward.inputs import column_of_strings
from ._forward.prefix_store import active_store
from ._runtime.rdkit import parse_smiles, rdkit_quiet, require_rdkit
from ._runtime.validation import BOOLEAN, COMMON, NONNEG_INT, POS_INT, Instance, string_input_tags, validate_params
from .domains import InvalidInputError, format_invalid

__all__ = ["MorganFingerprint", "RDKitDescriptors"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _parse_column(values, labels, name, on_invalid):
    """Parse SMILES; raise or mark invalid rows according to ``on_invalid``."""
    mols, bad = [], []
    with rdkit_quiet():
        for i, v in enumerate(values):
            mol, reason = parse_smiles(v)
            if mol is None and not isinstance(v, str) and (v is None or v != v):
                reason = "missing value"
            mols.append(mol)
            if mol is None:
                bad.append((i, reason))
    if bad and on_invalid == "raise":
        msg = format_invalid(bad, values, "SMILES", row_labels=labels, column=name)
        raise InvalidInputError(msg, rows=[p for p, _ in bad], reasons=[r for _, r in bad])
    return mols


_ON_INVALID_PARAMETER = """
    on_invalid : {"raise", "nan"}, default="raise"
        What to do with strings RDKit cannot parse: ``"raise"`` raises
        :class:`~sktag.domains.InvalidInputError` naming every bad row;
        ``"nan"`` returns an all-NaN row for each."""


class _SmilesTransformer(TransformerMixin, BaseEstimator):
    """Shared plumbing of the SMILES featurisers (not public)."""

    _parameter_constraints = {"on_invalid": COMMON["on_invalid"]}

    def _check_params(self):
        validate_params(self)

    def __sklearn_tags__(self):
        return string_input_tags(super().__sklearn_tags__(), two_d=False, requires_fit=False)

    def fit(self, X, y=None):
        """Check the parameters and the input; nothing is learned.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, 1)
            SMILES strings.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The transformer.
        """
        require_rdkit(type(self).__name__)
        self._check_params()
        column_of_strings(X)
        self.n_features_in_ = 1
        self.n_features_out_ = len(self.get_feature_names_out())
        return self

    def _featurise(self, mols):  # pragma: no cover - overridden
        raise NotImplementedError

    def _feature_names(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def get_feature_names_out(self, input_features=None):
        """Output feature names.

        ``morgan_0 ... morgan_{n_bits-1}`` for :class:`MorganFingerprint`,
        the descriptor names for :class:`RDKitDescriptors`.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored (there is a single input column).

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output column.
        """
        return np.asarray(self._feature_names(), dtype=object)

    def transform(self, X):
        """Featurise SMILES strings.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or (n_samples, 1)
            SMILES strings (a 1-D list / array / Series, or a single-column
            DataFrame / 2-D array).

        Returns
        -------
        X_new : ndarray of float64, shape (n_samples, n_features_out)
            One row per input string.  With ``on_invalid="nan"`` the rows of
            invalid SMILES are all NaN.

        Raises
        ------
        InvalidInputError
            With ``on_invalid="raise"`` when any string is not a valid SMILES;
            the message names every bad row.
        """
        require_rdkit(type(self).__name__)
        self._check_params()
        values, labels, name = column_of_strings(X)
        mols = _parse_column(values, labels, name, self.on_invalid)
        n_out = len(self.get_feature_names_out())
        out = np.full((len(mols), n_out), np.nan, dtype=np.float64)
        ok = [i for i, m in enumerate(mols) if m is not None]
        store, keys = active_store(), {}
        if store is not None:  # a string featurised before (another fold, another model) is not featurised again
            config = (type(self).__name__, tuple(sorted((k, repr(v)) for k, v in self.get_params().items())))
            keys = {i: ("features", config, values[i]) for i in ok if isinstance(values[i], str)}
            found = {i: store.get(k) for i, k in keys.items()}
            for i, row in found.items():
                if row is not None:
                    out[i] = row.numpy()
            ok = [i for i in ok if found.get(i) is None]
        if ok:
            out[ok] = self._featurise([mols[i] for i in ok])
            for i in ok:
                if i in keys:
                    store.put(keys[i], torch.from_numpy(out[i].copy()))
        return out


class MorganFingerprint(_SmilesTransformer):
    __doc__ = f"""Morgan (ECFP-like) fingerprints of SMILES strings.

    Uses RDKit's fingerprint-generator API
    (:func:`rdkit.Chem.rdFingerprintGenerator.GetMorganGenerator`).

    Parameters
    ----------
    radius : int, default=2
        Radius of the circular environments (2 gives ECFP4-like bits).
    n_bits : int, default=2048
        Length of the folded fingerprint.
    counts : bool, default=False
        Count fingerprint (how often each hashed environment occurs) instead
        of a bit vector.
    use_chirality : bool, default=False
        Include chirality in the atom invariants.{_ON_INVALID_PARAMETER}

    Attributes
    ----------
    n_features_in_ : int
        Always 1 (one column of SMILES).
    n_features_out_ : int
        Number of output columns (``n_bits``).

    See Also
    --------
    RDKitDescriptors : physico-chemical descriptors.

    Examples
    --------
    >>> fp = MorganFingerprint(n_bits=64).fit(["CCO", "c1ccccc1"])
    >>> fp.transform(["CCO", "c1ccccc1"]).shape
    (2, 64)
    """

    def __init__(
        self, radius=2, n_bits=2048, counts=False, use_chirality=False, on_invalid="raise"
    ):
        self.radius = radius
        self.n_bits = n_bits
        self.counts = counts
        self.use_chirality = use_chirality
        self.on_invalid = on_invalid

    _parameter_constraints = {"radius": [NONNEG_INT], "n_bits": [POS_INT], "counts": [BOOLEAN],
                              "use_chirality": [BOOLEAN], "on_invalid": COMMON["on_invalid"]}

    def _feature_names(self):
        """``morgan_0 ... morgan_{n_bits-1}``."""
        validate_params(self, {"n_bits": [POS_INT]})
        return [f"morgan_{i}" for i in range(self.n_bits)]

    def _featurise(self, mols):
        from rdkit.Chem import rdFingerprintGenerator

        gen = rdFingerprintGenerator.GetMorganGenerator(
            radius=int(self.radius),
            fpSize=int(self.n_bits),
            includeChirality=bool(self.use_chirality),
        )
        fn = gen.GetCountFingerprintAsNumPy if self.counts else gen.GetFingerprintAsNumPy
        with rdkit_quiet():
            return np.vstack([fn(m) for m in mols]).astype(np.float64)


def _descriptor_table():
    require_rdkit("RDKitDescriptors")
    from rdkit.Chem import Descriptors

    return dict(Descriptors._descList)


class RDKitDescriptors(_SmilesTransformer):
    __doc__ = f"""RDKit's 2-D molecular descriptors of SMILES strings.

    The default set is every descriptor in ``rdkit.Chem.Descriptors._descList``
    (about 217 with RDKit 2026.09; the exact list depends on the RDKit
    version, check :meth:`get_feature_names_out`).

    Non-finite values are replaced by NaN: a descriptor that raises, returns
    ``inf`` / ``nan``, or returns a value outside the float32 range (for
    example ``Ipc`` of large molecules, which overflows) gives NaN.  The
    float32 limit matters because most scikit-learn tree models cast their
    input to float32 and reject values that overflow.  Estimators with native
    missing-value support (``HistGradientBoostingRegressor`` /
    ``HistGradientBoostingClassifier``, ``RandomForest*`` in recent
    scikit-learn) handle the NaNs; for others add a ``SimpleImputer``.

    Speed: about 1-2 ms per drug-like molecule for the full set, but ``Ipc``
    and ``AvgIpc`` take seconds on very large molecules (> ~100 heavy atoms);
    exclude them through ``descriptors`` if that matters.

    Parameters
    ----------
    descriptors : list of str or None, default=None
        Names of the descriptors to compute (see
        ``[name for name, _ in rdkit.Chem.Descriptors._descList]``), in the
        order given.  ``None`` computes all of them.{_ON_INVALID_PARAMETER}

    Attributes
    ----------
    n_features_in_ : int
        Always 1 (one column of SMILES).
    n_features_out_ : int
        Number of descriptors.

    See Also
    --------
    MorganFingerprint : circular fingerprints.

    Examples
    --------
    >>> d = RDKitDescriptors(descriptors=["MolWt", "TPSA"])
    >>> d.fit_transform(["CCO"]).round(2)
    array([[46.07, 20.23]])
    """

    def __init__(self, descriptors=None, on_invalid="raise"):
        self.descriptors = descriptors
        self.on_invalid = on_invalid

    def _names(self):
        table = _descriptor_table()
        if self.descriptors is None:
            return list(table)
        if isinstance(self.descriptors, str):
            raise ValueError(
                "descriptors must be a list of descriptor names, not a single string; "
                f"use descriptors=[{self.descriptors!r}]"
            )
        names = list(self.descriptors)
        if not names:
            raise ValueError("descriptors must not be empty (use None for all)")
        unknown = [n for n in names if n not in table]
        if unknown:
            raise ValueError(
                f"unknown RDKit descriptor name(s) {unknown}; see "
                "rdkit.Chem.Descriptors._descList for the available ones"
            )
        if len(set(names)) != len(names):
            raise ValueError("descriptors contains duplicate names")
        return names

    _parameter_constraints = {"descriptors": [Instance(list, tuple), None], "on_invalid": COMMON["on_invalid"]}

    def _check_params(self):
        validate_params(self)
        self._names()

    def _feature_names(self):
        """The descriptor names."""
        return self._names()

    def _featurise(self, mols):
        table = _descriptor_table()
        fns = [table[n] for n in self._names()]
        out = np.empty((len(mols), len(fns)), dtype=np.float64)
        with rdkit_quiet(), warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            for i, mol in enumerate(mols):
                for j, fn in enumerate(fns):
                    try:
                        out[i, j] = float(fn(mol))
                    except Exception:
                        out[i, j] = np.nan
        out[~np.isfinite(out) | (np.abs(out) > _FLOAT32_MAX)] = np.nan
        return out
