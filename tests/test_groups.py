"""Group recommender (Balfaqih): generated data with planted tastes, and the ML-100K evaluation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.errors import InvalidParameter, NotFittedError
from recsys.eval import groups as group_eval
from recsys.eval.splits import per_user_split
from recsys.models import groups
from recsys.models.base import TOPN_COLUMNS, clone
from recsys.models.groups import GenreClusters, GroupRecommender, age_band, knee_of

GENRES = ["Action", "Comedy", "Drama", "Romance", "Sci-Fi", "Horror"]


@pytest.mark.parametrize(
    "age, band",
    [
        (7, "<8"),
        (8, "8-14"),
        (14, "8-14"),
        (15, "15-24"),
        (24, "15-24"),
        (25, "25-37"),
        (37, "25-37"),
        (37.6, "25-37"),
        (38, "38-47"),
        (47, "38-47"),
        (48, "48-55"),
        (55, "48-55"),
        (56, "56+"),
        (90, "56+"),
    ],
)
def test_age_bands_follow_the_paper_plus_remaining_ages(age, band):
    assert age_band(age) == band


@pytest.mark.parametrize("age", [None, np.nan, pd.NA, -3, 500])
def test_missing_or_implausible_age_is_rejected(age):
    with pytest.raises(ValueError):
        age_band(age)


def test_knee_is_farthest_point_from_chord():
    curve = pd.DataFrame({"k": [2, 3, 4, 5, 6, 7], "wcss": [100.0, 30.0, 22.0, 18.0, 16.0, 15.0]})
    assert knee_of(curve) == 3
    straight = pd.DataFrame({"k": [2, 3, 4], "wcss": [3.0, 2.0, 1.0]})
    assert knee_of(straight) in (2, 3, 4)


def planted_dataset(seed: int = 0):
    """Three genre families of movies; young women love the Romance/Drama family, older men
    the Action/Sci-Fi family, everybody else the Comedy family."""
    rng = np.random.default_rng(seed)
    families = {0: ["Action", "Sci-Fi"], 1: ["Comedy"], 2: ["Romance", "Drama"]}
    rows, family_of = [], {}
    for item in range(1, 91):
        family = (item - 1) % 3
        family_of[item] = family
        flags = {g: int(g in families[family]) for g in GENRES}
        if rng.random() < 0.2:
            flags["Horror"] = 1
        rows.append(flags)
    genres = pd.DataFrame(rows, index=pd.Index(range(1, 91), name="item_id"))[GENRES].astype("uint8")
    users = pd.DataFrame(
        {
            "age": [20] * 20 + [50] * 20 + [30] * 20,
            "gender": ["F"] * 20 + ["M"] * 20 + ["M"] * 10 + ["F"] * 10,
        },
        index=pd.Index(range(1, 61), name="user_id"),
    )
    favourite = {**{u: 2 for u in range(1, 21)}, **{u: 0 for u in range(21, 41)}, **{u: 1 for u in range(41, 61)}}
    ratings = []
    for user in users.index:
        for item in rng.choice(genres.index, size=40, replace=False):
            liked = family_of[item] == favourite[user]
            ratings.append((user, int(item), float(np.clip(rng.normal(4.5 if liked else 2.0, 0.5), 1, 5).round())))
    frame = pd.DataFrame(ratings, columns=["user_id", "item_id", "rating"])
    return frame, users, genres, family_of


@pytest.fixture(scope="module")
def planted():
    ratings, users, genres, family_of = planted_dataset()
    model = GroupRecommender(n_components=3, random_state=0).fit(ratings, users, genres)
    return model, ratings, users, genres, family_of


def test_clusters_recover_planted_genre_families(planted):
    model, _, _, genres, family_of = planted
    clusters = model.clusters_
    # k stops at the number of distinct genre vectors (6 here: 3 families, with or without Horror)
    assert list(clusters.elbow_["k"]) == list(range(2, 7))
    assert np.all(np.diff(clusters.elbow_["wcss"].to_numpy()) <= 1e-9 + clusters.elbow_["wcss"].max() * 0.05)
    # every cluster holds movies of a single family
    for _, members in clusters.labels_.groupby(clusters.labels_):
        assert len({family_of[i] for i in members.index}) == 1
    composition = clusters.composition(genres)
    assert set(composition.columns) == {"cluster", "genre", "share", "n_movies"}
    assert composition.groupby("cluster")["n_movies"].first().sum() == len(genres)


def test_each_group_gets_its_planted_favourite_family(planted):
    model, _, _, _, family_of = planted
    for band, gender, family in (("15-24", "F", 2), ("48-55", "M", 0), ("25-37", "M", 1)):
        rec = model.recommend_group(band, gender, n=10)
        assert (rec.age_band, rec.gender, rec.widened) == (band, gender, False)
        assert len(rec.items) == 10
        assert {family_of[i] for i in rec.items["item_id"]} == {family}
        assert rec.items["score"].is_monotonic_decreasing
        assert rec.items["rank"].tolist() == list(range(1, 11))


def test_unknown_group_is_widened_and_new_faces_still_get_a_list(planted):
    model = planted[0]
    rec = model.recommend_group("8-14", "F", n=5)  # nobody that young in the data
    assert rec.widened and rec.age_band is None and rec.gender is None
    assert len(rec.items) == 5


def test_emotion_table_changes_the_favoured_cluster(planted):
    model, _, _, _, family_of = planted
    neutral = model.recommend_group("25-37", "M", n=5)
    assert {family_of[i] for i in neutral.items["item_id"]} == {1}
    # An edited table that strongly favours Horror for "angry" moves this Comedy-loving group from its
    # plain Comedy cluster to the Comedy+Horror cluster it also likes.
    table = {**groups.EMOTION_GENRE_PREFERENCES, "angry": {"Horror": 50.0}}
    model = GroupRecommender(n_clusters=6, n_components=3).fit(*planted[1:4])
    neutral = model.recommend_group("25-37", "M", n=5)
    angry = model.recommend_group("25-37", "M", "angry", n=5, emotion_table=table)
    assert angry.emotion == "angry"
    assert angry.cluster_votes.idxmax() != neutral.cluster_votes.idxmax()
    genres = planted[3]
    assert genres.loc[angry.items["item_id"].head(3), "Horror"].all()  # the small cluster runs out after ~4
    assert not genres.loc[neutral.items["item_id"], "Horror"].any()
    # the fitted table itself is untouched by the per-call override
    assert model.table_["angry"] == groups.EMOTION_GENRE_PREFERENCES["angry"]


def test_bad_arguments_name_the_problem(planted):
    model, ratings, users, genres, _ = planted
    with pytest.raises(ValueError, match="emotion"):
        model.recommend_group("25-37", "M", "bored")
    with pytest.raises(ValueError, match="age band"):
        model.recommend_group("30-40", "M")
    with pytest.raises(ValueError, match="gender"):
        model.recommend_group("25-37", "X")
    with pytest.raises(ValueError, match="columns"):
        GroupRecommender().fit(ratings.drop(columns="rating"), users, genres)
    with pytest.raises(ValueError, match="ages and genders"):
        GroupRecommender().fit(ratings, users.drop(columns="age"), genres)
    with pytest.raises(NotFittedError, match="GenreClusters is not fitted yet"):
        GenreClusters().composition(genres)
    with pytest.raises(NotFittedError, match="GroupRecommender is not fitted yet"):
        GroupRecommender().recommend([1])
    with pytest.raises(InvalidParameter, match="min_group_size must be a positive integer, got 2.5"):
        GroupRecommender(min_group_size=2.5)


def test_group_evaluation_uses_the_shared_per_user_split(planted):
    ratings = planted[1]
    train, test = per_user_split(ratings, 0.2, seed=3)
    again_train, again_test = per_user_split(ratings, 0.2, seed=3)
    assert train.equals(again_train) and test.equals(again_test)
    assert len(train) + len(test) == len(ratings)
    assert not set(zip(train.user_id, train.item_id)) & set(zip(test.user_id, test.item_id))
    assert (test.groupby("user_id").size() == 8).all()  # 20% of 40 ratings each


def test_recommend_gives_each_user_their_groups_list_minus_what_they_rated(planted):
    model, ratings, _, _, family_of = planted
    lists = model.recommend([1, 21, 41, 999], n=5)
    assert lists.columns.tolist() == TOPN_COLUMNS
    for user, rows in lists.groupby("user_id"):
        assert rows["rank"].tolist() == [1, 2, 3, 4, 5]
        assert not set(rows["item_id"]) & set(ratings.loc[ratings.user_id == user, "item_id"])
    # user 1 is a young woman: her list is her group's list without the movies she rated
    group = model.recommend_group("15-24", "F", n=90).items["item_id"].tolist()
    seen = set(ratings.loc[ratings.user_id == 1, "item_id"])
    assert lists.loc[lists.user_id == 1, "item_id"].tolist() == [i for i in group if i not in seen][:5]
    assert {family_of[i] for i in lists.loc[lists.user_id == 1, "item_id"]} == {2}
    # an unknown user gets everybody's list, flagged as fallback; grouped users are not flagged
    assert lists.loc[lists.user_id == 999, "fallback"].all()
    assert not lists.loc[lists.user_id != 999, "fallback"].any()
    # orderings: the ablation and the benchmark are the same interface with another `ordering`
    popular = clone(model, ordering="popular").fit(*planted[1:4]).recommend([1], n=3, exclude_seen=False)
    counts = ratings[ratings.user_id.isin(model.members("15-24", "F"))].groupby("item_id").size()
    assert popular["score"].tolist() == sorted(counts, reverse=True)[:3]
    with pytest.raises(InvalidParameter, match="ordering must be one of"):
        GroupRecommender(ordering="random")


# ---- ML-100K evaluation ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ml100k(shared_data_dir):
    from recsys.data import load_dataset

    return load_dataset("ml-100k", data_dir=shared_data_dir)


@pytest.fixture(scope="module")
def ml100k_clusters(ml100k):
    return GenreClusters(random_state=0).fit(ml100k.genres)  # what evaluate_groups fits at seed 0


@pytest.fixture(scope="module")
def ml100k_table(ml100k, ml100k_clusters):
    return group_eval.evaluate_groups(ml100k, n=10, test_fraction=0.2, seed=0, clusters=ml100k_clusters)


def test_ml100k_evaluation_table(ml100k_table):
    table = ml100k_table
    assert set(table["method"]) == set(group_eval.METHODS)
    bands = table.loc[table["facet"] == "age band", "group"].unique().tolist()
    assert {"8-14", "15-24", "25-37", "38-47"} <= set(bands)
    assert set(table.loc[table["facet"] == "gender", "group"]) == {"F", "M"}
    for metric in ("precision", "recall", "f1"):
        assert table[metric].between(0, 1).all()
    overall = table[table["facet"] == "all"].set_index("method")
    # Every user with a liked held-out movie is scored once per method (ML-100K: ~930 of 943).
    assert 900 <= overall.loc["group recommender", "n_users"] <= 943
    assert table.loc[table["facet"] == "age band"].groupby("method")["n_users"].sum().eq(overall["n_users"]).all()
    # Both methods find real held-out likes (far above a random list's ~0.006 precision).
    assert (overall["precision"] > 0.03).all()
    f1 = 2 * table["precision"] * table["recall"] / (table["precision"] + table["recall"])
    assert np.allclose(table["f1"], f1.fillna(0))


def test_ml100k_evaluation_is_on_the_shared_per_user_split(ml100k, ml100k_table, ml100k_clusters):
    """The Audience evaluation, the Recommend page and the top-N study split ML-100K the same way."""
    from recsys.eval.topn_study import per_user_split as study_split

    train, test = per_user_split(ml100k.ratings, 0.2, seed=0, dataset_name=ml100k.name)
    assert test.equals(study_split(ml100k.ratings, 0.2, seed=0, dataset_name=ml100k.name)[1])
    liked = test[test["rating"] >= 4].groupby("user_id")["item_id"].agg(set)
    model = GroupRecommender(random_state=0).fit(train, ml100k.users, ml100k.genres, clusters=ml100k_clusters)
    users = model.groups_.index[model.groups_.index.isin(liked.index)]
    lists = model.recommend(users, 10).groupby("user_id")["item_id"].agg(list)
    precision = np.mean([len(set(lists.get(u, [])) & liked[u]) / 10 for u in users])
    overall = ml100k_table[ml100k_table["facet"] == "all"].set_index("method")
    assert overall.loc["group recommender", "n_users"] == len(users)
    assert overall.loc["group recommender", "precision"] == pytest.approx(precision)


def test_cli_prints_the_same_numbers(ml100k_table, shared_data_dir, capsys):
    from recsys.cli import main

    assert main(["audience-eval", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir)]) == 0
    out = capsys.readouterr().out
    overall = ml100k_table[ml100k_table["facet"] == "all"].set_index("method")
    assert f"f1_group={overall.loc['group recommender', 'f1']:.4f}" in out
    assert f"f1_popular={overall.loc['popular in group', 'f1']:.4f}" in out
    row = ml100k_table.iloc[0]
    assert f"{row['precision']:.4f}" in out


def test_figures_show_the_table_and_the_chosen_k(ml100k_table, planted):
    from recsys.viz.audience import cluster_composition_figure, elbow_figure, evaluation_bars

    fig = evaluation_bars(ml100k_table, "age band")
    assert {trace.name for trace in fig.data} == set(group_eval.METHODS)
    assert len(fig.data) == 9  # three methods x three metrics (precision, recall, F1)
    f1_group = [t for t in fig.data if t.name == "group recommender" and t.xaxis == "x3"][0]
    expected = ml100k_table[(ml100k_table["facet"] == "age band") & (ml100k_table["method"] == "group recommender")]
    assert list(f1_group.x) == expected["group"].tolist()
    assert np.allclose(f1_group.y, expected["f1"])

    model, _, _, genres, _ = planted
    elbow = elbow_figure(model.clusters_.elbow_, model.clusters_.k_)
    star = [t for t in elbow.data if t.name.startswith("chosen k")][0]
    assert list(star.x) == [model.clusters_.k_]
    heat = cluster_composition_figure(model.clusters_.composition(genres))
    assert np.asarray(heat.data[0].z).shape == (model.clusters_.k_, len(genres.columns))


def test_coded_age_groups_are_refused_instead_of_misfiled(shared_data_dir):
    from recsys.data.movielens import read_ml1m_users

    users = read_ml1m_users(shared_data_dir / "ml-1m" / "users.dat")
    # "Under 18" is stored as age 1: it used to land in the "<8" band.
    assert groups.age_band(int(users.loc[users["age_group"] == "Under 18", "age"].iloc[0])) == "<8"
    with pytest.raises(ValueError, match="records age groups, not ages"):
        groups.user_groups(users)
