"""Pictures of attributions: how much each atom of a molecule, or each residue of a sequence, adds to a prediction.

Two renderers share one diverging colour scale (:func:`diverging_colour`): negative attributions are blue, zero is
white and positive attributions are red, on a symmetric scale from ``-vmax`` to ``+vmax``.

* :func:`draw_attributions` draws molecules with RDKit's ``MolDraw2D``: every atom is highlighted with the colour of
  its weight, every bond with the mean colour of its two atoms, one panel per molecule in a grid, and a horizontal
  colour bar under the grid on the same canvas.  The same code writes PNG (Cairo) and SVG.
* :func:`draw_residue_attributions` draws one bar per character of a protein (or any) string with matplotlib's Agg
  canvas, never ``pyplot``, so the global backend is left alone.

Both return the image (``bytes`` for PNG, ``str`` for SVG) and, given ``path``, also write it there.  RDKit and
matplotlib are imported on first use, so importing this module needs neither.
"""

from __future__ import annotations

import importlib
import io
import math
import numbers
import pathlib
import re

import numpy as np

from .._runtime.rdkit import parse_smiles, rdkit_quiet, require_rdkit

__all__ = ["diverging_colour", "draw_attributions", "draw_residue_attributions"]

#: The colour of ``-vmax`` (blue), of zero (white) and of ``+vmax`` (red), RGB in 0-1.
NEGATIVE_COLOUR = (0.13, 0.40, 0.67)
ZERO_COLOUR = (1.0, 1.0, 1.0)
POSITIVE_COLOUR = (0.70, 0.09, 0.17)

#: Height in pixels of the strip under the molecules that holds the colour bar, its labels and its title.
BAR_HEIGHT = 60
_FORMATS = ("png", "svg")


def diverging_colour(value, vmax) -> tuple[float, float, float]:
    """The colour of an attribution on the symmetric blue-white-red scale from ``-vmax`` to ``+vmax``.

    Parameters
    ----------
    value : float
        The attribution; values beyond ``±vmax`` get the colour of ``±vmax``.
    vmax : float
        The end of the scale, a positive number.

    Returns
    -------
    colour : tuple of float
        ``(r, g, b)`` in 0-1: blue ``(0.13, 0.40, 0.67)`` at ``-vmax``, white at 0, red ``(0.70, 0.09, 0.17)`` at
        ``+vmax``, linear in between.

    Examples
    --------
    >>> diverging_colour(0.0, 1.0)
    (1.0, 1.0, 1.0)
    >>> diverging_colour(5.0, 1.0) == diverging_colour(1.0, 1.0) == (0.7, 0.09, 0.17)
    True
    >>> [round(c, 3) for c in diverging_colour(-0.5, 1.0)]
    [0.565, 0.7, 0.835]
    """
    vmax, value = _check_vmax(vmax), float(value)
    if math.isnan(value):
        raise ValueError("cannot colour a NaN attribution")
    t = min(max(value / vmax, -1.0), 1.0)
    end = POSITIVE_COLOUR if t >= 0 else NEGATIVE_COLOUR
    t = abs(t)
    return tuple(float((1.0 - t) * z + t * e) for z, e in zip(ZERO_COLOUR, end))


# ----------------------------------------------------------------------------------------------- shared helpers
def require_matplotlib(what="This feature"):
    """Import matplotlib's ``Figure`` and Agg canvas, or raise an ImportError that says what needed it and how to
    install it (sktag's pictures and benchmark plots alike)."""
    try:
        importlib.import_module("matplotlib")  # the package itself: its submodules may be loaded while it is not usable
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            f"{what} needs matplotlib, an optional dependency of sktag, which could not be imported ({exc}). "
            "Install it with: python -m pip install 'sktag[bench]' (or python -m pip install matplotlib)",
            name="matplotlib",
        ) from exc
    return Figure, FigureCanvasAgg


def _resolve_format(path, image_format):
    """``"png"`` or ``"svg"``: ``image_format`` if given, else the suffix of ``path``, else ``"png"``."""
    suffix = pathlib.Path(path).suffix.lower().lstrip(".") if path is not None else ""
    if image_format is not None:
        fmt = str(image_format).lower().lstrip(".")
        if fmt not in _FORMATS:
            raise ValueError(f"image_format must be 'png' or 'svg', got {image_format!r}")
        if suffix in _FORMATS and suffix != fmt:
            raise ValueError(f"image_format={image_format!r} contradicts the suffix of path {str(path)!r}")
        return fmt
    if not suffix:
        return "png"
    if suffix not in _FORMATS:
        raise ValueError(f"cannot tell the image format from the suffix of path {str(path)!r}: use .png or .svg "
                         "(or pass image_format)")
    return suffix


