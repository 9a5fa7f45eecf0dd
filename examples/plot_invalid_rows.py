"""
Invalid rows and feature names
==============================

Real data has unparsable SMILES, empty strings and missing values. ``fit`` always refuses them with an
error that names every bad row (:class:`~sktag.InvalidInputError` for strings that are not valid in their
domain). At predict or transform time,
``on_invalid="nan"`` gives NaN for those rows instead, keeping the order and the number of rows, so that
the rest of a batch is still predicted. This page also shows the feature names that
:class:`~sktag.LLMEmbedding` gives its output and the column names a fitted estimator remembers
(``feature_names_in_``).

This page runs on a tiny random model, so the numbers below only show that the code runs.
"""

# %%
# An error that names the bad rows
# --------------------------------
import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sktag import InvalidInputError, LLMEmbedding, TagRegressor
from sktag.datasets import load_esol
from sktag.testing import make_tiny_model

workdir = tempfile.TemporaryDirectory()
model = make_tiny_model(workdir.name)

X, y = load_esol(return_X_y=True)
train = pd.DataFrame({"smiles": X[:150]})
new = pd.DataFrame({"smiles": ["CCO", "not a molecule", None, "c1ccccc1O", "", "C1CC"]},
                   index=["a", "b", "c", "d", "e", "f"])

reg = TagRegressor(model=model, max_iter=2, random_state=0).fit(train, y[:150])
try:
    reg.predict(new[new["smiles"].str.len() > 0])  # strings only, two of them not molecules
except InvalidInputError as err:  # a subclass of ValueError
    print(err)

# %%
# Missing values (``None``, NaN) and empty strings are refused with a :class:`ValueError` before the strings
# are parsed:
try:
    reg.predict(new)
except ValueError as err:
    print(err)

# %%
# NaN for the invalid rows
# ------------------------
# ``on_invalid`` is a parameter like any other: set it before predicting (it is read at predict time).
reg.set_params(on_invalid="nan")
print(pd.Series(reg.predict(new), index=new.index, name="predicted log solubility"))

# %%
# ``feature_names_in_``
# ---------------------
# Fitted on a DataFrame, the estimator records its column names, as scikit-learn's estimators do; a
# DataFrame with other columns at predict time is refused.
print("feature_names_in_:", reg.feature_names_in_)
try:
    reg.predict(new.rename(columns={"smiles": "SMILES_string"}))
except ValueError as err:
    print(type(err).__name__ + ":", err)

# %%
# ``LLMEmbedding``: NaN rows and feature names
# --------------------------------------------
# The transformer has the same ``on_invalid`` parameter. Its features are named
# ``<column>__L<layer>_<pooling>_<k>``: the column, the hidden-state layer, the pooling and the coordinate.
# ``set_output(transform="pandas")`` returns a DataFrame with those names as columns.
emb = LLMEmbedding(model=model, on_invalid="nan").set_output(transform="pandas")
emb.fit(train)
features = emb.transform(new)
print("feature_names_in_:", emb.feature_names_in_)
print("layers_:", emb.layers_, "->", features.shape[1], "features")
print(features.iloc[:, :4].round(3))

fig, ax = plt.subplots(figsize=(8, 2.8))
ax.imshow(features.to_numpy(), aspect="auto", cmap="coolwarm", interpolation="nearest")
ax.set_yticks(range(len(new)), [f"{i}: {s!r}" if isinstance(s, str) else f"{i}: missing"
                               for i, s in zip(new.index, new["smiles"])])
ax.set_xlabel("feature (blank: NaN)")
ticks = np.arange(0, features.shape[1], 16)
ax.set_xticks(ticks, [features.columns[t] for t in ticks], fontsize=7)
ax.set_title("LLMEmbedding(on_invalid='nan').transform")
fig.tight_layout()

# %%
# The classical featurisers (:class:`sktag.features.MorganFingerprint`, :class:`sktag.features.RDKitDescriptors`)
# and the classifier's ``predict_proba`` follow the same rule; :meth:`TagClassifier.predict
# <sktag.TagClassifier.predict>` raises instead, since a label array has no missing value.
#
# With the real model
# -------------------
# The default model gives 10 layers x 576 = 5,760 features per column (layers 3, 6, ..., 30 of
# SmolLM2-135M), named ``smiles__L3_mean_0`` to ``smiles__L30_mean_575``. With a standard scaler and a ridge
# regression they reach RMSE 0.959 ± 0.031 on the full ESOL sets (report
# ``accuracy_standard_20261130-1810__pretrained_tag`` on the :doc:`benchmark pages </benchmarks/index>`).
plt.show()
