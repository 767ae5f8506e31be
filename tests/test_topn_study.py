"""Hybrid user-based top-N CF and the top-N study on small generated data."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from recsys.data.dataset import Dataset
from recsys.errors import InvalidParameter, NotFittedError
from recsys.features.item_features import ItemFeatures
from recsys.models.hybrid import HybridUserKNN

N_USERS, N_ITEMS, N_GENRES = 40, 60, 5


def generated_dataset(seed: int = 0) -> Dataset:
    """Users with a taste for one genre rate items of that genre higher; ~30% density."""
    rng = np.random.default_rng(seed)
    genres = (rng.random((N_ITEMS, N_GENRES)) < 0.3).astype(np.uint8)
    genres[np.arange(N_ITEMS), rng.integers(0, N_GENRES, N_ITEMS)] = 1
    taste = rng.integers(0, N_GENRES, N_USERS)
    rows = []
    for user in range(N_USERS):
        rated = rng.choice(N_ITEMS, size=rng.integers(12, 25), replace=False)
        for item in rated:
            base = 2.5 + 1.5 * genres[item, taste[user]] + rng.normal(0, 0.8)
            rows.append((user + 1, item + 101, float(np.clip(np.rint(base), 1, 5)), 0))
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    item_index = pd.Index(np.arange(N_ITEMS) + 101, name="item_id")
    items = pd.DataFrame(
        {"title": [f"movie {i}" for i in item_index], "year": pd.array([2000] * N_ITEMS, dtype="Int64")},
        index=item_index,
    )
    genre_frame = pd.DataFrame(genres, index=item_index, columns=[f"g{g}" for g in range(N_GENRES)])
    return Dataset(name="generated", ratings=ratings, items=items, genres=genre_frame)


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generated_dataset()


@pytest.fixture(scope="module")
def features(dataset) -> ItemFeatures:
    rng = np.random.default_rng(7)
    # Non-negative like pooled CNN activations; two items without "posters" are left out.
    matrix = rng.random((N_ITEMS, 8)).astype(np.float32)
    ids = dataset.items.index.to_numpy()
    return ItemFeatures(ids[2:], matrix[2:], name="random")


def reference_user_cf(train: pd.DataFrame, k: int, n: int, similarity=None) -> dict[int, list[int]]:
    """Straightforward user-based CF with loops: the definition in recsys.models.hybrid."""
    by_user: dict[int, dict[int, float]] = defaultdict(dict)
    for user, item, rating in train[["user_id", "item_id", "rating"]].itertuples(index=False):
        by_user[int(user)][int(item)] = float(rating)
    users = sorted(by_user)

    def cosine(u, v):
        dot = sum(r * by_user[v][i] for i, r in by_user[u].items() if i in by_user[v])
        norm_u = math.sqrt(sum(r * r for r in by_user[u].values()))
        norm_v = math.sqrt(sum(r * r for r in by_user[v].values()))
        return dot / (norm_u * norm_v)

    similarity = similarity or cosine
    lists = {}
    for u in users:
        sims = [(similarity(u, v), v) for v in users if v != u]
        neighbours = sorted([(s, v) for s, v in sims if s > 0], key=lambda t: (-t[0], t[1]))[:k]
        scores: dict[int, float] = defaultdict(float)
        for s, v in neighbours:
            for item, rating in by_user[v].items():
                if item not in by_user[u]:
                    scores[item] += s * rating
        ranked = sorted(scores.items(), key=lambda t: (-round(t[1], 9), t[0]))
        lists[u] = [item for item, _ in ranked[:n]]
    return lists


def lists_of(frame: pd.DataFrame) -> dict[int, list[int]]:
    return {int(u): g.sort_values("rank")["item_id"].tolist() for u, g in frame.groupby("user_id")}


@pytest.mark.parametrize("k", [3, 10])
def test_alpha_one_is_exactly_plain_user_based_cf(dataset, features, k):
    train = dataset.ratings
    expected = reference_user_cf(train, k=k, n=5)
    plain = lists_of(HybridUserKNN(alpha=1.0, k=k, n=5, score="weighted_sum").fit(train).recommend())
    with_posters = lists_of(HybridUserKNN(features, alpha=1.0, k=k, n=5, score="weighted_sum").fit(train).recommend())
    assert plain == expected
    assert with_posters == expected  # features are ignored at alpha = 1


def test_alpha_zero_uses_profile_similarity_only(dataset, features):
    from recsys.models.profiles import user_profiles
    from recsys.models.similarity import cosine_similarity_matrix

    train = dataset.ratings
    user_ids, profiles = user_profiles(train, features)
    profile_similarity = cosine_similarity_matrix(profiles)
    position = {int(u): i for i, u in enumerate(user_ids)}
    expected = reference_user_cf(train, k=4, n=5, similarity=lambda u, v: profile_similarity[position[u], position[v]])
    model = HybridUserKNN(features, alpha=0.0, k=4, n=5, score="weighted_sum").fit(train)
    assert lists_of(model.recommend()) == expected
    mixed = model.similarity(0.3)
    np.testing.assert_allclose(mixed, 0.3 * model.rating_similarity_ + 0.7 * profile_similarity)
    # Centred features: profiles from feature vectors minus their mean over items.
    centred = ItemFeatures(features.item_ids, features.matrix - features.matrix.mean(axis=0))
    _, centred_profiles = user_profiles(train, centred)
    model = HybridUserKNN(features, alpha=0.0, k=4, centre_features=True).fit(train)
    np.testing.assert_allclose(model.visual_similarity_, cosine_similarity_matrix(centred_profiles), atol=1e-6)
    assert model.visual_similarity_.min() < 0 < profile_similarity.min()


def test_recommendations_exclude_rated_items_and_come_from_neighbours(dataset, features):
    train = dataset.ratings
    model = HybridUserKNN(features, alpha=0.5, k=5, n=5).fit(train)
    lists = model.recommend()
    rated = set(zip(train["user_id"], train["item_id"]))
    assert not any((u, i) in rated for u, i in zip(lists["user_id"], lists["item_id"]))
    assert lists.groupby("user_id")["score"].apply(lambda s: s.is_monotonic_decreasing).all()
    subset = model.recommend([3, 1])
    assert set(subset["user_id"]) == {1, 3}
    pd.testing.assert_frame_equal(
        subset.sort_values(["user_id", "rank"]).reset_index(drop=True),
        lists[lists["user_id"].isin([1, 3])].reset_index(drop=True),
    )
    assert not lists["fallback"].any()  # every listed item was rated by a neighbour
    with pytest.raises(ValueError, match="not in the training ratings"):
        model.recommend([99999])
    # exclude_seen=False lets the user's own rated items compete; candidates restricts the catalogue.
    own = model.recommend([1], n=60, exclude_seen=False)
    assert set(own["item_id"]) & set(train.loc[train["user_id"] == 1, "item_id"])
    allowed = [101, 102, 103, 104, 105, 106, 107, 108]
    assert set(model.recommend(None, n=60, candidates=allowed)["item_id"]) <= set(allowed)
    # alpha/k/neighbours overrides give the lists of a model fitted with those parameters.
    swept = model.recommend(n=5, alpha=1.0, k=3, neighbours=model.neighbour_order(1.0))
    refit = HybridUserKNN(features, alpha=1.0, k=3, n=5).fit(train).recommend()
    pd.testing.assert_frame_equal(swept, refit)


def test_bad_parameters_are_rejected(dataset):
    with pytest.raises(InvalidParameter, match="needs item features"):
        HybridUserKNN(alpha=0.5).fit(dataset.ratings)
    with pytest.raises(InvalidParameter, match=r"\[0, 1\]"):
        HybridUserKNN(alpha=1.5).fit(dataset.ratings)
    with pytest.raises(InvalidParameter, match="positive integer"):
        HybridUserKNN(k=0).fit(dataset.ratings)
    with pytest.raises(NotFittedError, match="HybridUserKNN is not fitted yet"):
        HybridUserKNN().recommend()
    model = HybridUserKNN().fit(dataset.ratings)
    with pytest.raises(InvalidParameter, match="needs item features"):
        model.recommend(alpha=0.5)  # fitted without features: no visual similarity to mix in


@pytest.mark.parametrize("ks, n", [([2.5], 5), ([0, 10], 5), ([10], 0), ([10], 2.5)])
def test_study_refuses_k_and_n_that_are_not_positive_integers(dataset, ks, n):
    from recsys.eval.topn_study import run_topn_study

    # K=2.5 used to run silently as K=2.
    with pytest.raises(ValueError, match="K and N must be positive integers"):
        run_topn_study(dataset, None, alphas=[1.0], ks=ks, n=n)


@pytest.fixture(scope="module")
def study(dataset, features):
    from recsys.eval.topn_study import run_topn_study

    calls = []
    result = run_topn_study(
        dataset,
        features,
        alphas=(0.0, 0.5, 1.0),
        ks=(3, 10),
        n=5,
        seed=1,
        progress=lambda d, t, m: calls.append((d, t)),
        n_boot=50,
    )
    return result, calls


def test_study_frames_have_the_documented_shape(study):
    from recsys.eval import ranking_metrics as rm
    from recsys.eval.topn_study import SUMMARY_COLUMNS

    result, calls = study
    summary = result.summary
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert len(summary) == 3 * 2 * len(rm.ALL_METRICS)
    assert set(summary["metric"]) == set(rm.ALL_METRICS)
    assert ((summary["ci_low"] <= summary["mean"] + 1e-12) & (summary["mean"] <= summary["ci_high"] + 1e-12)).all()
    assert summary["n_users"].between(1, N_USERS).all()
    precision = summary[summary["metric"] == "precision"]
    assert precision["mean"].between(0, 1).all()
    # per-user rows: one per evaluated user and setting, and they average to the summary
    per_user = result.per_user
    assert len(per_user) == 6 * summary["n_users"].iloc[0]
    again = per_user.groupby(["alpha", "k"])["precision"].mean()
    np.testing.assert_allclose(again.to_numpy(), precision.sort_values(["alpha", "k"])["mean"].to_numpy())
    # paired tests: alpha 0 and 0.5 against 1 at both K
    assert set(zip(result.paired["alpha"], result.paired["k"])) == {(0.0, 3), (0.0, 10), (0.5, 3), (0.5, 10)}
    assert result.paired["t_p"].between(0, 1).all()
    assert calls[-1][0] == calls[-1][1] == 1 + 6


def test_study_alpha_one_matches_the_reference_lists(dataset, study):
    """The study's α = 1 precision equals precision recomputed from reference CF lists."""
    from recsys.eval import ranking_metrics as rm
    from recsys.eval.topn_study import per_user_split

    result, _ = study
    train, test = per_user_split(dataset.ratings, seed=1)
    lists = reference_user_cf(train, k=10, n=5)
    liked = test[test["rating"] >= 4].groupby("user_id")["item_id"].apply(set)
    expected = np.mean([rm.precision_at_n(lists[u], liked[u], 5) for u in liked.index if u in lists])
    row = result.summary.query("alpha == 1.0 and k == 10 and metric == 'precision'")
    assert row["mean"].iloc[0] == pytest.approx(expected)


