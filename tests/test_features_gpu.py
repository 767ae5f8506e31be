"""GPU extraction: the nvJPEG poster path (its logic checked on the CPU with torchvision's CPU
decoder, its numbers on CUDA), the thread-only decoding (nothing forked after CUDA), and CUDA vs
CPU agreement. The CUDA tests run where torch sees a GPU and skip with the reason elsewhere.

Tolerances on CUDA, per item against the CPU path (fp32, PIL): fp32 on CUDA (TF32 convolutions
allowed by torch's defaults) cosine >= 0.999 and max abs <= 0.05; amp and/or gpu-nvjpeg cosine >=
0.995 and max abs <= 0.5 (issue 12 measured amp: max abs 0.145, min cosine 0.9994 on an H200).
"""

from __future__ import annotations

import io
import multiprocessing
import threading

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from video_helpers import write_clip

from recsys.data.dataset import Dataset
from recsys.errors import InvalidParameter
from recsys.features.backbones import create_backbone
from recsys.features.config import RunOptions, default_preprocessing, make_config
from recsys.features.decoding import decode_workers, ordered_map, split_transform
from recsys.features.extract import extract
from recsys.features.gpu_images import TensorTransform, gpu_poster_batches, jpeg_header
from recsys.features.images import image_batches
from recsys.features.store import FeatureStore

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here: the GPU path is checked on a GPU machine")


