"""Scaffold-based splitting of molecules for honest validation.

Random splits of molecular data sets put close analogues in both train and
test and overestimate how well a model generalises to new chemistry.  A
*scaffold split* groups molecules by their Bemis-Murcko scaffold (ring
systems plus linkers) and keeps every scaffold on one side of the split.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

from ._forward.inputs import column_of_strings
from ._runtime.rdkit import parse_smiles, rdkit_quiet, require_rdkit
from .domains import InvalidInputError, format_invalid

__all__ = ["scaffold_groups", "ScaffoldSplit"]


def _scaffold_strings(values, labels, name, include_chirality):
    require_rdkit("Scaffold splitting (ScaffoldSplit, scaffold_groups)")
    from rdkit.Chem.Scaffolds import MurckoScaffold

    scaffolds, bad = [], []
    with rdkit_quiet():
        for i, v in enumerate(values):
            mol, reason = parse_smiles(v)
            if mol is None:
                bad.append((i, reason))
                scaffolds.append(None)
                continue
            scaffolds.append(
                MurckoScaffold.MurckoScaffoldSmiles(
                    mol=mol, includeChirality=bool(include_chirality)
                )
            )
    if bad:
        msg = format_invalid(bad, values, "SMILES", row_labels=labels, column=name)
        raise InvalidInputError(msg, rows=[p for p, _ in bad], reasons=[r for _, r in bad])
    return scaffolds


def scaffold_groups(smiles, *, include_chirality=False):
    """Group labels of the Bemis-Murcko scaffold of each molecule.

    Parameters
    ----------
    smiles : array-like of str, shape (n_samples,) or (n_samples, 1)
        SMILES strings (list, 1-D array, Series or single-column DataFrame).
    include_chirality : bool, default=False
        Keep stereochemistry in the scaffold (enantiomeric scaffolds then form
        different groups).

    Returns
    -------
    groups : ndarray of int64, shape (n_samples,)
        Integer code of the scaffold of each molecule, numbered in order of
        first appearance (0, 1, 2, ...).  Molecules without rings share the
        empty scaffold and hence one group.  Usable as ``groups=`` of
        :class:`~sklearn.model_selection.GroupKFold` and friends.

    Raises
    ------
    InvalidInputError
        If any string is not a valid SMILES (the message names the rows).

    Examples
    --------
    >>> scaffold_groups(["c1ccccc1O", "Cc1ccccc1", "CCO", "CCCN"]).tolist()
    [0, 0, 1, 1]
    """
    values, labels, name = column_of_strings(smiles, what="smiles")
    scaffolds = _scaffold_strings(values, labels, name, include_chirality)
    codes = {}
    return np.asarray([codes.setdefault(s, len(codes)) for s in scaffolds], dtype=np.int64)


class ScaffoldSplit(BaseCrossValidator):
    """Repeated scaffold train/test splits of SMILES data.

    Every split keeps each Bemis-Murcko scaffold entirely in train or
    entirely in test.  With ``balanced=True`` (the recipe of chemprop's
    ``scaffold_split(balanced=True)``): scaffold sets larger than half the
    test size are placed first (so they end up in train), the order within
    the big and within the small sets is shuffled with the split's seed;
    then the sets fill the train part until it has ``n - n_test`` molecules,
    and every set that no longer fits goes to test.  Each of the
    ``n_splits`` repetitions uses a different seed derived from
    ``random_state``.  With ``balanced=False`` the sets are taken largest
    first, so every repetition is the same deterministic split.

    Parameters
    ----------
    n_splits : int, default=5
        Number of (train, test) splits generated.
    test_size : float or int, default=0.2
        Float in (0, 1): fraction of molecules targeted for test; int: number
        of molecules.  The test part can be slightly larger because whole
        scaffold sets are moved.
    random_state : int, RandomState instance or None, default=None
        Controls the shuffling; pass an int for reproducible splits.
    balanced : bool, default=True
        Use the balanced recipe described above.
    smiles_column : str or int, optional
        Column of ``X`` holding the SMILES when ``X`` is a DataFrame (name) or
        a 2-D array (position) with several columns.  Not needed for 1-D
        input or a single column.

    See Also
    --------
    scaffold_groups : scaffold labels for ``GroupKFold`` etc.

    Notes
    -----
    This is repeated hold-out: the test parts of different splits overlap
    and do not cover every molecule, so it is not a partition and
    ``cross_val_predict`` refuses it.  For a scaffold-grouped partition use
    ``GroupKFold(n_splits=5).split(X, y, groups=scaffold_groups(X))``.

    Examples
    --------
    >>> from sktag.datasets import load_bbbp
    >>> X, y = load_bbbp(return_X_y=True)
    >>> cv = ScaffoldSplit(n_splits=2, random_state=0)
    >>> train, test = next(cv.split(X))
    >>> round(len(test) / len(X), 1)
    0.2
    """

    def __init__(
        self, n_splits=5, test_size=0.2, random_state=None, balanced=True, smiles_column=None
    ):
        self.n_splits = n_splits
        self.test_size = test_size
        self.random_state = random_state
        self.balanced = balanced
        self.smiles_column = smiles_column

    def get_n_splits(self, X=None, y=None, groups=None):
        """Number of splitting iterations.

        Parameters
        ----------
        X, y, groups : object
            Ignored, present for API compatibility.

        Returns
        -------
        n_splits : int
            The number of folds, ``n_splits``.
        """
        self._check_n_splits()
        return int(self.n_splits)

    def _check_n_splits(self):
        if (
            isinstance(self.n_splits, bool)
            or not isinstance(self.n_splits, numbers.Integral)
            or self.n_splits < 1
        ):
            raise ValueError(f"n_splits must be an integer >= 1, got {self.n_splits!r}")

    def _n_test(self, n):
        ts = self.test_size
        if isinstance(ts, bool):
            raise ValueError(f"test_size must be a float in (0, 1) or an int, got {ts!r}")
        if isinstance(ts, numbers.Integral):
            if not 1 <= ts < n:
                raise ValueError(f"test_size={ts} must be in [1, n_samples - 1] = [1, {n - 1}]")
            return int(ts)
        if isinstance(ts, numbers.Real) and 0 < ts < 1:
            n_test = int(np.ceil(ts * n))
            if n_test >= n:
                raise ValueError(f"test_size={ts} leaves no training samples for n_samples={n}")
            return n_test
        raise ValueError(f"test_size must be a float in (0, 1) or an int, got {ts!r}")

    def split(self, X, y=None, groups=None):
        """Generate indices to split data into training and test set.

        Parameters
        ----------
        X : array-like of str, shape (n_samples,) or DataFrame
            SMILES strings; with several columns, ``smiles_column`` selects
            the one holding SMILES.
        y : array-like, default=None
            Ignored.
        groups : array-like of shape (n_samples,), default=None
            Precomputed scaffold groups (e.g. from :func:`scaffold_groups`);
            when given, ``X`` is not parsed.

        Yields
        ------
        train : ndarray of int
            Training indices of the split.
        test : ndarray of int
            Test indices of the split.

        Raises
        ------
        InvalidInputError
            If ``groups`` is None and a string in ``X`` is not a valid
            SMILES.
        """
        self._check_n_splits()
        if not isinstance(self.balanced, (bool, np.bool_)):
            raise ValueError(f"balanced must be a bool, got {self.balanced!r}")
        scaffolds = self._scaffolds(X, groups)
        n = len(scaffolds)
        n_test = self._n_test(n)
        index_sets = _scaffold_sets(scaffolds)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=int(self.n_splits))
        for seed in seeds:
            train, test = self._split_once(index_sets, n_test, n - n_test, seed)
            yield np.sort(np.asarray(train, dtype=np.int64)), np.sort(
                np.asarray(test, dtype=np.int64)
            )

    def _scaffolds(self, X, groups):
        """The scaffold of every sample: ``groups`` as given, else computed from ``X``."""
        if groups is None:
            values, labels, name = column_of_strings(X, column=self.smiles_column)
            return _scaffold_strings(values, labels, name, False)
        scaffolds = list(np.asarray(groups).ravel())
        if X is not None and len(scaffolds) != _n_samples(X):
            raise ValueError(
                f"groups has {len(scaffolds)} entries but X has {_n_samples(X)} samples"
            )
        return scaffolds

    def _split_once(self, index_sets, n_test, n_train, seed):
        """Fill the training part with whole scaffold sets, in the recipe's order; the rest is test."""
        if self.balanced:
            big = [s for s in index_sets if len(s) > n_test / 2]
            small = [s for s in index_sets if len(s) <= n_test / 2]
            r = np.random.RandomState(seed)
            big = [big[k] for k in r.permutation(len(big))]
            small = [small[k] for k in r.permutation(len(small))]
            ordered = big + small
        else:
            ordered = sorted(index_sets, key=len, reverse=True)
        train, test = [], []
        for s in ordered:
            if len(train) + len(s) <= n_train:
                train.extend(s)
            else:
                test.extend(s)
        if not test:  # pragma: no cover - cannot happen with n_test >= 1
            raise ValueError("scaffold split produced an empty test set")
        if not train:
            raise ValueError(
                "scaffold split produced an empty training set: one scaffold set is "
                "larger than the training size; lower test_size"
            )
        return train, test

    def _iter_test_indices(self, X=None, y=None, groups=None):  # pragma: no cover
        for _, test in self.split(X, y, groups):
            yield test


def _scaffold_sets(scaffolds):
    """Sample indices grouped by scaffold, in order of first appearance (at least two sets)."""
    sets = {}
    for i, s in enumerate(scaffolds):
        sets.setdefault(s, []).append(i)
    index_sets = list(sets.values())
    if len(index_sets) < 2:
        raise ValueError(
            "all molecules share one scaffold; a scaffold split is impossible"
        )
    return index_sets


def _n_samples(X):
    if hasattr(X, "shape") and len(getattr(X, "shape", ())) >= 1:
        return X.shape[0]
    return len(X)
