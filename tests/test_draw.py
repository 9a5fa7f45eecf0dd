"""Pictures of per-atom and per-residue attributions (sktag._explain.draw)."""

from __future__ import annotations

import io
import pathlib
import re
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sktag._explain import draw as _draw
from sktag._explain.draw import BAR_HEIGHT, diverging_colour, draw_attributions, draw_residue_attributions

REPO = pathlib.Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SMILES = ["CCO", "c1ccccc1O", "CC(=O)Oc1ccccc1C(=O)O", "[NH3+]CC([O-])=O", "[H]OC"]
N_ATOMS = [3, 7, 13, 5, 3]


def png_size(data):
    """(width, height) from the IHDR chunk of a PNG file, checking the signature."""
    assert isinstance(data, bytes)
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    return struct.unpack(">II", data[16:24])


def svg_size(text):
    m_w = re.search(r"<svg[^>]*?\swidth=['\"]([\d.]+)(?:px|pt)?['\"]", text, re.S)
    m_h = re.search(r"<svg[^>]*?\sheight=['\"]([\d.]+)(?:px|pt)?['\"]", text, re.S)
    return float(m_w.group(1)), float(m_h.group(1))


def weights_for(smiles_list, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=n) for n in (N_ATOMS[SMILES.index(s)] for s in smiles_list)]


# ---------------------------------------------------------------------------------------------------- colours
def test_diverging_colour_white_at_zero_red_positive_blue_negative():
    assert diverging_colour(0, 1) == (1, 1, 1)
    assert diverging_colour(0.0, 3.5) == (1.0, 1.0, 1.0)
    r, g, b = diverging_colour(0.6, 1)
    assert r > g and r > b and (r, g, b) != (1, 1, 1)
    r, g, b = diverging_colour(-0.6, 1)
    assert b > r and b > g
    assert diverging_colour(1, 1) == pytest.approx(_draw.POSITIVE_COLOUR)
    assert diverging_colour(-2, 2) == pytest.approx(_draw.NEGATIVE_COLOUR)
    assert diverging_colour(0.5, 1) == pytest.approx(tuple((1 + c) / 2 for c in _draw.POSITIVE_COLOUR))


def test_diverging_colour_clips_beyond_vmax():
    assert diverging_colour(10, 1) == diverging_colour(1, 1) == pytest.approx((0.70, 0.09, 0.17))
    assert diverging_colour(-10, 1) == diverging_colour(-1, 1) == pytest.approx((0.13, 0.40, 0.67))
    assert diverging_colour(float("inf"), 1) == diverging_colour(1, 1)
    assert diverging_colour(0.9, 1) != diverging_colour(1, 1)  # inside the scale: not clipped


@pytest.mark.parametrize("vmax", [0, -1, float("nan"), float("inf")])
def test_diverging_colour_rejects_bad_vmax(vmax):
    with pytest.raises(ValueError, match="vmax"):
        diverging_colour(0.5, vmax)


# ------------------------------------------------------------------------------------------------ image sizes
def test_one_molecule_png_is_one_panel_plus_the_colour_bar():
    png = draw_attributions("CCO", [0.2, -0.5, 1.0], title="contribution to the prediction")
    assert png_size(png) == (400, 300 + BAR_HEIGHT)
    png = draw_attributions("CCO", np.array([0.2, -0.5, 1.0]), size=(250, 180))
    assert png_size(png) == (250, 180 + BAR_HEIGHT)


def test_grid_of_five_molecules_in_three_columns_has_two_rows():
    png = draw_attributions(SMILES, weights_for(SMILES), n_cols=3, size=(200, 150), legends=list("abcde"))
    assert png_size(png) == (3 * 200, 2 * 150 + BAR_HEIGHT)


def test_fewer_molecules_than_columns_makes_one_short_row():
    png = draw_attributions(SMILES[:2], weights_for(SMILES[:2]), n_cols=4, size=(200, 150))
    assert png_size(png) == (2 * 200, 150 + BAR_HEIGHT)


