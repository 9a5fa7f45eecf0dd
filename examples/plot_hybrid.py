"""
The hybrid: LLM features blended with classical models
======================================================

:class:`~sktag.HybridRegressor` fits several base models on the same molecules (by default the frozen LLM
features with a ridge regression, RDKit descriptors with gradient boosting, and Morgan counts with a random
forest) and blends their predictions with non-negative weights learned on scaffold-grouped out-of-fold
predictions. The blend has too few parameters to overfit a few hundred rows, and ``weights_`` says how much
each base model counts.

This page runs on a tiny random model, so the numbers below only show that the code runs.
"""

# %%
# Fit a hybrid
# ------------
# ``classical=`` takes ``(name, estimator)`` pairs; here the default pair with a smaller random forest, to keep
# the example quick.
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import root_mean_squared_error

from sktag import HybridRegressor
from sktag.datasets import load_esol
from sktag.hybrid import default_classical_models
from sktag.testing import make_tiny_model

workdir = tempfile.TemporaryDirectory()
model = make_tiny_model(workdir.name)

X, y = load_esol(return_X_y=True)
rng = np.random.RandomState(0)
sample = rng.choice(len(X), 200, replace=False)
X_train, y_train, X_test, y_test = X[sample[:150]], y[sample[:150]], X[sample[150:]], y[sample[150:]]

hybrid = HybridRegressor(
    model=model,
    classical=default_classical_models("regression", random_state=0, n_estimators=100),
    cv=3,
    random_state=0,
)
hybrid.fit(X_train, y_train)
print(f"test RMSE of the blend: {root_mean_squared_error(y_test, hybrid.predict(X_test)):.3f}")

# %%
# The blend's weights and the base models' out-of-fold errors
# -----------------------------------------------------------
# ``weights_`` follow ``base_names_``; ``oof_scores_`` is the RMSE of each base model's out-of-fold
# predictions and of the blend (in-sample for its few weights).
for name, w in zip(hybrid.base_names_, hybrid.weights_):
    print(f"{name:>17}: weight {w:.3f}, out-of-fold RMSE {hybrid.oof_scores_[name]:.3f}")
print(f"{'blend':>17}: intercept {hybrid.intercept_:.3f}, out-of-fold RMSE {hybrid.oof_scores_['blend']:.3f}")

fig, (ax_w, ax_s) = plt.subplots(1, 2, figsize=(9, 3))
ax_w.barh(hybrid.base_names_, hybrid.weights_, color="tab:blue")
ax_w.invert_yaxis()
ax_w.set_xlabel("weights_")
names = hybrid.base_names_ + ["blend"]
ax_s.barh(names, [hybrid.oof_scores_[n] for n in names], color=["tab:gray"] * len(hybrid.base_names_) + ["tab:green"])
ax_s.invert_yaxis()
ax_s.set_xlabel("out-of-fold RMSE (oof_scores_)")
fig.tight_layout()

# %%
# With the real model
# -------------------
# With the default model on the full ESOL sets (three scaffold splits), the hybrid reaches RMSE 0.813 ± 0.068,
# against 0.859 for descriptors with gradient boosting, 0.857 for the blend of the two classical models
# alone and 0.938 for the LLM features alone: the best model on ESOL. It gains a little on BBBP,
# Lipophilicity and HIA and loses on Caco2 and DAVIS. These numbers come from the report ``hybrid_20261207-1858`` on the
# :doc:`benchmark pages </benchmarks/index>`.
plt.show()
