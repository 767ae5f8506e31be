"""Full-ranking evaluation (recsys.eval.ranking) against brute-force per-user loops, scikit-learn's
ndcg_score / roc_auc_score and Cornac's RatioSplit semantics."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import ndcg_score, roc_auc_score

from recsys.errors import InvalidInput, InvalidParameter
from recsys.eval import ranking as rk
from recsys.models.implicit import top_k


def random_ratings(n_users=40, n_items=60, density=0.25, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    users, items = np.nonzero(mask)
    return pd.DataFrame(
        {
            "user_id": users + 1,
            "item_id": items + 101,
            "rating": rng.integers(1, 6, size=len(users)).astype(float),
        }
    )


# ---- top-k --------------------------------------------------------------------------------------
def test_top_k_matches_a_stable_full_sort_with_ties_and_masks():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, size=(50, 30)).astype(float)  # many ties
    excluded = rng.random((50, 30)) < 0.3
    codes, values = top_k(scores, 7, excluded)
    for row in range(50):
        candidates = [c for c in range(30) if not excluded[row, c]]
        expected = sorted(candidates, key=lambda c: (-scores[row, c], c))[:7]
        got = codes[row][codes[row] >= 0].tolist()
        assert got == expected
        assert np.array_equal(values[row][: len(got)], scores[row, expected])


def test_top_k_pads_short_rows_and_refuses_nan():
    codes, values = top_k(np.array([[1.0, 2.0, 3.0]]), 5, np.array([[False, True, False]]))
    assert codes.tolist() == [[2, 0, -1, -1, -1]]
    assert np.isneginf(values[0, 2:]).all()
    with pytest.raises(InvalidInput, match="NaN"):
        top_k(np.array([[1.0, np.nan]]), 1)


# ---- splits ---------------------------------------------------------------------------------------
def test_ratio_split_follows_cornac_semantics_on_a_tiny_frame():
    ratings = pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3, 4, 1, 2, 5],
            "item_id": [10, 11, 10, 12, 11, 13, 14, 10, 11, 10],
            "rating": [5.0, 3, 4, 2, 5, 1, 4, 2, 5, 3],
        }
    )
    train, test = rk.ratio_split(ratings, test_size=0.25, seed=7)
    order = np.random.RandomState(7).permutation(len(ratings))
    n_test = math.ceil(0.25 * len(ratings))  # 3, as Cornac's validate_size computes it
    raw_train = ratings.iloc[order[: len(ratings) - n_test]]
    raw_test = ratings.iloc[order[-n_test:]]
    expected_train = raw_train.drop_duplicates(["user_id", "item_id"], keep="first")
    assert train[["user_id", "item_id", "rating"]].values.tolist() == expected_train.values.tolist()
    known_users, known_items = set(expected_train["user_id"]), set(expected_train["item_id"])
    expected_test = [
        row
        for row in raw_test.drop_duplicates(["user_id", "item_id"]).values.tolist()
        if row[0] in known_users and row[1] in known_items
    ]
    assert test.values.tolist() == expected_test
    kept_all = rk.ratio_split(ratings, test_size=0.25, seed=7, exclude_unknowns=False)[1]
    assert len(kept_all) == n_test - (raw_test.duplicated(["user_id", "item_id"]).sum())


def test_ratio_split_equals_cornacs_own_split():
    cornac = pytest.importorskip("cornac")
    ratings = random_ratings(n_users=60, n_items=80, seed=4)
    data = list(zip(ratings["user_id"], ratings["item_id"], ratings["rating"]))
    split = cornac.eval_methods.RatioSplit(
        data=data, test_size=0.2, rating_threshold=4.0, exclude_unknowns=True, seed=123, verbose=False
    )

    def pairs(dataset):
        users = {index: raw for raw, index in dataset.uid_map.items()}
        items = {index: raw for raw, index in dataset.iid_map.items()}
        u, i, r = dataset.uir_tuple
        return sorted((users[a], items[b], float(c)) for a, b, c in zip(u, i, r))

    train, test = rk.ratio_split(ratings, test_size=0.2, seed=123)
    assert sorted(map(tuple, train[["user_id", "item_id", "rating"]].values.tolist())) == pairs(split.train_set)
    assert sorted(map(tuple, test[["user_id", "item_id", "rating"]].values.tolist())) == pairs(split.test_set)


def test_task_rules_positives_exclusions_and_dropped_users():
    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 13], "rating": [5.0, 2, 4, 5, 1]})
    test = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [12, 11, 10, 10], "rating": [4.0, 3, 5, 5]})
    task = rk.build_task(train, test, exclude="positives")
    assert task.item_ids.tolist() == [10, 11, 12, 13]
    assert task.user_ids.tolist() == [1, 3]  # user 2's held-out rating is 3; user 4 is unknown
    assert task.relevant.toarray().tolist() == [[False, False, True, False], [True, False, False, False]]
    # Cornac's rule: only training positives are masked; user 1's 2-star item 11 stays a candidate
    assert task.excluded.toarray().tolist() == [[True, False, False, False], [False, False, False, False]]
    everything = rk.build_task(train, test, exclude="all")
    assert everything.excluded.toarray().tolist() == [[True, True, False, False], [False, False, False, True]]
    assert task.popularity.tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(InvalidInput, match="nothing to evaluate"):
        rk.build_task(train, test.assign(rating=1.0))


def test_protocols_build_the_documented_tasks():
    ratings = random_ratings(seed=2)
    per_user = rk.make_task(ratings, "per_user", seed=0)
    assert per_user.params["exclude"] == "all" and per_user.meta["users_evaluated"] == per_user.n_users
    ratio = rk.make_task(ratings, "ratio")
    assert ratio.params["seed"] == 123 and ratio.params["exclude"] == "positives"
    cold = rk.make_task(ratings, "cold_items", seed=0, item_share=0.25)
    assert np.array_equal(cold.item_ids, cold.cold_items)
    assert not np.isin(cold.cold_items, cold.train["item_id"].unique()).any()
    with pytest.raises(InvalidParameter):
        rk.make_task(ratings, "leave_one_out")


# ---- metrics against brute force ---------------------------------------------------------------
def brute_force(task: rk.RankingTask, scores: np.ndarray, k: int) -> pd.DataFrame:
    rows = []
    relevant = task.relevant.toarray()
    excluded = task.excluded.toarray()
    for row, user in enumerate(task.user_ids):
        candidates = [c for c in range(task.n_items) if not excluded[row, c]]
        ranked = sorted(candidates, key=lambda c: (-scores[row, c], c))[:k]
        positives = set(np.flatnonzero(relevant[row]).tolist())
        gains = [c in positives for c in ranked]
        hits = sum(gains)
        dcg = sum(g / math.log2(r + 2) for r, g in enumerate(gains))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(positives), k)))
        ap = sum(sum(gains[: r + 1]) / (r + 1) for r, g in enumerate(gains) if g) / min(len(positives), k)
        negatives = [c for c in candidates if c not in positives]
        pairs = [
            (scores[row, p] > scores[row, n]) + 0.5 * (scores[row, p] == scores[row, n])
            for p in positives
            for n in negatives
        ]
        rows.append(
            {
                "user_id": user,
                "recall": hits / len(positives),
                "precision": hits / k,
                "ndcg": dcg / idcg,
                "hit_rate": float(hits > 0),
                "map": ap,
                "popularity": np.mean(task.popularity[ranked]),
                "auc": np.mean(pairs),
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("exclude", ["all", "positives"])
def test_metrics_equal_brute_force_loops(exclude):
    ratings = random_ratings(seed=3)
    train, test = rk.ratio_split(ratings, seed=5)
    task = rk.build_task(train, test, exclude=exclude)
    rng = np.random.default_rng(0)
    scores = np.round(rng.normal(size=(task.n_users, task.n_items)), 1)  # rounded: ties happen
    ranking = rk.evaluate_scores(task, scores, ks=[5, 10], block_users=7)  # several blocks
    for k in (5, 10):
        ours = ranking.per_user[ranking.per_user["k"] == k].reset_index(drop=True)
        expected = brute_force(task, scores, k)
        for metric in ("recall", "precision", "ndcg", "hit_rate", "map", "popularity", "auc"):
            assert np.allclose(ours[metric], expected[metric]), metric


def test_ndcg_and_auc_match_scikit_learn():
    ratings = random_ratings(seed=8)
    task = rk.make_task(ratings, "per_user", seed=1)
    rng = np.random.default_rng(2)
    scores = rng.normal(size=(task.n_users, task.n_items))  # continuous: no ties
    ranking = rk.evaluate_scores(task, scores, ks=[10])
    relevant = task.relevant.toarray()
    excluded = task.excluded.toarray()
    for row in range(task.n_users):
        keep = ~excluded[row]
        y_true, y_score = relevant[row, keep].astype(float), scores[row, keep]
        assert ranking.per_user["ndcg"].iloc[row] == pytest.approx(ndcg_score([y_true], [y_score], k=10))
        if 0 < y_true.sum() < len(y_true):
            assert ranking.per_user["auc"].iloc[row] == pytest.approx(roc_auc_score(y_true, y_score))


def test_callable_scores_unaligned_columns_and_topn_frames_agree():
    ratings = random_ratings(seed=9)
    task = rk.make_task(ratings, "per_user")
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(task.n_users, task.n_items))
    direct = rk.evaluate_scores(task, scores, ks=[10, 20])
    # a scorer with the columns reversed plus one unknown item, called block by block
    columns = np.r_[task.item_ids[::-1], 99999]
    lookup = {u: r for r, u in enumerate(task.user_ids)}
    scorer = lambda users: np.c_[scores[[lookup[u] for u in users]][:, ::-1], np.zeros(len(users))]  # noqa: E731
    via_callable = rk.evaluate_scores(task, scorer, ks=[10, 20], item_ids=columns, block_users=5)
    pd.testing.assert_frame_equal(direct.per_user, via_callable.per_user)
    frame = rk.lists_frame(task, direct)
    via_lists = rk.evaluate_topn(task, frame, ks=[10, 20])
    pd.testing.assert_frame_equal(direct.per_user.drop(columns="auc"), via_lists.per_user)
    with pytest.raises(InvalidInput, match="masks out"):
        seen = task.excluded.tocoo()
        bad = pd.DataFrame(
            {"user_id": [task.user_ids[seen.row[0]]], "rank": [1], "item_id": [task.item_ids[seen.col[0]]]}
        )
        rk.evaluate_topn(task, bad, ks=[10])
    with pytest.raises(InvalidInput, match="shape"):
        rk.evaluate_scores(task, scores[:, :-1], ks=[10])


def test_summary_intervals_paired_tests_and_breakdown():
    ratings = random_ratings(n_users=80, seed=10)
    task = rk.make_task(ratings, "per_user")
    rng = np.random.default_rng(4)
    truth = task.relevant.toarray().astype(float)
    good = truth + rng.normal(scale=0.8, size=truth.shape)
    noise = rng.normal(size=truth.shape)
    rankings, summary, paired = rk.evaluate_many(task, {"good": good, "noise": noise}, ks=[10, 20])
    recall = summary[(summary["metric"] == "recall") & (summary["k"] == 10)].set_index("model")
    assert (recall["ci_low"] <= recall["mean"]).all() and (recall["mean"] <= recall["ci_high"]).all()
    assert recall.loc["good", "mean"] > recall.loc["noise", "mean"]
    row = paired[(paired["metric"] == "recall") & (paired["k"] == 10)].iloc[0]
    good_recall = rankings[0].per_user.query("k == 10")["recall"].to_numpy()
    noise_recall = rankings[1].per_user.query("k == 10")["recall"].to_numpy()
    assert row["mean_diff"] == pytest.approx((good_recall - noise_recall).mean())
    assert row["t_p"] < 0.05 and row["p_holm"] == pytest.approx(row["t_p"])  # one pair: Holm = raw
    boot = rk.summarise(task, rankings, method="bootstrap", n_boot=300, seed=1)
    b = boot[(boot["metric"] == "recall") & (boot["k"] == 10)].set_index("model")
    assert b.loc["good", "mean"] == pytest.approx(recall.loc["good", "mean"])
    assert b.loc["good", "ci_low"] < b.loc["good", "mean"] < b.loc["good", "ci_high"]
    coverage = summary[(summary["metric"] == "coverage") & (summary["k"] == 10)].set_index("model")
    listed = np.unique(rankings[0].codes[:, :10][rankings[0].codes[:, :10] >= 0])
    assert coverage.loc["good", "mean"] == pytest.approx(len(listed) / task.n_items)
    assert set(summary.loc[summary["metric"] == "auc", "k"]) == {0}
    table = rk.metrics_table(summary, ["recall", "auc"])
    assert list(table.columns) == ["Recall@10", "Recall@20", "AUC"] and list(table.index) == ["good", "noise"]
    # head/tail: brute force for the 'good' model at K = 10
    breakdown = rk.head_tail_breakdown(task, rankings, ks=[10], head_share=0.2)
    n_head = breakdown.attrs["head_items"]
    head = set(np.argsort(-task.popularity, kind="stable")[:n_head].tolist())
    codes = rankings[0].codes[:, :10]
    values = []
    for row in range(task.n_users):
        positives = set(np.flatnonzero(truth[row]).tolist()) & head
        if positives:
            values.append(len(positives & set(codes[row].tolist())) / len(positives))
    got = breakdown[(breakdown["model"] == "good") & (breakdown["group"] == "head")].iloc[0]
    assert got["mean"] == pytest.approx(np.mean(values)) and got["n_users"] == len(values)