def test_svg_output_is_text_with_the_canvas_size():
    svg = draw_attributions(SMILES, weights_for(SMILES), n_cols=3, size=(200, 150), image_format="svg")
    assert isinstance(svg, str)
    assert svg.startswith("<?xml") or "<svg" in svg
    assert svg_size(svg) == (600, 300 + BAR_HEIGHT)


# ------------------------------------------------------------------------------------------- path and format
@pytest.mark.parametrize("as_path", [str, pathlib.Path])
def test_path_writes_the_file_and_its_suffix_picks_the_format(tmp_path, as_path):
    png = draw_attributions("CCO", [1, 0, -1], path=as_path(tmp_path / "mol.png"))
    assert isinstance(png, bytes) and (tmp_path / "mol.png").read_bytes() == png
    svg = draw_attributions("CCO", [1, 0, -1], path=as_path(tmp_path / "mol.SVG"))
    assert isinstance(svg, str) and "<svg" in svg
    assert (tmp_path / "mol.SVG").read_text(encoding="iso-8859-1") == svg
    assert svg_size((tmp_path / "mol.SVG").read_text(encoding="iso-8859-1")) == (400, 300 + BAR_HEIGHT)


def test_no_suffix_means_png_and_image_format_overrides_it(tmp_path):
    assert draw_attributions("CCO", [1, 0, -1], path=tmp_path / "mol")[:8] == PNG_SIGNATURE
    assert (tmp_path / "mol").read_bytes()[:8] == PNG_SIGNATURE
    svg = draw_attributions("CCO", [1, 0, -1], path=tmp_path / "mol.img", image_format="SVG")
    assert "<svg" in svg and "<svg" in (tmp_path / "mol.img").read_text(encoding="iso-8859-1")


@pytest.mark.parametrize("kwargs, match", [
    (dict(path="mol.jpg"), "suffix"),
    (dict(image_format="pdf"), "image_format"),
    (dict(path="mol.png", image_format="svg"), "contradicts"),
])
def test_unknown_or_contradicting_format_is_an_error(tmp_path, kwargs, match):
    if "path" in kwargs:
        kwargs["path"] = tmp_path / kwargs["path"]
    with pytest.raises(ValueError, match=match):
        draw_attributions("CCO", [1, 0, -1], **kwargs)
    with pytest.raises(ValueError, match=match):
        draw_residue_attributions("MKT", [1, 0, -1], **kwargs)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------- validation
def test_bad_smiles_names_its_index_and_the_string():
    with pytest.raises(ValueError, match=r"SMILES 1 \('C1CC'\)"):
        draw_attributions(["CCO", "C1CC"], [[0, 0, 1], [0, 0, 0]])
    with pytest.raises(ValueError, match="SMILES 0"):
        draw_attributions("", [])


def test_wrong_number_of_weights_names_both_counts():
    with pytest.raises(ValueError, match=r"SMILES 2 \('\[NH3\+\]CC\(\[O-\]\)=O'\) has 5 atoms but 4 atom weights"):
        draw_attributions(["CCO", "c1ccccc1O", "[NH3+]CC([O-])=O"], [[0, 0, 1], np.zeros(7), [1, 2, 3, 4]])


def test_explicit_hydrogens_are_atoms_in_string_order():
    png = draw_attributions("[H]OC", [1.0, 0.0, -1.0])
    assert png_size(png)[0] == 400
    with pytest.raises(ValueError, match="has 3 atoms but 2"):
        draw_attributions("[H]OC", [1.0, 0.0])
    with pytest.raises(ValueError, match="has 5 atoms but 9"):  # bracket hydrogens are not atoms
        draw_attributions("[NH3+]CC([O-])=O", np.zeros(9))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_rejected(bad):
    with pytest.raises(ValueError, match="non-finite"):
        draw_attributions(["CCO", "CCO"], [[0, 0, 1], [0, bad, 1]])
    with pytest.raises(ValueError, match="non-finite"):
        draw_residue_attributions("MKT", [0, bad, 1])


