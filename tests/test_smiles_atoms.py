"""sktag._explain.smiles_atoms: each SMILES character mapped to its atoms, in RDKit's atom order.

Hand-checked maps first (no RDKit needed), then a cross-check of atom count, atom symbols, bonds and bond
characters against RDKit's own parse of varied real SMILES, then the per-character to per-atom weight sums.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from sktag._explain import smiles_atoms as _smiles_atoms
from sktag._explain.smiles_atoms import AtomMap, atom_map, char_weights_to_atoms


@pytest.fixture(scope="module")
def chem():
    return pytest.importorskip("rdkit.Chem")


def test_bracket_atom_owns_all_its_characters():
    amap = atom_map("[NH3+]")
    assert amap == AtomMap("[NH3+]", ((0, 6),), ((0,),) * 6, ())
    assert amap.n_atoms == 1


@pytest.mark.parametrize(
    "smiles, spans, bonds",
    [
        ("Cl", ((0, 2),), ()),
        ("Br", ((0, 2),), ()),
        ("CCl", ((0, 1), (1, 3)), ((0, 1),)),
        ("BrCBr", ((0, 2), (2, 3), (3, 5)), ((0, 1), (1, 2))),
        ("CCC", ((0, 1), (1, 2), (2, 3)), ((0, 1), (1, 2))),
        ("Sc1ccccc1", ((0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8)), None),  # S + aromatic c
        ("Cn1ccnc1", ((0, 1), (1, 2), (3, 4), (4, 5), (5, 6), (6, 7)), None),  # C + aromatic n
        ("[Sc]", ((0, 4),), ()),  # scandium only in brackets
    ],
)
def test_two_letter_symbols_outside_brackets_are_only_cl_and_br(smiles, spans, bonds):
    amap = atom_map(smiles)
    assert amap.atom_spans == spans
    for k, (start, end) in enumerate(spans):
        assert amap.char_atoms[start:end] == ((k,),) * (end - start)
    if bonds is not None:
        assert amap.bonds == bonds


def test_benzene_ring_digits_are_shared_by_the_ring_bond_atoms():
    amap = atom_map("c1ccccc1")
    assert amap.n_atoms == 6
    assert amap.atom_spans == ((0, 1), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7))
    assert amap.char_atoms == ((0,), (0, 5), (1,), (2,), (3,), (4,), (5,), (0, 5))
    assert amap.bonds == ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5))


def test_branch_parentheses_go_to_no_atom_and_bond_characters_to_both():
    amap = atom_map("C(=O)O")
    assert amap.char_atoms == ((0,), (), (0, 1), (1,), (), (2,))
    assert amap.bonds == ((0, 1), (0, 2))


def test_stereo_centre_with_branches():
    amap = atom_map("[C@@H](F)(Cl)Br")
    assert amap.atom_spans == ((0, 6), (7, 8), (10, 12), (13, 15))
    assert amap.char_atoms == ((0,),) * 6 + ((), (1,), (), (), (2,), (2,), (), (3,), (3,))
    assert amap.bonds == ((0, 1), (0, 2), (0, 3))


def test_two_digit_ring_closures():
    amap = atom_map("C%10CCCC%10")
    assert amap.atom_spans == ((0, 1), (4, 5), (5, 6), (6, 7), (7, 8))
    assert amap.char_atoms[1:4] == amap.char_atoms[8:11] == ((0, 4),) * 3
    assert amap.bonds == ((0, 1), (1, 2), (2, 3), (3, 4), (0, 4))
    # '1' and '%10' are different rings: a fused 6- and 5-ring
    amap = atom_map("C1CCC%10CC1CC%10")
    assert amap.atom_spans == ((0, 1), (2, 3), (3, 4), (4, 5), (8, 9), (9, 10), (11, 12), (12, 13))
    assert amap.char_atoms[1] == amap.char_atoms[10] == (0, 5)
    assert amap.char_atoms[5:8] == amap.char_atoms[13:16] == ((3, 7),) * 3
    assert amap.bonds == ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 5), (5, 6), (6, 7), (3, 7))
    # the parenthesised form, compared by value with the %nn form
    amap = atom_map("C%(123)CC%(123)")
    assert amap.char_atoms == ((0,),) + ((0, 2),) * 6 + ((1,), (2,)) + ((0, 2),) * 6
    assert atom_map("C%(12)CC%12").bonds == ((0, 1), (1, 2), (0, 2))


@pytest.mark.parametrize(
    "smiles, bond_chars", [("C=1CCC1", (1, 2, 6)), ("C1CCC=1", (1, 5, 6)), ("C=1CCC=1", (1, 2, 6, 7))]
)
def test_bond_character_before_a_ring_digit_belongs_to_the_ring_bond(smiles, bond_chars):
    amap = atom_map(smiles)
    assert amap.n_atoms == 4
    assert amap.bonds == ((0, 1), (1, 2), (2, 3), (0, 3))
    shared = [i for i, owners in enumerate(amap.char_atoms) if len(owners) == 2]
    assert tuple(shared) == bond_chars
    assert all(amap.char_atoms[i] == (0, 3) for i in shared)


def test_dative_bond_characters_belong_to_both_atoms():
    amap = atom_map("C->[Fe]")
    assert amap.char_atoms == ((0,), (0, 1), (0, 1)) + ((1,),) * 4
    assert atom_map("[Fe]<-C").bonds == ((0, 1),)


def test_fragments_are_not_bonded_and_the_dot_goes_to_no_atom():
    amap = atom_map("CC.[Na+]")
    assert amap.atom_spans == ((0, 1), (1, 2), (3, 8))
    assert amap.char_atoms[2] == ()
    assert amap.bonds == ((0, 1),)
    # a dot inside a branch: the branch still returns to its atom
    assert atom_map("C(C.C)C").bonds == ((0, 1), (0, 3))
    # a ring closure written across a dot is a bond
    assert atom_map("C1.C1").bonds == ((0, 1),)


def test_explicit_hydrogen_atoms_are_atoms():
    amap = atom_map("[2H]C([2H])([2H])")
    assert amap.atom_spans == ((0, 4), (4, 5), (6, 10), (12, 16))
    assert amap.bonds == ((0, 1), (1, 2), (1, 3))
    assert [i for i, owners in enumerate(amap.char_atoms) if not owners] == [5, 10, 11, 16]
    assert atom_map("[H][H]").bonds == ((0, 1),)


def test_ring_number_reused_after_it_closes():
    amap = atom_map("C1CC1C1CC1")
    assert amap.atom_spans == ((0, 1), (2, 3), (3, 4), (5, 6), (7, 8), (8, 9))
    assert amap.char_atoms[1] == amap.char_atoms[4] == (0, 2)
    assert amap.char_atoms[6] == amap.char_atoms[9] == (3, 5)
    assert amap.bonds == ((0, 1), (1, 2), (0, 2), (2, 3), (3, 4), (4, 5), (3, 5))


def test_ring_digit_after_a_branch_attaches_to_the_branch_atom():
    amap = atom_map("C(C)1CC1")
    assert amap.bonds == ((0, 1), (0, 2), (2, 3), (0, 3))
    assert amap.char_atoms[4] == amap.char_atoms[7] == (0, 3)


ERRORS = [
    ("C(C", r"unbalanced parenthesis: '\(' is not closed at position 1"),
    ("C(C(C)", r"unbalanced parenthesis: '\(' is not closed at position 1"),
    ("CC)", r"unbalanced parenthesis: '\)' has no '\(' before it at position 2"),
    ("[NH4+", r"unbalanced bracket: '\[' at position 0 is not closed"),
    ("C[[C]", r"unbalanced bracket: '\[' at position 1 is not closed"),
    ("C]", r"unbalanced bracket: '\]' at position 1"),
    ("C1CC", r"ring closure 1 is opened but never closed at position 1"),
    ("C1CC2CC1", r"ring closure 2 is opened but never closed at position 4"),
    ("C%12CC", r"ring closure 12 is opened but never closed at position 1"),
    ("CC=", r"bond character '=' has no atom after it at position 2"),
    ("C=(C)", r"bond character '=' has no atom after it at position 1"),
    ("C==C", r"bond character '=' has no atom after it at position 1"),
    ("C(C=)C", r"bond character '=' has no atom after it at position 3"),
    ("C?C", r"unknown character '\?' at position 1"),
    ("CC O", r"unknown character ' ' at position 2 .*\(whitespace: pass the SMILES alone"),
    ("C+C", r"unknown character '\+' at position 1"),
    ("C%1CC%1", r"position 1 must be written '%nn'"),
    ("C%(123456)CC%(123456)", r"position 1 must be written '%nn'"),
    ("C11", r"joins atom 0 to itself at position 2"),
    ("C1C1", r"a second bond between atoms 0 and 1 at position 3"),
    ("=C", r"a bond character must follow an atom at position 0"),
    ("1CC1", r"ring-closure number '1' must follow an atom at position 0"),
    ("C(1)CC1", r"ring-closure number '1' must follow an atom at position 2"),
    ("C(=1)CC1", r"ring-closure number '1' must follow an atom at position 3"),
    ("C()C", r"'\)' must follow an atom \(empty branch\) at position 2"),
    ("(C)C", r"a branch '\(' must follow an atom at position 0"),
    (".C", r"a dot '\.' must follow an atom at position 0"),
    ("C..C", r"a dot '\.' must follow an atom at position 2"),
    ("C.", r"'\.' has nothing after it at position 1"),
    ("C(", r"'\(' has nothing after it at position 1"),
    ("[Xx]", r"unknown element 'Xx' in the bracket atom at position 0"),
    ("C[ge]", r"unknown element 'ge' in the bracket atom at position 1"),
    ("[C:]", r"cannot read the bracket atom '\[C:\]' at position 0"),
    ("[C+-]", r"cannot read the bracket atom '\[C\+-\]' at position 0"),
]


@pytest.mark.parametrize("smiles, message", ERRORS)
def test_invalid_smiles_raise_a_value_error_naming_the_position(smiles, message):
    with pytest.raises(ValueError, match=message):
        atom_map(smiles)


def test_rdkit_rejects_the_invalid_smiles_too(chem):
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    try:
        accepted = [s for s, _ in ERRORS if s != "CC O" and chem.MolFromSmiles(s, sanitize=False) is not None]
    finally:
        RDLogger.EnableLog("rdApp.*")
    assert accepted == []  # "CC O" is read by RDKit as "CC" named "O"


def test_empty_and_non_string_input():
    with pytest.raises(ValueError, match="empty SMILES"):
        atom_map("")
    with pytest.raises(TypeError, match="must be a str"):
        atom_map(None)


SMILES = [
    "CC(=O)Oc1ccccc1C(=O)O",  # aspirin
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",  # caffeine, Kekulé form
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",  # caffeine, aromatic form
    "CC(C)Cc1ccc(cc1)[C@@H](C)C(=O)O",  # ibuprofen
    "CC(=O)Nc1ccc(O)cc1",  # paracetamol
    "OC[C@H]1O[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O",  # glucose
    "CN1CCC[C@H]1c1cccnc1",  # nicotine
    "CCN(CC)C(=O)[C@H]1CN(C)[C@@H]2Cc3c[nH]c4cccc(c34)C2=C1",  # LSD
    "CC1([C@@H](N2[C@H](S1)[C@@H](C2=O)NC(=O)Cc1ccccc1)C(=O)O)C",  # penicillin G
    "N[C@@H](CS)C(=O)O",
    "OC(=O)[C@@H]1CCCN1",
    "C/C=C/C",
    "F/C=C\\F",
    "F/C=C/C=C\\C",
    "c1ccc2c(c1)[nH]c1ccccc12",  # carbazole
    "[Na+].[Cl-]",
    "[NH4+].[O-]S(=O)(=O)[O-].[NH4+]",
    "C[N+](C)(C)C",
    "CC[O-].[K+]",
    "O=[N+]([O-])c1ccccc1",
    "[O-][n+]1ccccc1",
    "CN=[N+]=[N-]",
    "C#[O+]",
    "[Cu+2].[O-]S([O-])(=O)=O",
    "C1CCC2(CC1)CCCC2",  # spiro
    "C12C3C4C1C5C2C3C45",  # cubane
    "c1ccc2cc3ccccc3cc2c1",
    "C%11CCC%12CCCCC%12C%11",
    "c1ccc2c(c1)C%10=CC=C%11C=CC=CC%11=C%10C2",
    "C%(123)CCC%(123)",
    "[2H]C([2H])([2H])O",
    "[H]C([H])([H])[H]",
    "[H][H]",
    "[13CH4]",
    "[CH3:1][OH:2]",
    "CC(C)(C)Br",
    "ClC(Cl)(Cl)Cl",
    "BrC1=CC=CC=C1",
    "OB(O)c1ccccc1",
    "c1ccsc1",
    "c1ccoc1",
    "[se]1cccc1",
    "CP(=O)(O)O",
    "CC#CC#N",
    "C[S@@](=O)c1ccccc1",
    "[Pt@SP1](Cl)(Cl)(N)N",
    "*c1ccccc1",
    "C[Si](C)(C)Cl",
    "CC(C)(C)c1ccc(O)cc1.CCO",
    "C1=CC=CC=C1.[Cl-].[NH3+]C",
    "Sc1ccccc1",
    "Cn1ccnc1",
    "C1CC1C1CC1",
    "C=1CCCCC=1",
    "c1ccccc:1",
    "c1ccc(cc1)-c1ccccc1",
    "C(C.C)C",
    "C->[Fe]",
]

_BOND_TYPES = {"-": "SINGLE", "=": "DOUBLE", "#": "TRIPLE", "$": "QUADRUPLE", ":": "AROMATIC", "/": "SINGLE",
               "\\": "SINGLE", "->": "DATIVE", "<-": "DATIVE"}


def _bond_text(smiles, position):
    """The bond written with the character at ``position`` ('->' and '<-' are two characters), or None."""
    for start in (position - 1, position):
        if start >= 0 and smiles[start:start + 2] in ("->", "<-"):
            return smiles[start:start + 2]
    return smiles[position] if smiles[position] in _BOND_TYPES else None


@pytest.mark.parametrize("smiles", SMILES)
def test_atoms_and_bonds_match_rdkit(chem, smiles):
    amap = atom_map(smiles)
    mol = chem.MolFromSmiles(smiles, sanitize=False)
    params = chem.SmilesParserParams()
    params.removeHs = False
    with_hs = chem.MolFromSmiles(smiles, params)
    assert amap.n_atoms == mol.GetNumAtoms() == with_hs.GetNumAtoms()
    for k, (start, end) in enumerate(amap.atom_spans):
        text, atom = smiles[start:end], mol.GetAtomWithIdx(k)
        assert atom.GetSymbol() == with_hs.GetAtomWithIdx(k).GetSymbol()
        if text.startswith("["):
            assert atom.GetSymbol().lower() in text.lower()
        else:  # an organic-subset atom: the text is the symbol, lower case for an aromatic atom
            assert text.lower() == atom.GetSymbol().lower()
            assert text[0].islower() == atom.GetIsAromatic()
    assert len(amap.bonds) == len({frozenset(b) for b in amap.bonds}) == mol.GetNumBonds()
    assert all(mol.GetBondBetweenAtoms(i, j) is not None for i, j in amap.bonds)
    for position, owners in enumerate(amap.char_atoms):
        if len(owners) == 2:  # a bond or ring-closure character: its two atoms are bonded
            bond = mol.GetBondBetweenAtoms(*owners)
            assert bond is not None and tuple(owners) in amap.bonds
            text = _bond_text(smiles, position)
            if text is not None:  # not a ring-closure digit: the bond is of the type written
                assert str(bond.GetBondType()) == _BOND_TYPES[text]
            if text in ("/", "\\"):
                assert str(bond.GetBondDir()) in ("ENDUPRIGHT", "ENDDOWNRIGHT")


def _outside_ring_numbers(smiles):
    """The positions not inside a '%(n)' ring-closure number (whose parentheses belong to the ring bond)."""
    inside = {i for m in re.finditer(r"%\(\d+\)", smiles) for i in range(m.start(), m.end())}
    return set(range(len(smiles))) - inside


@pytest.mark.parametrize("smiles", SMILES)
def test_every_character_is_mapped_by_its_kind(smiles):
    amap = atom_map(smiles)
    outside = _outside_ring_numbers(smiles)
    assert len(amap.char_atoms) == len(smiles)
    in_atom = set()
    for k, (start, end) in enumerate(amap.atom_spans):
        assert all(amap.char_atoms[i] == (k,) for i in range(start, end))
        in_atom.update(range(start, end))
    for i, char in enumerate(smiles):
        if i not in in_atom:
            expected = 0 if char in "()." and i in outside else 2
            assert len(amap.char_atoms[i]) == expected, (i, char)
    starts = [start for start, _ in amap.atom_spans]
    assert starts == sorted(starts)  # atoms in the order they are written


def test_char_weights_to_atoms_splits_shared_characters_equally():
    amap = atom_map("C(=O)O")
    atoms, unassigned = char_weights_to_atoms(amap, [1.0, 0.5, 2.0, 1.0, 0.5, 3.0])
    np.testing.assert_allclose(atoms, [2.0, 2.0, 3.0])
    assert unassigned == pytest.approx(1.0)
    atoms, unassigned = char_weights_to_atoms(atom_map("c1ccccc1"), [0, 6, 0, 0, 0, 0, 0, 2])
    np.testing.assert_allclose(atoms, [4, 0, 0, 0, 0, 4])
    assert unassigned == 0.0


def test_char_weights_to_atoms_conserves_the_total():
    rng = np.random.default_rng(0)
    for smiles in SMILES:
        amap = atom_map(smiles)
        weights = rng.normal(size=len(smiles))
        atoms, unassigned = char_weights_to_atoms(amap, weights)
        assert atoms.shape == (amap.n_atoms,) and isinstance(unassigned, float)
        assert atoms.sum() + unassigned == pytest.approx(weights.sum(), abs=1e-12)
        outside = _outside_ring_numbers(smiles)
        expected_unassigned = sum(w for i, (w, c) in enumerate(zip(weights, smiles)) if c in "()." and i in outside)
        assert unassigned == pytest.approx(expected_unassigned, abs=1e-12)


def test_char_weights_to_atoms_checks_the_length():
    amap = atom_map("CCO")
    with pytest.raises(ValueError, match=r"shape \(4,\) for a SMILES of 3 characters"):
        char_weights_to_atoms(amap, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"shape \(1, 3\) for a SMILES of 3 characters"):
        char_weights_to_atoms(amap, [[1.0, 2.0, 3.0]])


def test_the_lexer_does_not_import_rdkit():
    tree = ast.parse(Path(_smiles_atoms.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "re", "dataclasses", "typing", "numpy"}, imported