def _write(path, image):
    """Write ``image`` (PNG ``bytes`` or SVG ``str``) to ``path`` and return it unchanged."""
    if path is None:
        return image
    path = pathlib.Path(path)
    if isinstance(image, bytes):
        path.write_bytes(image)
    else:  # the encoding the XML declaration names (RDKit writes iso-8859-1), any other character as a reference
        m = re.match(r"""<\?xml[^>]*encoding=['"]([\w.-]+)['"]""", image)
        path.write_text(image, encoding=m.group(1) if m else "utf-8", errors="xmlcharrefreplace")
    return image


def _as_weights(weights, what):
    """``weights`` as a finite 1-D float array; ``what`` names it in the error messages."""
    try:
        arr = np.asarray(weights, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D (one number per atom or residue), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contain non-finite values (NaN or infinity)")
    return arr


def _resolve_vmax(vmax, arrays):
    """The end of the colour scale: ``vmax`` if given, else the largest ``|weight|`` (1 when all are 0)."""
    if vmax is None:
        vmax = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
        return vmax if vmax > 0 else 1.0
    return _check_vmax(vmax)


def _check_vmax(vmax):
    """``vmax`` as a float, or a ValueError when it is not a positive finite number."""
    vmax = float(vmax)
    if not (math.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a positive finite number, got {vmax!r}")
    return vmax


def _check_size(size):
    """``size`` as ``(width, height)``, two positive integers."""
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height) in pixels, got {size!r}") from None
    if width <= 0 or height <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return width, height


# ------------------------------------------------------------------------------------------------------ molecules
def _parse_all(smiles, atom_weights):
    """The molecules (explicit hydrogens kept, atoms in the order of the string) and their weight arrays."""
    require_rdkit("Drawing atom attributions")
    from rdkit import Chem

    single = isinstance(smiles, str)
    items = [smiles] if single else list(smiles)
    weights = [atom_weights] if single else list(atom_weights)
    if len(weights) != len(items):
        raise ValueError(f"got {len(items)} SMILES but {len(weights)} arrays of atom weights")
    params = Chem.SmilesParserParams()
    params.removeHs = False
    mols, arrays = [], []
    for i, (s, w) in enumerate(zip(items, weights)):
        if not isinstance(s, str):
            raise TypeError(f"SMILES {i} is not a string (got {type(s).__name__})")
        with rdkit_quiet():
            mol = Chem.MolFromSmiles(s.strip(), params)
        if mol is None or mol.GetNumAtoms() == 0:
            reason = parse_smiles(s)[1] or "no atoms"
            raise ValueError(f"SMILES {i} ({s!r}) could not be parsed: {reason}")
        arr = _as_weights(w, f"the atom weights of SMILES {i} ({s!r})")
        if arr.size != mol.GetNumAtoms():
            raise ValueError(f"SMILES {i} ({s!r}) has {mol.GetNumAtoms()} atoms but {arr.size} atom weights "
                             "were given")
        mols.append(mol)
        arrays.append(arr)
    return mols, arrays


def _highlights(mol, weights, vmax):
    """``DrawMolecules`` arguments for one molecule: every atom in its colour, every bond in its atoms' mean."""
    atom_colours = {i: diverging_colour(w, vmax) for i, w in enumerate(weights)}
    bonds, bond_colours = [], {}
    for bond in mol.GetBonds():
        a, b = atom_colours[bond.GetBeginAtomIdx()], atom_colours[bond.GetEndAtomIdx()]
        bonds.append(bond.GetIdx())
        bond_colours[bond.GetIdx()] = tuple((x + y) / 2 for x, y in zip(a, b))
    radii = {i: 0.4 for i in atom_colours}
    return list(atom_colours), atom_colours, radii, bonds, bond_colours


def _draw_colour_bar(drawer, top, width, vmax, title, steps=120):
    """Draw the colour bar, its ``-vmax`` / ``0`` / ``+vmax`` labels and ``title`` in the strip from ``top`` down."""
    from rdkit.Geometry import Point2D

    drawer.SetOffset(0, 0)  # DrawMolecules leaves the offset of the last panel
    length = max(min(width - 80, 360), 40)
    left, y0, y1 = (width - length) / 2, top + 20, top + 34
    drawer.SetFillPolys(True)
    drawer.SetLineWidth(1)
    for k in range(steps):
        drawer.SetColour(diverging_colour(-vmax + 2 * vmax * (k + 0.5) / steps, vmax))
        x0 = left + length * k / steps
        drawer.DrawRect(Point2D(x0, y0), Point2D(left + length * (k + 1) / steps, y1), True)
    drawer.SetFillPolys(False)
    drawer.SetColour((0.0, 0.0, 0.0))
    drawer.DrawRect(Point2D(left, y0), Point2D(left + length, y1), True)
    drawer.SetFontSize(13)
    for x, text in ((left, f"-{vmax:.3g}"), (width / 2, "0"), (left + length, f"+{vmax:.3g}")):
        drawer.DrawString(text, Point2D(x, top + 47), 0, True)
    if title:
        drawer.DrawString(str(title), Point2D(width / 2, top + 10), 0, True)


def _make_drawer(fmt, width, height, panel_width, panel_height):
    """A Cairo (PNG) or SVG ``MolDraw2D`` of ``width`` x ``height`` pixels cut into panels."""
    from rdkit.Chem.Draw import rdMolDraw2D

    if fmt == "svg":
        return rdMolDraw2D.MolDraw2DSVG(width, height, panel_width, panel_height)
    if not hasattr(rdMolDraw2D, "MolDraw2DCairo"):
        raise ImportError("PNG output needs an RDKit built with Cairo, which this one is not: "
                          "pass image_format='svg' (or a path ending in .svg)")
    return rdMolDraw2D.MolDraw2DCairo(width, height, panel_width, panel_height)


def draw_attributions(smiles, atom_weights, *, path=None, size=(400, 300), n_cols=4, legends=None, vmax=None,
                      image_format=None, title=None):
    """Draw molecules with each atom coloured by its attribution, and a colour bar underneath.

    Atom ``k`` is the ``k``-th atom written in the SMILES string: explicit hydrogens (``[H]``) are atoms of their
    own, hydrogens inside a bracket (``[NH3+]``) are not.  Every atom is highlighted with
    ``diverging_colour(weight, vmax)`` (blue negative, white zero, red positive) and every bond with the mean
    colour of its two atoms.  Several molecules go into a grid of ``n_cols`` panels per row, all on one scale.
    Under the grid, a horizontal colour bar runs from ``-vmax`` to ``+vmax``, with ``title`` above it.

    Parameters
    ----------
    smiles : str or sequence of str
        One SMILES string or several.
    atom_weights : array-like or sequence of array-like
        One float per atom (a 1-D array for one molecule, a sequence of them aligned with ``smiles``).
    path : str or pathlib.Path, optional
        Also write the image there; its suffix (``.png`` / ``.svg``) picks the format.
    size : (int, int), default=(400, 300)
        Width and height in pixels of each molecule's panel.
    n_cols : int, default=4
        Panels per row of the grid.
    legends : str or sequence of str, optional
        A text under each molecule.
    vmax : float, optional
        The end of the colour scale; default the largest absolute weight of all molecules (1 if all are 0).
    image_format : {"png", "svg"}, optional
        Default from the suffix of ``path``, else ``"png"``.
    title : str, optional
        What the colour bar means, e.g. ``"contribution to the prediction"``.

    Returns
    -------
    image : bytes or str
        The PNG file's bytes, or the SVG document as text.  The canvas is ``min(n_cols, n)`` panels wide and
        ``ceil(n / n_cols)`` panels plus :data:`BAR_HEIGHT` pixels high.

    Examples
    --------
    >>> png = draw_attributions("CCO", [0.1, -0.2, 0.9], title="contribution to the prediction")
    >>> png[1:4]
    b'PNG'
    >>> svg = draw_attributions(["CCO", "[H]OC"], [[0, 0, 1], [0.5, -1, 0]], size=(200, 150), image_format="svg")
    >>> "width='400px'" in svg and "height='210px'" in svg
    True
    """
    fmt = _resolve_format(path, image_format)
    panel_width, panel_height = _check_size(size)
    if not isinstance(n_cols, numbers.Integral) or n_cols < 1:
        raise ValueError(f"n_cols must be a positive integer, got {n_cols!r}")
    mols, arrays = _parse_all(smiles, atom_weights)
    if legends is not None:
        legends = [legends] if isinstance(legends, str) else [str(t) for t in legends]
        if len(legends) != len(mols):
            raise ValueError(f"got {len(legends)} legends for {len(mols)} molecules")
    vmax = _resolve_vmax(vmax, arrays)
    cols, rows = min(int(n_cols), len(mols)), -(-len(mols) // int(n_cols))
    width, grid_height = cols * panel_width, rows * panel_height
    drawer = _make_drawer(fmt, width, grid_height + BAR_HEIGHT, panel_width, panel_height)
    drawer.drawOptions().useBWAtomPalette()  # black labels on any RDKit: a red O or blue N reads as an attribution
    atoms, atom_colours, radii, bonds, bond_colours = zip(*(_highlights(m, w, vmax) for m, w in zip(mols, arrays)))
    drawer.DrawMolecules(mols, highlightAtoms=list(atoms), highlightAtomColors=list(atom_colours),
                         highlightAtomRadii=list(radii), highlightBonds=list(bonds),
                         highlightBondColors=list(bond_colours), legends=legends)
    _draw_colour_bar(drawer, grid_height, width, vmax, title)
    drawer.FinishDrawing()
    return _write(path, drawer.GetDrawingText())


# ------------------------------------------------------------------------------------------------------- residues
def _residue_figure(sequence, weights, size, vmax, title):
    """The matplotlib ``Figure`` of the residue bar plot (on an Agg canvas, ``size`` pixels at 100 dpi)."""
    Figure, FigureCanvasAgg = require_matplotlib("Drawing residue attributions")
    width, height = size
    fig = Figure(figsize=(width / 100, height / 100), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    n = len(sequence)
    x = np.arange(n)
    ax.bar(x, weights, width=0.85, color=[diverging_colour(w, vmax) for w in weights],
           edgecolor=(0.35, 0.35, 0.35), linewidth=0.4 if n <= 120 else 0.0)
    ax.axhline(0.0, color="black", linewidth=0.8)
    step = max(1, math.ceil(n / 60))
    ticks = x[::step]
    ax.set_xticks(ticks, [sequence[i] for i in ticks], fontsize=8 if n > 30 else 10)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(-1.08 * vmax, 1.08 * vmax)
    ax.set_xlabel("residue" if step == 1 else f"residue (one label every {step})")
    ax.set_ylabel("attribution")
    if title:
        ax.set_title(str(title))
    return fig


def draw_residue_attributions(sequence, weights, *, path=None, size=(800, 250), vmax=None, title=None,
                              image_format=None):
    """Draw a bar per residue of a protein (or any string), coloured and sized by its attribution.

    Bars go up for positive and down for negative attributions, coloured with :func:`diverging_colour` (blue
    negative, white zero, red positive), around a horizontal line at zero.  The x tick labels are the residue
    letters; a long sequence shows every ``k``-th letter so that at most 60 are shown.  Drawn with matplotlib's
    Agg canvas at 100 dpi (the PNG is exactly ``size`` pixels); ``pyplot`` and the global backend are not touched.

    Parameters
    ----------
    sequence : str
        The residues, one character each.
    weights : array-like of shape (len(sequence),)
        One attribution per character.
    path : str or pathlib.Path, optional
        Also write the image there; its suffix (``.png`` / ``.svg``) picks the format.
    size : (int, int), default=(800, 250)
        Width and height in pixels.
    vmax : float, optional
        The end of the colour scale and of the y axis (``±1.08 vmax``); default the largest absolute weight
        (1 if all are 0).
    title : str, optional
        A title over the plot.
    image_format : {"png", "svg"}, optional
        Default from the suffix of ``path``, else ``"png"``.

    Returns
    -------
    image : bytes or str
        The PNG file's bytes, or the SVG document as text.

    Examples
    --------
    >>> png = draw_residue_attributions("MKTAYIAK", [0.2, -0.1, 0.0, 0.5, -0.4, 0.1, 0.0, 0.3], size=(400, 200))
    >>> png[1:4]
    b'PNG'
    """
    fmt = _resolve_format(path, image_format)
    size = _check_size(size)
    if not isinstance(sequence, str) or not sequence:
        raise ValueError(f"sequence must be a non-empty string, got {sequence!r}")
    weights = _as_weights(weights, "the residue weights")
    if weights.size != len(sequence):
        raise ValueError(f"the sequence has {len(sequence)} residues but {weights.size} weights were given")
    vmax = _resolve_vmax(vmax, [weights])
    fig = _residue_figure(sequence, weights, size, vmax, title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=100, metadata={"Date": None} if fmt == "svg" else None)
    data = buffer.getvalue()
    return _write(path, data if fmt == "png" else data.decode("utf-8"))