def _poster(rng, size=(500, 750)) -> Image.Image:
    """A poster-sized picture with smooth regions and edges (TMDB's w500)."""
    small = rng.integers(0, 256, (12, 8, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.BICUBIC)
    pixels = np.asarray(image).copy()
    pixels[200:260, 50:450] = 255 - pixels[200:260, 50:450]
    return Image.fromarray(pixels)


@pytest.fixture(scope="module")
def posters(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu-posters")
    rng = np.random.default_rng(1)
    paths = {}
    for item_id in range(1, 9):
        path = folder / f"{item_id}.jpg"
        _poster(rng).save(path, quality=90, progressive=item_id == 3)
        paths[item_id] = str(path)
    _poster(rng).convert("L").save(folder / "grey.jpg", quality=90)
    _poster(rng).save(folder / "png.jpg", format="PNG")  # a PNG behind a .jpg name
    _poster(rng).convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    data = open(paths[1], "rb").read()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "garbage.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    paths.update(
        {
            20: str(folder / "grey.jpg"),
            21: str(folder / "png.jpg"),
            22: str(folder / "cmyk.jpg"),
            23: str(folder / "truncated.jpg"),
            24: str(folder / "garbage.jpg"),
            25: str(folder / "missing.jpg"),
            26: None,
        }
    )
    return paths


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    return create_backbone("tf_efficientnet_lite0")


def make_dataset(name: str, posters: dict) -> Dataset:
    ids = sorted(posters)
    items = pd.DataFrame(
        {"title": [f"m{i}" for i in ids], "year": pd.array([2000] * len(ids), dtype="Int64")},
        index=pd.Index(ids, name="item_id"),
    )
    ratings = pd.DataFrame({"user_id": [1], "item_id": [ids[0]], "rating": [4.0], "timestamp": [0]})
    genres = pd.DataFrame({"Drama": np.ones(len(ids), np.uint8)}, index=items.index)
    return Dataset(name, ratings, items, genres, posters=pd.Series([posters[i] for i in ids], index=items.index))


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


# ---- the header check that routes files to nvJPEG or to PIL ---------------------------------------
def test_jpeg_header_routes_what_nvjpeg_cannot_take_to_the_cpu(posters):
    def header(item_id):
        return jpeg_header(open(posters[item_id], "rb").read())

    info, _ = header(1)
    assert (info.width, info.height, info.components, info.progressive) == (500, 750, 3, False)
    assert header(3)[0].progressive and header(20)[0].components == 1
    assert header(21) == (None, "not a JPEG")
    assert header(22)[0] is None and "CMYK" in header(22)[1]
    assert header(23)[0] is None and "truncated" in header(23)[1]
    assert header(24)[0] is None
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    assert jpeg_header(buffer.getvalue())[0] is not None
    assert jpeg_header(b"")[0] is None


def test_tensor_transform_is_the_backbones_and_refuses_what_it_cannot_do(lite0):
    from torchvision import transforms as T

    transform = TensorTransform(lite0.transform)
    assert [kind for kind, *_ in transform.spatial] == ["resize", "crop"]
    assert transform.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    with pytest.raises(InvalidParameter, match="ColorJitter.*cpu-pil"):
        TensorTransform(T.Compose([T.ColorJitter(), T.ToTensor(), T.Normalize((0.5,) * 3, (0.5,) * 3)]))


def test_gpu_path_logic_on_the_cpu_matches_the_pil_path(posters, lite0):
    """The nvJPEG pipeline with torchvision's CPU decoder: same items, same failure reasons, the
    fallbacks (PNG, CMYK, truncated) decoded by PIL, features within the GPU path's bar."""
    paths = [posters[i] for i in sorted(posters)]
    gpu = list(gpu_poster_batches(paths, lite0.transform, 4, "cpu", workers=2))
    cpu = list(image_batches(paths, lite0.transform, 4, 2))
    assert [p for b in gpu for p in b.positions] == [p for positions, _, _ in cpu for p in positions]
    assert sorted(f for b in gpu for f in b.failed) == sorted(f for _, _, failed in cpu for f in failed)
    failed = {paths[p] for b in gpu for p, _ in b.failed}
    assert failed == {posters[23], posters[24], posters[25], None}
    assert sum(b.fallback for b in gpu) == 2  # PNG and CMYK: decoded by PIL, then the same transform
    gpu_batch = torch.cat([b.batch for b in gpu if b.batch is not None])
    cpu_batch = torch.cat([b for _, b, _ in cpu if b is not None])
    assert gpu_batch.shape == cpu_batch.shape == (11, 3, 224, 224)
    with torch.inference_mode():
        a, b = lite0.extract(gpu_batch).numpy(), lite0.extract(cpu_batch).numpy()
    assert _cosine(a, b).min() >= 0.995
    assert np.abs(a - b).max() > 1e-3  # not the same numbers: a key of its own (gpu-nvjpeg)


def test_split_transform_gives_the_same_numbers_as_the_full_transform(posters, lite0):
    split = split_transform(lite0.transform)
    image = Image.open(posters[1]).convert("RGB")
    full = lite0.transform(image)
    finished = split.finish(torch.from_numpy(split.to_array(image))[None])[0]
    assert torch.equal(full, finished)


def test_gpu_nvjpeg_needs_cuda_and_is_the_cuda_default_for_posters(posters, lite0, tmp_path):
    assert default_preprocessing("posters", "cuda") == "gpu-nvjpeg"
    assert default_preprocessing("trailers", "cuda") == "cpu-pil" == default_preprocessing("posters", "cpu")
    dataset = make_dataset("nvjpeg-on-cpu", {1: posters[1]})
    config = make_config(dataset, preprocessing="gpu-nvjpeg", precision="fp32", device="cpu")
    with pytest.raises(InvalidParameter, match="gpu-nvjpeg.*--preprocessing cpu-pil"):
        extract(dataset, config, RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path), batch_size=1))
    with pytest.raises(InvalidParameter, match="posters"):
        make_config(dataset, "trailers", preprocessing="gpu-nvjpeg")


def test_decoding_uses_threads_sized_to_the_machine_and_forks_nothing(posters, lite0, tmp_path):
    from recsys.features.decoding import cpu_count

    assert decode_workers(None, "cuda") == cpu_count()
    assert decode_workers(None, "cpu", model_threads=cpu_count()) == 1
    assert decode_workers(3, "cpu") == 3 and decode_workers(None, "cuda", n_jobs=2) == min(2, cpu_count())
    assert list(ordered_map(lambda x: x * x, range(50), workers=3, lookahead=4)) == [x * x for x in range(50)]
    dataset = make_dataset("threads", {i: posters[i] for i in range(1, 9)})
    before = threading.active_count()
    result = extract(
        dataset,
        make_config(dataset, device="cpu"),
        RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path), batch_size=4, num_workers=2),
    )
    assert len(result.features) == 8 and result.info["manifest"]["runs"][-1]["decode_threads"] == 2
    assert multiprocessing.active_children() == [] and threading.active_count() == before


