"""The world's difficulty check: a non-learned log-mel-statistics baseline with a logistic-regression probe
per suite dataset. A world that a baseline solves perfectly cannot tell encoders apart; one where it stays
at chance has no learnable structure. ``baseline_scores`` measures where a world sits between the two;
``general_pool_scores`` how learnable the general-audio pool's classes are at each ontology level.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from avexlab.errors import EvaluationError, expected_found
from avexlab.synth.world import World


def clip_features(world: World, clip_ids: list[str], batch_size: int = 64) -> np.ndarray:
    """Log-mel mean+std features ``[N, 256]`` float32 of ``clip_ids`` (rendered or read by ``world.load``),
    computed in batches of equal-length clips (every synthetic clip lasts ``clip_s`` seconds)."""
    import torch

    from avexlab.audio.mel import log_mel_statistics

    sr = world.config.sample_rate
    n = int(round(world.config.clip_s * sr))
    out = []
    for i in range(0, len(clip_ids), batch_size):
        waves = np.zeros((len(clip_ids[i : i + batch_size]), n), dtype=np.float32)
        for j, cid in enumerate(clip_ids[i : i + batch_size]):  # rendering is per item; features are batched
            x, _ = world.load(cid)
            waves[j, : min(n, len(x))] = x[:n]
        out.append(log_mel_statistics(torch.from_numpy(waves), sr).numpy())
    return np.concatenate(out).astype(np.float32)


def _mean_ap(y: np.ndarray, scores: np.ndarray) -> float:
    """mAP over ALL classes (a class without positives counts 0), as in the paper's protocol."""
    from sklearn.metrics import average_precision_score

    aps = [
        average_precision_score(y[:, c], scores[:, c]) if y[:, c].any() else 0.0 for c in range(y.shape[1])
    ]
    return float(np.mean(aps))