def test_other_argument_errors():
    with pytest.raises(ValueError, match="2 SMILES but 1 arrays"):
        draw_attributions(["CCO", "CCO"], [[0, 0, 1]])
    with pytest.raises(ValueError, match="1 legends for 2 molecules"):
        draw_attributions(["CCO", "CCO"], [[0, 0, 1], [1, 0, 0]], legends=["a"])
    with pytest.raises(ValueError, match="vmax"):
        draw_attributions("CCO", [0, 0, 1], vmax=0)
    with pytest.raises(ValueError, match="n_cols"):
        draw_attributions("CCO", [0, 0, 1], n_cols=0)
    with pytest.raises(ValueError, match="1-D"):
        draw_attributions("CCO", [[0, 0, 1]])


def test_all_zero_weights_draw_on_a_unit_scale():
    assert _draw._resolve_vmax(None, [np.zeros(3)]) == 1.0
    assert _draw._resolve_vmax(None, [np.array([0.5, -2.0]), np.array([1.0])]) == 2.0
    assert png_size(draw_attributions("CCO", [0, 0, 0])) == (400, 300 + BAR_HEIGHT)


# ------------------------------------------------------------------------------------------- what is drawn
def _pixels(png):
    Image = pytest.importorskip("PIL.Image")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _reddish(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > 150) & (g < 90) & (b < 90)


