"""BPR-MF, VBPR, MostPop and ItemKNN behind the estimator contract, on generated data with a
planted visual signal (the demo dataset) and on tiny hand-made frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from recsys.errors import InvalidInput, InvalidParameter, NotFittedError
from recsys.eval import ranking as rk
from recsys.eval import ranking_study as study
from recsys.features.item_features import ItemFeatures
from recsys.models.base import clone
from recsys.models.bpr import BPR, VBPR
from recsys.models.item_knn import ItemKNN
from recsys.models.popularity import MostPop

FAST = dict(n_epochs=6, batch_size=256, learning_rate=0.01, device="cpu")


def planted_dataset(n_users=200, n_items=120, per_user=25, seed=0):
    """Implicit feedback with a planted visual signal in *which* items users pick.

    affinity(u, i) = popularity_i + collaborative x_u . y_i + visual taste w_u . v_i; each user
    picks `per_user` items by Gumbel top-k on the affinities (rated 5). Features: the 3 visual
    dimensions v plus 13 noise dimensions. (The demo dataset plants its visual signal in the
    rating values, while which movies get rated there is driven by popularity; held-out
    "liked" items are then close to unpredictable beyond popularity, see the report.)
    """
    rng = np.random.default_rng(seed)
    visual = rng.uniform(-1, 1, (n_items, 3))
    affinity = (
        rng.normal(0, 0.5, n_items)
        + 0.5 * rng.normal(size=(n_users, 4)) @ rng.normal(size=(n_items, 4)).T
        + rng.normal(0, 1.5, (n_users, 3)) @ visual.T
    )
    picks = np.argsort(-(affinity + rng.gumbel(size=affinity.shape)), axis=1)[:, :per_user]
    ratings = pd.DataFrame(
        {"user_id": np.repeat(np.arange(1, n_users + 1), per_user), "item_id": picks.ravel() + 1, "rating": 5.0}
    )
    matrix = np.hstack([visual, 0.3 * rng.standard_normal((n_items, 13))])
    return ratings, ItemFeatures(np.arange(1, n_items + 1), matrix, "planted style")


@pytest.fixture(scope="module")
def planted():
    return planted_dataset()


@pytest.fixture(scope="module")
def warm(planted):
    return rk.make_task(planted[0], "per_user", seed=0)


@pytest.fixture(scope="module")
def cold(planted):
    return rk.make_task(planted[0], "cold_items", seed=0, item_share=0.25)


@pytest.fixture(scope="module")
def style(planted) -> ItemFeatures:
    return planted[1]


def recall(task, model, k=20) -> float:
    ranking = rk.evaluate_scores(task, model.score, [k], item_ids=model.item_ids_)
    return float(ranking.per_user["recall"].mean())


def tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": [1, 1, 2, 2, 2, 3], "item_id": [10, 11, 10, 12, 13, 10], "rating": [5.0, 4, 3, 5, 1, 4]}
    )


# ---- learning -------------------------------------------------------------------------------------
def test_bpr_and_vbpr_beat_mostpop_on_generated_data(warm, style):
    mostpop = recall(warm, MostPop().fit(warm.train))
    bpr = recall(warm, BPR(k=16, **FAST).fit(warm.train))
    vbpr = recall(warm, VBPR(features=style, k=16, k2=8, **FAST).fit(warm.train))
    assert bpr > mostpop + 0.02
    assert vbpr > mostpop + 0.02


def test_shuffled_features_hurt_vbpr_on_new_items(cold, style):
    """On held-out new items the features are all VBPR has: real ones must beat shuffled ones."""
    real = recall(cold, VBPR(features=style, k=16, k2=8, **FAST).fit(cold.train))
    shuffled = recall(cold, VBPR(features=study.shuffled_features(style, seed=1), k=16, k2=8, **FAST).fit(cold.train))
    assert real > shuffled + 0.05


def test_same_seed_same_scores_other_seed_other_scores(warm, style):
    users = warm.user_ids[:20]
    a = VBPR(features=style, k=8, k2=4, seed=3, **FAST).fit(warm.train).score(users)
    b = VBPR(features=style, k=8, k2=4, seed=3, **FAST).fit(warm.train).score(users)
    c = VBPR(features=style, k=8, k2=4, seed=4, **FAST).fit(warm.train).score(users)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


# ---- cold start, unknowns, recommend ---------------------------------------------------------------
def test_new_items_are_scored_from_their_features():
    features = ItemFeatures([10, 11, 12, 13, 99], np.eye(5), "one-hot")
    model = VBPR(features=features, k=2, k2=2, n_epochs=3, device="cpu").fit(tiny())
    assert 99 in model.item_ids_ and model.new_item_ids_.tolist() == [99]
    scores = model.score([1, 2], [10, 99])
    assert np.isfinite(scores).all() and scores[0, 1] != scores[1, 1]  # per-user, from the features
    without = VBPR(features=features, k=2, k2=2, n_epochs=3, device="cpu", score_new_items=False).fit(tiny())
    assert np.isneginf(without.score([1], [99])).all()
    bpr = BPR(k=2, n_epochs=3, device="cpu").fit(tiny())
    assert np.isneginf(bpr.score([1], [99])).all()  # no features: cannot score a new item


def test_recommend_excludes_seen_breaks_ties_by_id_and_flags_unknown_users():
    model = MostPop().fit(tiny())  # counts: 10 -> 3, 11, 12, 13 -> 1
    frame = model.recommend([1, 2, 42], n=3)
    assert list(frame.columns) == ["user_id", "rank", "item_id", "score", "fallback"]
    assert frame[frame["user_id"] == 1]["item_id"].tolist() == [12, 13]  # 10 and 11 seen
    assert frame[frame["user_id"] == 42]["item_id"].tolist() == [10, 11, 12]  # ties -> lower id
    assert frame[frame["user_id"] == 42]["fallback"].all() and not frame[frame["user_id"] == 1]["fallback"].any()
    assert model.recommend([1], n=3, exclude_seen=False)["item_id"].tolist() == [10, 11, 12]
    assert model.recommend([3], n=5, candidates=[10, 13])["item_id"].tolist() == [13]
    assert model.seen_items(2).tolist() == [10, 12, 13]


def test_mostpop_counts_and_itemknn_equals_dense_formula():
    ratings = tiny()
    assert MostPop().fit(ratings).item_counts_.tolist() == [3, 1, 1, 1]
    assert MostPop(positive_threshold=4).fit(ratings).item_counts_.tolist() == [2, 1, 1, 0]
    rng = np.random.default_rng(0)
    users, items = np.nonzero(rng.random((30, 25)) < 0.3)
    frame = pd.DataFrame({"user_id": users, "item_id": items, "rating": 4.0})
    model = ItemKNN(k=5, shrink=2.0).fit(frame)
    x = sp.csr_matrix((np.ones(len(users)), (users, items))).toarray()[:, model.item_ids_]
    counts = x.sum(axis=0)
    sim = (x.T @ x) / (np.sqrt(np.outer(counts, counts)) + 2.0)
    np.fill_diagonal(sim, 0.0)
    pruned = np.zeros_like(sim)
    for j in range(sim.shape[1]):
        keep = sorted(range(sim.shape[0]), key=lambda i: (-sim[i, j], i))[:5]
        pruned[keep, j] = sim[keep, j]
    assert np.allclose(model.score(model.user_ids_), x[np.searchsorted(np.unique(users), model.user_ids_)] @ pruned)


# ---- the estimator contract -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "model",
    [MostPop(), ItemKNN(k=5), BPR(k=4, n_epochs=2), VBPR(features=ItemFeatures([10], np.ones((1, 2))), n_epochs=2)],
    ids=lambda m: type(m).__name__,
)
def test_estimator_contract(model):
    params = model.get_params()
    copy = clone(model)
    assert type(copy) is type(model) and copy.get_params().keys() == params.keys()
    with pytest.raises(NotFittedError):
        model.score([1])
    with pytest.raises(NotFittedError):
        model.recommend([1], 2)
    assert model.fit(tiny(), progress=None) is model
    assert not hasattr(copy, "user_ids_")  # clone is unfitted
    assert model.score([1, 2]).shape == (2, len(model.item_ids_))


def test_bad_parameters_and_inputs_are_refused():
    with pytest.raises(InvalidParameter, match="k must be"):
        BPR(k=0).fit(tiny())
    with pytest.raises(InvalidParameter, match="negatives"):
        BPR(negatives="popular").fit(tiny())
    with pytest.raises(InvalidParameter, match="learning_rate"):
        BPR(learning_rate=-1.0).fit(tiny())
    with pytest.raises(InvalidInput, match="cover none"):
        VBPR(features=ItemFeatures([500], np.ones((1, 3)), "foreign"), n_epochs=1).fit(tiny())
    with pytest.raises(ValueError, match="NaN"):
        VBPR(features=ItemFeatures([10], np.full((1, 3), np.nan), "broken"), n_epochs=1).fit(tiny())
    with pytest.raises(InvalidInput, match="threshold"):
        MostPop(positive_threshold=6).fit(tiny())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: the GPU path runs where there is one")
def test_cuda_training_learns_like_the_cpu(warm, style):
    cuda = VBPR(features=style, k=16, k2=8, **dict(FAST, device="cuda")).fit(warm.train)
    cpu = VBPR(features=style, k=16, k2=8, **FAST).fit(warm.train)
    assert cuda.device_.startswith("cuda")
    assert abs(recall(warm, cuda) - recall(warm, cpu)) < 0.05  # same model, other kernels: close, not equal


def test_progress_reports_every_epoch():
    calls = []
    BPR(k=2, n_epochs=3, device="cpu").fit(tiny(), progress=lambda done, total, message="": calls.append((done, total)))
    assert calls == [(1, 3), (2, 3), (3, 3)]


# ---- the control ------------------------------------------------------------------------------------
def test_control_fits_four_variants_on_the_same_users_and_says_what_the_features_add(planted, warm):
    ratings, features = planted
    base = VBPR(features=features, k=8, k2=8, **dict(FAST, n_epochs=4))
    result = study.run_control(
        ratings, features, ks=[10, 20], base=base, cold_start=False, task=warm, what="the posters"
    )
    assert set(result.summary["model"]) == set(study.CONTROL_LABELS.values())
    none = [m for m in result.meta["models"] if m["model"] == study.CONTROL_LABELS["none"]][0]
    assert none["params"]["k"] == 16  # BPR at equal capacity: k + k2 factors, same optimiser
    assert none["params"]["n_epochs"] == 4 and none["params"]["learning_rate"] == 0.01
    row = result.paired[
        (result.paired["model_b"] == study.CONTROL_LABELS["none"]) & (result.paired["metric"] == "recall")
    ]
    row = row[row["k"] == 20].iloc[0]
    assert result.sentence.startswith(f"The posters add {row['mean_diff']:+.3f} ± ")
    assert "Recall@20 over the same model without them" in result.sentence
    assert row["n_users"] == warm.n_users
    tidy = result.frame()
    assert set(tidy["variant"]) == set(study.CONTROL_VARIANTS) and set(tidy["setting"]) == {"warm"}


def test_control_repeats_average_each_users_metric_over_seeds(planted, warm):
    ratings, features = planted
    base = VBPR(features=features, k=4, k2=4, **dict(FAST, n_epochs=2))
    result = study.run_control(ratings, features, ks=[20], base=base, cold_start=False, task=warm, repeats=2)
    real = result.per_user[result.per_user["model"] == study.CONTROL_LABELS["real"]].set_index("user_id")["recall"]
    singles = [
        rk.evaluate_scores(warm, m.score, [20], item_ids=m.item_ids_).per_user.set_index("user_id")["recall"]
        for m in (clone(base, seed=s).fit(warm.train) for s in (base.seed, base.seed + 1))
    ]
    assert np.allclose(real.to_numpy(), ((singles[0] + singles[1]) / 2).reindex(real.index).to_numpy())
    assert result.meta["repeats"] == 2 and result.sentence.endswith("averaged over 2 seeds.")


def test_control_sentence_says_when_a_difference_is_not_distinguishable_from_zero():
    labels = study.CONTROL_LABELS
    summary = pd.DataFrame(
        [[labels[v], "recall", 20, m, m - 0.01, m + 0.01, 100] for v, m in zip(labels, (0.30, 0.29, 0.28, 0.25))],
        columns=rk.SUMMARY_COLUMNS,
    )

    def paired(none_ci, shuffled_ci):
        rows = []
        for variant, (low, high) in (("none", none_ci), ("shuffled", shuffled_ci), ("random", (0.01, 0.03))):
            rows.append(
                {
                    "model_a": labels["real"],
                    "model_b": labels[variant],
                    "metric": "recall",
                    "k": 20,
                    "n_users": 100,
                    "mean_diff": (low + high) / 2,
                    "diff_ci_low": low,
                    "diff_ci_high": high,
                }
            )
        return pd.DataFrame(rows)

    clear = study.control_sentence(summary, paired((0.03, 0.07), (0.01, 0.03)), what="the posters")
    assert clear.startswith("The posters add +0.050 ± 0.020 Recall@20 over the same model without them (")
    assert "not distinguishable" not in clear and "real minus shuffled: +0.020 ± 0.010" in clear
    vague = study.control_sentence(summary, paired((-0.01, 0.03), (-0.02, 0.02)), what="the posters")
    assert "+0.010 ± 0.020 Recall@20 over the same model without them; not distinguishable from zero" in vague
    assert "real minus shuffled: +0.000 ± 0.020 (not distinguishable from zero)" in vague


def test_control_features_keep_shape_and_statistics_but_not_the_items():
    rng = np.random.default_rng(0)
    features = ItemFeatures(np.arange(50), rng.normal(3.0, 2.0, (50, 4)), "x")
    shuffled = study.shuffled_features(features, seed=1)
    assert sorted(map(tuple, shuffled.matrix)) == sorted(map(tuple, features.matrix))
    assert not np.array_equal(shuffled.matrix, features.matrix)
    noise = study.random_features(features, seed=1)
    assert noise.matrix.shape == features.matrix.shape
    assert np.allclose(noise.matrix.mean(axis=0), features.matrix.mean(axis=0), atol=1.0)
    assert abs(np.corrcoef(noise.matrix[:, 0], features.matrix[:, 0])[0, 1]) < 0.5
