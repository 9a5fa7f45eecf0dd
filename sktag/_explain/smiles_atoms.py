"""Which atoms each character of a SMILES string belongs to.

A language model reads a SMILES string as tokens, each covering a span of characters.  To turn per-token (or
per-character) attributions into per-atom attributions, every character is assigned to the atoms it writes:

* the characters of an atom belong to that atom: a bracket atom ``[13CH3+:2]`` as a whole (isotope, chirality,
  hydrogen count, charge and atom class included), the two letters of ``Cl`` and ``Br``, one letter otherwise;
* bond and ring-closure characters are shared equally by the two atoms they join: a bond character
  (``- = # $ : / \\``, and the dative ``->`` / ``<-``) belongs to the atom before it and the atom after it, and a
  ring-closure number (``1``, ``%12``, ``%(123)``), with a bond character written just before it, belongs to the
  two atoms the ring bond joins, at both of its ends;
* branch parentheses and the fragment dot go to no atom.

Atoms are numbered in the order they are written, which is RDKit's order for the same string
(``Chem.MolFromSmiles(smiles, sanitize=False)``, or with ``removeHs=False``: an explicit ``[H]`` is an atom).  The
lexer follows the OpenSMILES grammar in pure Python, so it needs no RDKit: outside brackets only ``Cl`` and ``Br``
are two-letter symbols (``Sc`` is a sulfur and an aromatic carbon), and ring numbers are compared by value
(``%(12)`` closes ``%12``).  A string this lexer cannot read raises a ValueError that names the position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["AtomMap", "atom_map", "char_weights_to_atoms"]

_ELEMENTS = frozenset(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se Br Kr Rb Sr Y Zr "
    "Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir "
    "Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl "
    "Mc Lv Ts Og * b c n o p s se as te si".split()
)
_BRACKET = re.compile(
    r"(?P<isotope>\d+)?(?P<symbol>\*|[A-Z][a-z]?|[a-z][a-z]?|#\d+)"
    r"(?:@(?:@|TH\d|AL\d|SP\d|TB\d{1,2}|OH\d{1,2})?)?(?:H\d*)?(?:[+-]\d+|\++|-+)?(?::\d+)?"
)
_RING_PARENS = re.compile(r"\((\d{1,5})\)")
_ORGANIC = "BCNOPSFIbcnops*"
_BOND_CHARS = "-=#$:/\\"
_DIGITS = "0123456789"
_AFTER_ATOM = ("atom", "ring", "close")  # tokens after which a bond, ring number, branch or dot may come


@dataclass(frozen=True)
class AtomMap:
    """The atoms of a SMILES string and the atoms each of its characters belongs to.

    Parameters
    ----------
    smiles : str
        The SMILES string.
    atom_spans : tuple of (int, int)
        One half-open character span ``(start, end)`` per atom, in atom order (RDKit's parse order).
    char_atoms : tuple of tuple of int
        One tuple of atom indices per character of ``smiles``: one atom for an atom's characters, the two atoms
        of the bond for bond and ring-closure characters, none for ``(``, ``)`` and ``.``.
    bonds : tuple of (int, int)
        One ``(earlier atom, later atom)`` pair per bond, written or implicit, in the order the bonds are
        completed in the string (a ring bond at its closing number).  No bond joins ``.``-separated fragments
        except a ring closure written across the dot.
    """

    smiles: str
    atom_spans: tuple[tuple[int, int], ...]
    char_atoms: tuple[tuple[int, ...], ...]
    bonds: tuple[tuple[int, int], ...]

    @property
    def n_atoms(self) -> int:
        """The number of atoms, explicit ``[H]`` atoms included."""
        return len(self.atom_spans)


def _bracket_end(smiles: str, start: int) -> int:
    """The end (one past ``]``) of the bracket atom that opens at ``start``, after checking its contents."""
    end = smiles.find("]", start + 1)
    inner_open = smiles.find("[", start + 1)
    if end < 0 or 0 <= inner_open < end:
        raise ValueError(f"unbalanced bracket: '[' at position {start} is not closed in SMILES {smiles!r}")
    match = _BRACKET.fullmatch(smiles, start + 1, end)
    if match is None:
        raise ValueError(f"cannot read the bracket atom {smiles[start:end + 1]!r} at position {start} in SMILES "
                         f"{smiles!r}")
    symbol = match.group("symbol")
    if symbol not in _ELEMENTS and not symbol.startswith("#"):
        raise ValueError(f"unknown element {symbol!r} in the bracket atom at position {start} in SMILES {smiles!r}")
    return end + 1


def _ring_number(smiles: str, start: int) -> tuple[int, int]:
    """The ring-closure number written at ``start`` (a digit, ``%nn`` or ``%(n...)``) and the end of its text."""
    if smiles[start] in _DIGITS:
        return int(smiles[start]), start + 1
    two = smiles[start + 1:start + 3]
    if len(two) == 2 and all(c in _DIGITS for c in two):
        return int(two), start + 3
    match = _RING_PARENS.match(smiles, start + 1)
    if match is None:
        raise ValueError(f"a ring-closure number at position {start} must be written '%nn' (two digits) or "
                         f"'%(n)' (one to five digits) in SMILES {smiles!r}")
    return int(match.group(1)), match.end()


def _next_token(smiles: str, i: int) -> tuple[str, int, int | None]:
    """The kind, end and (for a ring closure) number of the token that starts at position ``i``."""
    char = smiles[i]
    if char == "[":
        return "atom", _bracket_end(smiles, i), None
    if smiles.startswith(("Cl", "Br"), i):
        return "atom", i + 2, None
    if char in _ORGANIC:
        return "atom", i + 1, None
    if smiles.startswith(("->", "<-"), i):
        return "bond", i + 2, None
    if char in _BOND_CHARS:
        return "bond", i + 1, None
    if char in _DIGITS or char == "%":
        number, end = _ring_number(smiles, i)
        return "ring", end, number
    if char in "().":
        return {"(": "open", ")": "close", ".": "dot"}[char], i + 1, None
    if char == "]":
        raise ValueError(f"unbalanced bracket: ']' at position {i} has no '[' before it in SMILES {smiles!r}")
    hint = " (whitespace: pass the SMILES alone, without a name or CXSMILES extension)" if char.isspace() else ""
    raise ValueError(f"unknown character {char!r} at position {i} in SMILES {smiles!r}{hint}")


class _Parser:
    """The state of one left-to-right pass over a SMILES string (used by :func:`atom_map`)."""

    def __init__(self, smiles: str) -> None:
        self.smiles = smiles
        self.spans: list[tuple[int, int]] = []
        self.owners: list[tuple[int, ...]] = [()] * len(smiles)
        self.bonds: list[tuple[int, int]] = []
        self.bonded: set[tuple[int, int]] = set()
        self.current: int | None = None  # the atom that the next atom, bond or ring number attaches to
        self.branches: list[tuple[int, int]] = []  # (atom it returns to, position of '(') per open branch
        self.pending: list[int] = []  # the positions of a bond written but not yet followed by its atom
        self.bond_after = "start"  # the kind of the token before the pending bond
        self.rings: dict[int, tuple[int, list[int], int]] = {}  # number -> (atom, positions, position opened)
        self.last = "start"  # the kind of the previous token

    def fail(self, message: str, position: int) -> NoReturn:
        """Raise a ValueError with ``message``, naming ``position`` and the SMILES string."""
        raise ValueError(f"{message} at position {position} in SMILES {self.smiles!r}")

    def bond(self, first: int, second: int, positions: list[int], position: int) -> None:
        """Record the bond between atoms ``first`` and ``second``, written with the characters at ``positions``."""
        if first == second:
            self.fail(f"ring closure joins atom {first} to itself", position)
        key = (min(first, second), max(first, second))
        if key in self.bonded:
            self.fail(f"a second bond between atoms {first} and {second}", position)
        self.bonded.add(key)
        self.bonds.append((first, second))
        for p in positions:
            self.owners[p] = (first, second)

    def step(self, kind: str, start: int, end: int, number: int | None) -> None:
        """Read one token of the given kind spanning ``[start, end)``."""
        if self.last == "bond" and kind not in ("atom", "ring"):
            self.fail(f"bond character {self.smiles[self.pending[0]]!r} has no atom after it", self.pending[0])
        if kind == "close" and not self.branches:
            self.fail("unbalanced parenthesis: ')' has no '(' before it", start)
        if kind == "atom":
            atom = len(self.spans)
            self.spans.append((start, end))
            self.owners[start:end] = [(atom,)] * (end - start)
            if self.current is not None:
                self.bond(self.current, atom, self.pending, start)
            self.current, self.pending = atom, []
        elif kind == "ring":
            self.ring(number, start, end)
        elif self.last not in _AFTER_ATOM and not (kind == "bond" and self.last == "open"):
            name = {"bond": "a bond character", "open": "a branch '('", "close": "')'", "dot": "a dot '.'"}[kind]
            self.fail(f"{name} must follow an atom" + (" (empty branch)" if self.last == "open" else ""), start)
        elif kind == "bond":
            self.pending, self.bond_after = list(range(start, end)), self.last
        elif kind == "open":
            self.branches.append((self.current, start))
        elif kind == "close":
            self.current = self.branches.pop()[0]
        else:  # dot
            self.current = None
        self.last = kind

    def ring(self, number: int, start: int, end: int) -> None:
        """Open or close ring bond ``number`` at the current atom."""
        if self.last not in _AFTER_ATOM and not (self.last == "bond" and self.bond_after in _AFTER_ATOM):
            self.fail(f"ring-closure number {self.smiles[start:end]!r} must follow an atom", start)
        positions = self.pending + list(range(start, end))
        self.pending = []
        if number not in self.rings:
            self.rings[number] = (self.current, positions, start)
        else:
            opener, opener_positions, _ = self.rings.pop(number)
            self.bond(opener, self.current, opener_positions + positions, start)

    def finish(self) -> AtomMap:
        """Check that nothing is left open and return the map."""
        if self.last == "bond":
            self.fail(f"bond character {self.smiles[self.pending[0]]!r} has no atom after it", self.pending[0])
        if self.last in ("open", "dot"):
            self.fail(f"{self.smiles[-1]!r} has nothing after it", len(self.smiles) - 1)
        if self.branches:
            self.fail("unbalanced parenthesis: '(' is not closed", self.branches[-1][1])
        if self.rings:
            number, (_, _, position) = min(self.rings.items(), key=lambda item: item[1][2])
            self.fail(f"ring closure {number} is opened but never closed", position)
        return AtomMap(self.smiles, tuple(self.spans), tuple(self.owners), tuple(self.bonds))


def atom_map(smiles: str) -> AtomMap:
    """Map each character of a SMILES string to the atoms it belongs to.

    Parameters
    ----------
    smiles : str
        A SMILES string (OpenSMILES, without a name or CXSMILES extension after it).

    Returns
    -------
    AtomMap
        The atoms' character spans, each character's atoms and the bonds.  Atom ``k`` is the ``k``-th atom written,
        as in ``rdkit.Chem.MolFromSmiles(smiles, sanitize=False)``.  Atom characters belong to their atom, bond and
        ring-closure characters to both atoms of their bond, ``(``, ``)`` and ``.`` to none.

    Raises
    ------
    ValueError
        For an empty string, an unknown character, unbalanced brackets or parentheses, a bond with no atom after
        it, a ring closure never closed, or a ring closure that would repeat a bond; the message names the position.

    Examples
    --------
    >>> amap = atom_map("C1CC(=O)C1")
    >>> amap.n_atoms, amap.atom_spans
    (5, ((0, 1), (2, 3), (3, 4), (6, 7), (8, 9)))
    >>> amap.char_atoms
    ((0,), (0, 4), (1,), (2,), (), (2, 3), (3,), (), (4,), (0, 4))
    >>> amap.bonds
    ((0, 1), (1, 2), (2, 3), (2, 4), (0, 4))
    """
    if not isinstance(smiles, str):
        raise TypeError(f"smiles must be a str, got {type(smiles).__name__}")
    if not smiles:
        raise ValueError("empty SMILES string: there is no atom to map")
    parser = _Parser(smiles)
    position = 0
    while position < len(smiles):
        kind, end, number = _next_token(smiles, position)
        parser.step(kind, position, end, number)
        position = end
    return parser.finish()


def char_weights_to_atoms(amap: AtomMap, char_weights: ArrayLike) -> tuple[np.ndarray, float]:
    """Sum per-character weights into per-atom weights.

    A character that belongs to ``k`` atoms gives ``weight / k`` to each of them (bond and ring-closure characters
    are shared equally by their two atoms); a character of no atom (``(``, ``)``, ``.``) adds to the unassigned
    total, so that ``atoms.sum() + unassigned == sum(char_weights)`` up to rounding.

    Parameters
    ----------
    amap : AtomMap
        The map of the SMILES string, from :func:`atom_map`.
    char_weights : array-like of shape (len(amap.smiles),)
        One weight per character of ``amap.smiles``.

    Returns
    -------
    atoms : ndarray of shape (amap.n_atoms,)
        The weight of each atom, in atom order.
    unassigned : float
        The total weight of the characters that belong to no atom.

    Examples
    --------
    >>> atoms, unassigned = char_weights_to_atoms(atom_map("C(=O)O"), [1.0, 0.5, 2.0, 1.0, 0.5, 3.0])
    >>> atoms.tolist(), unassigned
    ([2.0, 2.0, 3.0], 1.0)
    """
    weights = np.asarray(char_weights, dtype=float)
    if weights.ndim != 1 or weights.shape[0] != len(amap.smiles):
        raise ValueError(f"char_weights must hold one weight per character: got shape {weights.shape} for a SMILES "
                         f"of {len(amap.smiles)} characters ({amap.smiles!r})")
    atoms = np.zeros(amap.n_atoms, dtype=float)
    unassigned = 0.0
    for weight, owners in zip(weights, amap.char_atoms):
        if owners:
            for atom in owners:
                atoms[atom] += weight / len(owners)
        else:
            unassigned += float(weight)
    return atoms, unassigned