def _blueish(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (b > 140) & (r < 90) & (b - g > 40)


def test_a_positive_atom_is_drawn_red_and_a_negative_one_blue():
    positive = _pixels(draw_attributions("CCO", [0.0, 0.0, 1.0]))
    negative = _pixels(draw_attributions("CCO", [0.0, 0.0, -1.0]))
    panel = slice(0, 300)
    assert _reddish(positive[panel]).sum() > 50 and _blueish(positive[panel]).sum() == 0
    assert _blueish(negative[panel]).sum() > 50 and _reddish(negative[panel]).sum() == 0
    for img in (positive, negative):  # the colour bar under the panel runs from blue to red
        bar = img[300:]
        assert _reddish(bar).sum() > 20 and _blueish(bar).sum() > 20


def test_a_grid_shares_one_colour_scale():
    img = _pixels(draw_attributions(["CCO", "CCO"], [[0, 0, 0.1], [0, 0, 1.0]], size=(300, 250)))
    assert _reddish(img[:250, :300]).sum() == 0  # 0.1 on a scale to 1: pale
    assert _reddish(img[:250, 300:]).sum() > 50
    img = _pixels(draw_attributions(["CCO", "CCO"], [[0, 0, 0.1], [0, 0, 1.0]], size=(300, 250), vmax=0.1))
    assert _reddish(img[:250, :300]).sum() > 50


def test_every_atom_is_highlighted_and_every_bond_in_the_mean_colour_of_its_atoms():
    from rdkit import Chem

    mol = Chem.MolFromSmiles("CC(=O)O")
    atoms, atom_colours, radii, bonds, bond_colours = _draw._highlights(mol, np.array([-1.0, 0.0, 1.0, 0.5]), 1.0)
    assert atoms == [0, 1, 2, 3] and bonds == [0, 1, 2] and set(radii.values()) == {0.4}
    assert atom_colours[2] == diverging_colour(1.0, 1.0)
    assert bond_colours[0] == pytest.approx(tuple((a + b) / 2 for a, b in zip(atom_colours[0], atom_colours[1])))
    assert bond_colours[1] == pytest.approx(tuple((a + b) / 2 for a, b in zip(atom_colours[1], atom_colours[2])))


def test_svg_holds_the_colour_of_a_strongly_positive_atom():
    def hexes(rgb):
        return {"#" + "".join(f"{f(255 * c):02X}" for c in rgb) for f in (int, round)}

    red = hexes(_draw.POSITIVE_COLOUR)
    svg = draw_attributions("CCO", [0.0, 0.0, 1.0], image_format="svg")
    assert any(h in svg for h in red)
    svg = draw_attributions("CCO", [0.0, 0.0, -1.0], image_format="svg")
    assert not any(h in svg for h in red)


# -------------------------------------------------------------------------------------------------- residues
def test_residue_png_has_exactly_the_requested_size(tmp_path):
    pytest.importorskip("matplotlib")
    w = np.linspace(-1, 1, 22)
    assert png_size(draw_residue_attributions("MKTAYIAKQRQISFVKSHFSRQ", w)) == (800, 250)
    png = draw_residue_attributions("MKTAYIAKQRQISFVKSHFSRQ", w, size=(500, 200), path=tmp_path / "r.png",
                                    title="per-residue attribution")
    assert png_size(png) == (500, 200) and (tmp_path / "r.png").read_bytes() == png


def test_residue_svg_is_text(tmp_path):
    pytest.importorskip("matplotlib")
    svg = draw_residue_attributions("MKTA", [0.5, -0.5, 0.0, 1.0], path=str(tmp_path / "r.svg"))
    assert isinstance(svg, str) and "<svg" in svg
    assert (tmp_path / "r.svg").read_text(encoding="utf-8") == svg


def test_residue_length_mismatch_names_both_lengths():
    with pytest.raises(ValueError, match="4 residues but 3 weights"):
        draw_residue_attributions("MKTA", [0.5, -0.5, 0.0])
    with pytest.raises(ValueError, match="non-empty"):
        draw_residue_attributions("", [])


def test_residue_plot_labels_letters_bars_colours_and_thins_long_labels():
    pytest.importorskip("matplotlib")
    fig = _draw._residue_figure("MKTA", np.array([0.5, -1.0, 0.0, 1.0]), (400, 200), 1.0, None)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list("MKTA")
    assert ax.get_ylabel() == "attribution"
    colours = [tuple(p.get_facecolor()[:3]) for p in ax.patches]
    assert colours[0][0] > colours[0][2] and colours[1][2] > colours[1][0] and colours[2] == (1, 1, 1)
    seq = "ACDEFGHIKLMNPQRSTVWY" * 15
    fig = _draw._residue_figure(seq, np.linspace(-1, 1, len(seq)), (800, 250), 1.0, None)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert 30 <= len(labels) <= 60 and labels[:2] == [seq[0], seq[5]]


def test_missing_matplotlib_says_how_to_install_it(monkeypatch):
    for name in ["matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"]:
        monkeypatch.setitem(sys.modules, name, None)  # what an import finds without matplotlib installed
    with pytest.raises(ImportError, match="python -m pip install matplotlib"):
        draw_residue_attributions("MKT", [1, 0, -1])


def test_imports_are_lazy_and_pyplot_is_never_used(tmp_path):
    # sktag._explain.draw is loaded under a bare "sktag" package (no torch, no __init__), so the run takes a second
    code = textwrap.dedent(f"""
        import sys, types
        pkg = types.ModuleType("sktag")
        pkg.__path__ = [{str(REPO / "sktag")!r}]
        sys.modules["sktag"] = pkg
        import sktag._explain.draw as d
        assert "matplotlib" not in sys.modules, "matplotlib imported at import time"
        assert "rdkit" not in sys.modules, "RDKit imported at import time"
        import matplotlib
        backend = dict.__getitem__(matplotlib.rcParams, "backend")
        d.draw_residue_attributions("MKT", [1, 0, -1])
        d.draw_attributions("CCO", [1, 0, -1])
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
        assert dict.__getitem__(matplotlib.rcParams, "backend") == backend, "the global backend changed"
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stdout + out.stderr
