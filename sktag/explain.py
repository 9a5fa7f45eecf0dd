"""Explanations of the Tag-LLM estimators' predictions: per token, per atom, per tag, and their pictures.

``TagRegressor.explain(X)`` and ``TagClassifier.explain(X)`` return one
:class:`Explanation` per row of ``X``.  Each attributes the explained output
(the prediction of a regressor, in the target's units; the log-odds of a
binary classifier's positive class, or one class's logit) to every input
token by integrated gradients on the input embeddings, and measures the
effect of each tag:

* the **baseline** row has one reference token at every data token — a
  carbon atom ``C`` for SMILES (a carbon chain of the same number of
  tokens), alanine ``A`` for proteins (as in alanine scanning), the mean input
  embedding for other domains — and keeps the fitted tags, so the model
  reads a tagged row all along the path; an attribution says how much a
  token moves the output away from that reference;
* the token attributions add up to ``prediction - baseline_prediction``; the
  gap left by the numerical integration is :attr:`Explanation.delta`;
* a tag's **effect** is the output minus the output with that tag's vectors
  replaced by the reference embedding (occlusion, not part of the sum);
* a SMILES token's attribution is shared equally by the characters it
  covers, and the characters' shares are summed per atom
  (:meth:`Explanation.atom_attributions`): every character of a bracket atom
  (``[C@@H]``, ``[NH3+]``) and of a two-letter element (``Cl``, ``Br``)
  belongs to its atom; bond characters and ring-closure digits are shared
  equally by the two atoms they join; branch parentheses and the fragment
  dot ``.`` go to no atom (:attr:`Explanation` keeps their total).

:func:`draw_attributions` draws molecules with atoms coloured by their
attribution (PNG or SVG, a shared diverging colour bar);
:func:`draw_residue_attributions` draws a bar per character of a protein
sequence (or any string).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._explain.draw import draw_attributions, draw_residue_attributions
from ._explain.smiles_atoms import atom_map, char_weights_to_atoms

__all__ = ["Explanation", "draw_attributions", "draw_residue_attributions"]


@dataclass(frozen=True)
class Explanation:
    """Attributions of one row's explained output to its tokens and tags.

    Returned by ``explain`` of :class:`~sktag.TagRegressor` and
    :class:`~sktag.TagClassifier`, one per row.  Columns (input strings) are
    in the order ``fit`` saw them.

    Parameters
    ----------
    strings : tuple of str
        Each column's string as the model read it (the canonical SMILES when
        the estimator canonicalises).
    domains : tuple of str
        Each column's domain.
    tokens : tuple of tuple of str
        Each column's tokens, as the text each one covers in its string.
    spans : tuple of tuple of (int, int)
        The character span ``(start, end)`` of every token in its string.
    token_attributions : tuple of ndarray
        One attribution per token, per column.
    domain_tag_effects : tuple of float
        The effect of each column's domain tag: the output minus the output
        with the tag's vectors replaced by the column's reference embedding.
    function_tag_effect : float
        The same for the function tag (replaced by the last column's
        reference embedding).
    prediction : float
        The explained output for this row.
    baseline_prediction : float
        The explained output of the baseline row (every data token at its
        column's reference embedding, the tags as fitted).
    output : str
        What is explained, in words (for example ``"prediction"`` or
        ``"log-odds of class 1"``).

    Attributes
    ----------
    delta : float
        The sum of the token attributions minus ``prediction -
        baseline_prediction``: the integration's error (0 for an exact
        integral).

    Examples
    --------
    >>> from sktag import TagRegressor
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> X, y = ["CCO", "CCN", "c1ccccc1", "CC(=O)O"] * 3, [0.1, 0.5, -1.0, 0.3] * 3
    >>> reg = TagRegressor(model=model, max_iter=1, early_stopping=False, random_state=0).fit(X, y)
    >>> e = reg.explain(["OCC"])[0]
    >>> e.strings, e.tokens
    (('CCO',), (('C', 'C', 'O'),))
    >>> e.atom_attributions().shape
    (3,)
    """

    strings: tuple
    domains: tuple
    tokens: tuple
    spans: tuple
    token_attributions: tuple
    domain_tag_effects: tuple
    function_tag_effect: float
    prediction: float
    baseline_prediction: float
    output: str = "prediction"

    @property
    def delta(self) -> float:
        """The integration's error: the sum of the token attributions minus the output's change from the baseline."""
        total = sum(float(np.sum(a)) for a in self.token_attributions)
        return total - (self.prediction - self.baseline_prediction)

    def _column(self, column):
        if not -len(self.strings) <= int(column) < len(self.strings):
            raise ValueError(f"column={column} is out of range: this row has {len(self.strings)} column(s).")
        return int(column) % len(self.strings)

    def char_attributions(self, column=0) -> np.ndarray:
        """One attribution per character of a column's string.

        Each token's attribution is shared equally by the characters it
        covers; characters no token covers (cut off by ``max_length``) get 0.

        Parameters
        ----------
        column : int, default=0
            The input column.

        Returns
        -------
        ndarray of shape (len(strings[column]),)
            The characters' attributions.
        """
        j = self._column(column)
        out = np.zeros(len(self.strings[j]))
        for (start, end), a in zip(self.spans[j], self.token_attributions[j]):
            if end > start:
                out[start:end] += a / (end - start)
        return out

    def atom_map(self, column=0):
        """The character-to-atom map of a SMILES column (atoms in the order they are written).

        Parameters
        ----------
        column : int, default=0
            The input column; its string must be SMILES.

        Returns
        -------
        AtomMap
            ``atom_spans`` (the characters of each atom), ``char_atoms``
            (the atoms of each character) and ``bonds``.
        """
        return atom_map(self.strings[self._column(column)])

    def atom_attributions(self, column=0) -> np.ndarray:
        """One attribution per atom of a SMILES column, atoms in the order they are written in :attr:`strings`.

        Atom ``k`` is atom ``k`` of ``Chem.MolFromSmiles(strings[column])``
        parsed without removing hydrogens (see the module's notes for how
        bond, ring-closure and branch characters are shared).

        Parameters
        ----------
        column : int, default=0
            The input column (an index into :attr:`strings`); its string must
            be SMILES.

        Returns
        -------
        ndarray of shape (n_atoms,)
            The atoms' attributions.
        """
        return self._atom_shares(column)[0]

    def unassigned_attribution(self, column=0) -> float:
        """The attribution of a SMILES column's characters that belong to no atom (branches, fragment dots).

        Parameters
        ----------
        column : int, default=0
            The SMILES column, as for :meth:`atom_attributions`.

        Returns
        -------
        float
            Their total.
        """
        return float(self._atom_shares(column)[1])

    def _atom_shares(self, column):
        """``(per-atom attributions, unassigned total)`` of a SMILES column's character attributions."""
        return char_weights_to_atoms(self.atom_map(column), self.char_attributions(column))

    def draw(self, path=None, column=0, **kwargs):
        """Draw a column's attributions: atoms coloured for SMILES, one bar per character otherwise.

        Parameters
        ----------
        path : str or path-like, optional
            Where to write the picture; its suffix (``.png``, ``.svg``)
            chooses the format.
        column : int, default=0
            The input column.
        **kwargs
            Passed to :func:`draw_attributions` (SMILES) or
            :func:`draw_residue_attributions` (other domains).

        Returns
        -------
        bytes or str
            The PNG image (bytes) or the SVG text (str).
        """
        j = self._column(column)
        if str(self.domains[j]).strip().lower() == "smiles":
            return draw_attributions(self.strings[j], self.atom_attributions(j), path=path, **kwargs)
        return draw_residue_attributions(self.strings[j], self.char_attributions(j), path=path, **kwargs)