def baseline_scores(world: World, suites: list[str] | None = None, seed: int = 0) -> pl.DataFrame:
    """Probe scores of the log-mel baseline on every dataset of ``suites`` (default: all).

    Trains ``LogisticRegression`` (one-vs-rest for multi-label) on train+val, scores test. Returns a
    tidy frame ``suite, dataset, domain, metric, value, chance, n_train, n_test, classes``: accuracy for
    single-label datasets, mAP for multi-label ones; ``chance`` is the majority-class accuracy or the
    mean class prevalence (the mAP of random scores). ``syn-birdset`` gets a second row: the same probe
    scored on held-out focal clips of its species (``domain`` focal), the focal -> soundscape gap."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cache: dict[str, np.ndarray] = {}

    def feats(ids: list[str]) -> np.ndarray:
        todo = [c for c in dict.fromkeys(ids) if c not in cache]
        if todo:
            for c, f in zip(todo, clip_features(world, todo), strict=True):
                cache[c] = f
        return np.stack([cache[c] for c in ids])

    rows = []
    for name in suites or list(world.suites):
        suite = world.suites[name]
        for ds, df in suite.manifests.items():
            train = df.filter(pl.col("split") != "test")
            test = df.filter(pl.col("split") == "test")
            classes = sorted(set(train["labels"].explode().drop_nulls().to_list()))
            if len(classes) < 2 or test.height == 0:
                raise EvaluationError(
                    expected_found(
                        f"baseline on {ds}",
                        "at least 2 train classes and test clips",
                        f"{len(classes)} classes, {test.height} test clips",
                        "Use a larger preset.",
                    )
                )
            x_tr, x_te = feats(train["clip_id"].to_list()), feats(test["clip_id"].to_list())
            index = {c: i for i, c in enumerate(classes)}

            def multi_hot(labels: list[list[str]], index: dict[str, int] = index) -> np.ndarray:
                y = np.zeros((len(labels), len(index)), dtype=np.int64)
                for r, ls in enumerate(labels):
                    for lab in ls:
                        if lab in index:
                            y[r, index[lab]] = 1
                return y

            lr = LogisticRegression(C=1.0, max_iter=2000, random_state=seed)
            if suite.multi_label:
                y_tr, y_te = multi_hot(train["labels"].to_list()), multi_hot(test["labels"].to_list())
                keep = (y_tr.sum(0) > 0) & (y_tr.sum(0) < len(y_tr))
                model = make_pipeline(StandardScaler(), OneVsRestClassifier(lr))
                model.fit(x_tr, y_tr[:, keep])
                scores = np.zeros(y_te.shape)
                scores[:, keep] = model.predict_proba(x_te)
                value, metric = _mean_ap(y_te, scores), "map"
                chance = float(np.mean(y_te.mean(0)))
            else:
                y_tr = np.array([index[ls[0]] for ls in train["labels"].to_list()])
                y_te = np.array([index.get(ls[0], -1) for ls in test["labels"].to_list()])
                model = make_pipeline(StandardScaler(), lr)
                model.fit(x_tr, y_tr)
                value, metric = float(np.mean(model.predict(x_te) == y_te)), "accuracy"
                chance = float(np.bincount(y_te[y_te >= 0]).max() / len(y_te))
            rows.append(
                {
                    "suite": name,
                    "dataset": ds,
                    "domain": test["domain"][0],
                    "metric": metric,
                    "value": value,
                    "chance": chance,
                    "n_train": train.height,
                    "n_test": test.height,
                    "classes": len(classes),
                }
            )
            if name == "syn-birdset":  # the same probe on held-out FOCAL clips of the same species
                focal = world.suites["syn-beans-clf"].split("test").filter(pl.col("species").is_in(classes))
                y_f = multi_hot(focal["labels"].to_list())
                s_f = np.zeros(y_f.shape)
                s_f[:, keep] = model.predict_proba(feats(focal["clip_id"].to_list()))
                rows.append(
                    {
                        "suite": name,
                        "dataset": ds,
                        "domain": "focal",
                        "metric": "map",
                        "value": _mean_ap(y_f, s_f),
                        "chance": float(np.mean(y_f.mean(0))),
                        "n_train": train.height,
                        "n_test": focal.height,
                        "classes": len(classes),
                    }
                )
    return pl.DataFrame(rows)


def general_pool_scores(world: World, test_fraction: float = 0.25, seed: int = 0) -> pl.DataFrame:
    """How learnable the general-audio pool's classes are: the log-mel baseline's accuracy at each level of
    the ontology (``class``, ``parent``, ``branch``; :func:`avexlab.synth.general.general_label_at`).

    The pool is training data and has no test split, so each class's clips are split by their order in
    the pool: the last ``test_fraction`` of them (at least one) are held out, the rest train a
    ``LogisticRegression`` on standardised features. Returns ``level, value, chance, n_train, n_test,
    classes``; ``chance`` is the majority-label share of the held-out clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from avexlab.synth.general import LEVELS, general_label_at

    pool = world.pools["general"].with_columns(pl.col("labels").list.first().alias("label"))
    counts = pool.group_by("label").len()
    if counts["len"].min() < 2:
        raise EvaluationError(
            expected_found(
                "general-pool baseline",
                "at least 2 clips per class (one to train on, one to test)",
                f"{counts['len'].min()} (general_per_class={world.config.general_per_class})",
                "Use a world with more general clips per class (the quick preset).",
            )
        )
    pool = pool.with_columns(
        pl.int_range(pl.len()).over("label").alias("rank"), pl.len().over("label").alias("count")
    )
    held = pl.col("rank") >= pl.col("count") - (pl.col("count") * test_fraction).round().clip(1, None)
    train, test = pool.filter(~held), pool.filter(held)
    x = clip_features(world, pool["clip_id"].to_list())
    index = {c: i for i, c in enumerate(pool["clip_id"].to_list())}
    x_tr = x[[index[c] for c in train["clip_id"].to_list()]]
    x_te = x[[index[c] for c in test["clip_id"].to_list()]]
    rows = []
    for level in LEVELS:
        y_tr = np.array([general_label_at(c, level) for c in train["label"].to_list()])
        y_te = np.array([general_label_at(c, level) for c in test["label"].to_list()])
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000, random_state=seed))
        model.fit(x_tr, y_tr)
        _, freq = np.unique(y_te, return_counts=True)
        rows.append(
            {
                "level": level,
                "value": float(np.mean(model.predict(x_te) == y_te)),
                "chance": float(freq.max() / len(y_te)),
                "n_train": len(y_tr),
                "n_test": len(y_te),
                "classes": len(set(y_tr)),
            }
        )
    return pl.DataFrame(rows)