# ---- on a GPU ---------------------------------------------------------------------------------------
def _extract_on(dataset, lite0, tmp_path, device, **config_options):
    config = make_config(dataset, device=device, **config_options)
    return extract(dataset, config, RunOptions(device=device, model=lite0, store=FeatureStore(tmp_path), batch_size=4))


@needs_cuda
@pytest.mark.timeout(300)
def test_posters_on_cuda_agree_with_the_cpu(posters, lite0, tmp_path):
    dataset = make_dataset("cuda-posters", posters)
    cpu = _extract_on(dataset, lite0, tmp_path / "cpu", "cpu")
    runs = {
        ("fp32", "cpu-pil"): (0.999, 0.05),
        ("amp", "cpu-pil"): (0.995, 0.5),
        ("fp32", "gpu-nvjpeg"): (0.995, 0.5),
        ("amp", "gpu-nvjpeg"): (0.995, 0.5),
    }
    for (precision, preprocessing), (min_cosine, max_abs) in runs.items():
        cuda = _extract_on(
            dataset,
            lite0,
            tmp_path / f"{precision}-{preprocessing}",
            "cuda",
            precision=precision,
            preprocessing=preprocessing,
        )
        assert cuda.device == "cuda"
        if (precision, preprocessing) != ("fp32", "cpu-pil"):
            assert cuda.key != cpu.key  # a different computation, a different cache entry
        assert cuda.features.item_ids.tolist() == cpu.features.item_ids.tolist()
        assert cuda.failures.sort_values("item_id", ignore_index=True).equals(
            cpu.failures.sort_values("item_id", ignore_index=True)
        )
        a, b = cuda.features.matrix, cpu.features.matrix
        assert _cosine(a, b).min() >= min_cosine, (precision, preprocessing, _cosine(a, b).min())
        assert np.abs(a - b).max() <= max_abs, (precision, preprocessing, np.abs(a - b).max())
    lite0.model.to("cpu")


@needs_cuda
@pytest.mark.timeout(300)
def test_trailers_on_cuda_finish_and_agree_with_the_cpu(tmp_path, lite0):
    """The DataLoader hang of issue 12 came from workers forked after CUDA was initialised: the
    decoders are threads now, and this run starts after CUDA is in use."""
    torch.zeros(1, device="cuda")  # CUDA initialised before any decoding starts
    paths = {i: write_clip(tmp_path / f"{i}.mp4", seconds=4 + i) for i in range(1, 5)}
    paths[9] = None
    items = pd.DataFrame({"title": [f"m{i}" for i in paths], "year": pd.array([2000] * 5, dtype="Int64")})
    items.index = pd.Index(list(paths), name="item_id")
    dataset = Dataset(
        "cuda-trailers",
        pd.DataFrame({"user_id": [1], "item_id": [1], "rating": [4.0], "timestamp": [0]}),
        items,
        pd.DataFrame({"Drama": np.ones(5, np.uint8)}, index=items.index),
        trailers=pd.Series(list(paths.values()), index=items.index, dtype=object),
    )
    cpu = extract(
        dataset,
        make_config(dataset, "trailers", fps=2, device="cpu"),
        RunOptions(device="cpu", model=lite0, store=FeatureStore(tmp_path / "cpu"), batch_size=8),
    )
    cuda = extract(
        dataset,
        make_config(dataset, "trailers", fps=2, precision="amp", device="cuda"),
        RunOptions(device="cuda", model=lite0, store=FeatureStore(tmp_path / "cuda"), batch_size=8),
    )
    assert cuda.device == "cuda" and cuda.missing == cpu.missing == [9]
    assert cuda.status["n_frames"].tolist() == cpu.status["n_frames"].tolist()
    assert _cosine(cuda.features.matrix, cpu.features.matrix).min() >= 0.995
    assert np.abs(cuda.features.matrix - cpu.features.matrix).max() <= 0.5
    lite0.model.to("cpu")


@needs_cuda
def test_cli_on_cuda_defaults_to_amp_and_nvjpeg(shared_data_dir, capsys):
    from recsys.cli import main

    argv = ["extract", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--limit", "8", "--device", "cuda"]
    assert main([*argv, "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["device"] == "cuda" and summary["precision"] == "amp"
    assert summary["preprocessing"] == "gpu-nvjpeg" and summary["items"] + summary["failures"] == 8