def test_guo_table_and_study_table(study):
    from recsys.eval.topn_study import guo_table, study_table

    result, _ = study
    table = guo_table(result.summary, result.paired, k=10)
    assert list(table["indicator"]) == ["Recommendation accuracy", "Recommendation diversity", "Preference fit"]
    assert table["paper: without posters"].tolist() == ["70%", "5 genres", "60%"]
    assert "definition" in table and table["ours: plain CF (α=1)"].str.contains(r"\[").all()
    with pytest.raises(ValueError, match="no K=7"):
        guo_table(result.summary, k=7)
    grid = study_table(result.summary, "ndcg")
    assert grid.shape == (3, 2) and list(grid.columns) == ["K=3", "K=10"]


def test_cold_start_pure_cf_never_recommends_new_items_but_content_does(dataset, features):
    from recsys.eval.splits import cached_splits
    from recsys.eval.topn_study import cold_start_topn

    cold = cold_start_topn(dataset, features, n=5, k=5, item_share=0.25, seed=0)
    shown = cold[cold["metric"] == "new_item_share"].set_index("model")["mean"]
    assert shown["user CF (α=1)"] == 0.0 and shown["hybrid CF (α=0.5)"] == 0.0
    assert shown["content (VT2)"] > 0.0
    assert set(cold["metric"]) == {"new_item_share", "users_shown_new", "new_hit_rate", "new_precision"}
    new_items = cached_splits(dataset.ratings, dataset.name, "cold_items", seed=0, item_share=0.25)[0].cold_items
    assert cold.attrs["new_items"] == len(new_items)


