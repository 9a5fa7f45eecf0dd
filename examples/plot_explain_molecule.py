"""
Explaining a prediction atom by atom
====================================

Which part of a molecule drives its prediction?  ``explain`` answers for every row: it attributes the prediction
to each input token by integrated gradients on the input embeddings, maps the SMILES tokens onto atoms, and
measures what the domain tag and the function tag change.  The attributions add up to the prediction minus the
prediction of a *baseline* row (a carbon atom ``C`` at every token, the tags as fitted: a carbon chain), up to a
small integration error that each explanation reports as ``delta``.  :func:`sktag.explain.draw_attributions` draws the molecules with their atoms
coloured by contribution.

This page runs on a tiny random model, so the colours below only show that the code runs; the documentation's
benchmark pages show the default model's explanations of ESOL molecules and a test of their faithfulness.
"""

# %%
# Fit, then explain
# -----------------
import io
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from sktag import TagRegressor
from sktag.datasets import load_esol
from sktag.explain import draw_attributions
from sktag.testing import make_tiny_model

workdir = tempfile.TemporaryDirectory()
model = make_tiny_model(workdir.name)

X, y = load_esol(return_X_y=True)
reg = TagRegressor(model=model, max_iter=3, random_state=0).fit(X[:200], y[:200])

explanations = reg.explain(X[200:204])  # one Explanation per row
e = explanations[0]
print("SMILES as the model read it:", e.strings[0])
print(f"prediction {e.prediction:.3f} = baseline {e.baseline_prediction:.3f} + attributions "
      f"{e.prediction - e.baseline_prediction + e.delta:.3f} (integration error {e.delta:.1e})")

# %%
# Tokens, tags and atoms
# ----------------------
# Every token gets an attribution. The tags are in the baseline too, so their share is measured apart: the effect
# of a tag is the prediction minus the prediction with the tag replaced by the reference token. A token's attribution is shared by the characters it covers; an atom collects the shares of its characters
# (a bracket atom such as ``[NH3+]`` as a whole; bond and ring-closure characters half to each of the two atoms
# they join; branch parentheses and the fragment dot to no atom).
for token, value in zip(e.tokens[0], e.token_attributions[0]):
    print(f"{token!r:8} {value:+.4f}")
print(f"effect of the domain tag {e.domain_tag_effects[0]:+.4f}, of the function tag {e.function_tag_effect:+.4f}")
atoms = e.atom_attributions()
print("atoms:", np.round(atoms, 4), "| branches and dots:", round(e.unassigned_attribution(), 4))

# %%
# Pictures
# --------
# ``draw_attributions`` renders one molecule or a grid (one shared colour scale: red raises the prediction,
# blue lowers it) as PNG bytes or SVG text, and writes a file when given a path (``.png`` or ``.svg``).
png = draw_attributions([x.strings[0] for x in explanations], [x.atom_attributions() for x in explanations],
                        n_cols=2, size=(300, 220), legends=[f"predicted {x.prediction:.2f}" for x in explanations],
                        title="contribution to the predicted log solubility")
fig, ax = plt.subplots(figsize=(6, 5.4))
ax.imshow(Image.open(io.BytesIO(png)))
ax.set_axis_off()
plt.show()

# %%
# More integration points make ``delta`` smaller; each costs one forward and one backward pass over the tagged
# rows (``n_steps=8`` by default).
for n_steps in (2, 6, 12):
    gaps = [abs(x.delta) for x in reg.explain(X[200:204], n_steps=n_steps)]
    print(f"n_steps={n_steps:2}: largest |delta| {max(gaps):.1e}")
