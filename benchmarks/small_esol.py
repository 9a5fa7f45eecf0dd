"""Small-data check: TagRegressor defaults, max_iter=5, on 300 random ESOL molecules (seeds 0-2).

The other 828 molecules are the test set; prints one JSON line per seed (test R², seconds, load).
Usage: ``python benchmarks/small_esol.py``
"""
import numpy as np, torch, time, os, json, warnings
warnings.simplefilter("ignore")
torch.set_num_threads(2)
from sktag import TagRegressor
from sktag.datasets import load_esol
X, y = load_esol(return_X_y=True); X = np.asarray(X, dtype=object)
out = []
for seed in (0, 1, 2):
    rng = np.random.RandomState(seed); idx = rng.permutation(len(X)); tr, te = idx[:300], idx[300:]
    t0 = time.perf_counter(); load = os.getloadavg()[0]
    est = TagRegressor(domains="SMILES", max_iter=5, random_state=seed).fit(X[tr], y[tr])
    r = dict(seed=seed, r2=float(est.score(X[te], y[te])), seconds=time.perf_counter() - t0, load=load,
             epochs=est.n_iter_, best_epoch=est.best_epoch_)
    print(json.dumps(r), flush=True); out.append(r)
print("mean R2", np.mean([r["r2"] for r in out]))