def test_figures_build_from_the_study_frames(study, dataset, features):
    from recsys.viz import topn as viz

    result, _ = study
    fig = viz.study_figure(result.summary, "precision")
    assert len(fig.data) == 2 and list(fig.data[0].x) == [0.0, 0.5, 1.0]
    heat = viz.alpha_k_heatmap(result.summary, "genre_diversity")
    assert np.asarray(heat.data[0].z).shape == (3, 2)
    assert len(viz.paired_difference(result.paired, "ndcg").data) == 2
    assert len(viz.guo_comparison(result.summary, k=10).data) == 6
    with pytest.raises(ValueError, match="not in the frame"):
        viz.metric_vs_alpha(result.summary, "rmse")


def test_cli_prints_the_alpha_k_table_on_real_data(shared_data_dir, capsys):
    from recsys.cli import main

    code = main(
        [
            "topn",
            "--dataset",
            "ml-100k",
            "--data-dir",
            str(shared_data_dir),
            "--features",
            "genre",
            "--alphas",
            "0.5,1",
            "--ks",
            "10",
            "--metrics",
            "precision",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "α=1" in out and "K=10" in out and "Guo's Table 1" in out
    summary_line = out.strip().splitlines()[-1]
    assert summary_line.startswith("dataset=ml-100k") and "precision_a1=0." in summary_line


def test_cli_help_shows_the_protocol_verbatim(capsys):
    from recsys.cli import main
    from recsys.eval.topn_study import PROTOCOL

    with pytest.raises(SystemExit):
        main(["topn", "--help"])
    assert PROTOCOL in capsys.readouterr().out
