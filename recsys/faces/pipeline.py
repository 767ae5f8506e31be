"""Bytes in (camera frame, uploaded image or short video) -> faces with age band, gender, emotion.

Privacy: images are decoded from memory and never written to disk or logged; only derived
labels and probabilities leave this module.

Sequence mode (the paper's temporal model, replaced here by probability averaging): for a clip
or a run of camera frames, each frame's per-face probability vectors (age classes, gender,
emotion) are matched to the previous frames' faces by box overlap and averaged over a sliding
window of the last `window` frames (default 8 frames = 4 s of video sampled at 2 frames/s).
The reported label of each face is the argmax of its averaged vector.
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from recsys.errors import InvalidInput, InvalidParameter
from recsys.faces.detect import DetectedFace, FaceDetector
from recsys.faces.emotion_net import EMOTIONS
from recsys.models.groups import AGE_BAND_LABELS, age_band

MAX_IMAGE_BYTES = 15 * 1024 * 1024
MAX_VIDEO_BYTES = 60 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
DEFAULT_VIDEO_FPS = 2.0
DEFAULT_MAX_FRAMES = 40
DEFAULT_WINDOW = 8
MATCH_IOU = 0.3


class FaceInputError(InvalidInput):
    """Bad or unusable input; `str(error)` is a message fit to show the user as is."""


class NoFaceError(FaceInputError):
    pass


class UnsupportedInputError(FaceInputError):
    pass


class InputTooLargeError(FaceInputError):
    pass


NO_FACE_MESSAGE = (
    "No face found. Face the camera in good light, or upload a photo where at least "
    "one face is clearly visible and not too small."
)


@dataclass
class FaceResult:
    box: tuple[float, float, float, float]
    detection_score: float
    age: float  # expected age (years) from the age model's 81 classes
    age_band: str
    age_band_confidence: float  # probability mass of that band
    gender: str  # "F" / "M"
    gender_confidence: float
    emotion: str
    emotion_confidence: float
    emotion_probs: dict[str, float]
    age_band_probs: dict[str, float]
    frames: int = 1  # how many frames were averaged into this result

    def label(self) -> str:
        return (
            f"{self.age_band} ({self.age_band_confidence:.0%}) · {self.gender} "
            f"({self.gender_confidence:.0%}) · {self.emotion} ({self.emotion_confidence:.0%})"
        )


@dataclass
class AnalysisResult:
    image: np.ndarray  # the (last) frame, RGB uint8; kept in memory only
    faces: list[FaceResult]
    frames_analysed: int = 1
    window: int = 1


# ---- decoding ----------------------------------------------------------------------------------
def decode_image(data: bytes) -> np.ndarray:
    """Bytes -> RGB uint8 array, EXIF rotation applied; FaceInputError for anything unusable."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise UnsupportedInputError("The upload is empty.")
    if len(data) > MAX_IMAGE_BYTES:
        raise InputTooLargeError(
            f"The image is {len(data) / 2**20:.1f} MB; the limit is {MAX_IMAGE_BYTES // 2**20} MB."
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InputTooLargeError(
                    f"The image has {img.width}x{img.height} pixels; the limit is "
                    f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels."
                )
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except FaceInputError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise UnsupportedInputError("This file is not an image we can read (JPEG, PNG, WebP, ...).") from exc


def decode_video(data: bytes, fps: float = DEFAULT_VIDEO_FPS, max_frames: int = DEFAULT_MAX_FRAMES) -> list[np.ndarray]:
    """Frames sampled at `fps` (at most `max_frames`) from an in-memory clip, decoded with PyAV."""
    import av

    if not fps > 0 or max_frames < 1:  # fps=0 would divide by zero deep in the decode loop
        raise InvalidParameter(f"fps must be positive and max_frames >= 1, got fps={fps}, max_frames={max_frames}")
    if not data:
        raise UnsupportedInputError("The upload is empty.")
    if len(data) > MAX_VIDEO_BYTES:
        raise InputTooLargeError(
            f"The video is {len(data) / 2**20:.1f} MB; the limit is {MAX_VIDEO_BYTES // 2**20} MB. Upload a short clip."
        )
    frames: list[np.ndarray] = []
    next_time = 0.0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.video:
                raise UnsupportedInputError("This file has no video stream.")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(frames) / fps
                if t + 1e-6 < next_time:
                    continue
                frames.append(frame.to_ndarray(format="rgb24"))
                next_time = t + 1.0 / fps
                if len(frames) >= max_frames:
                    break
    except FaceInputError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        if frames:  # a truncated clip: keep what decoded
            return frames
        raise UnsupportedInputError("This file is not a video we can read (MP4, WebM, MOV, ...).") from exc
    if not frames:
        raise UnsupportedInputError("The video has no decodable frames.")
    return frames


# ---- per-frame analysis ------------------------------------------------------------------------
@dataclass
class FrameProbabilities:
    """Per-face probability vectors of one frame: the unit that sequence mode averages."""

    faces: list[DetectedFace]
    age: np.ndarray  # (N, 81)
    gender: np.ndarray  # (N, 2) [F, M]
    emotion: np.ndarray  # (N, 7)


class AudienceAnalyzer:
    """Detector + attribute models, loaded once; thread-unsafe by design (cache one per process)."""

    def __init__(self, detector: FaceDetector | None = None, models=None):
        from recsys.faces.attributes import FaceAttributeModels

        self.detector = detector or FaceDetector()
        self.models = models or FaceAttributeModels.load()

    def frame_probabilities(self, image: np.ndarray) -> FrameProbabilities:
        faces = self.detector.detect(image)
        age, gender = self.models.age_gender.predict(image, faces)
        emotion = self.models.emotion.predict(image, faces)
        return FrameProbabilities(faces, age, gender, emotion)

    def to_results(self, faces, age, gender, emotion, frames=None) -> list[FaceResult]:
        model = self.models.age_gender
        ages = model.expected_age(age)
        bands = model.band_probabilities(age)
        results = []
        for i, face in enumerate(faces):
            band = age_band(ages[i])
            band_probs = dict(zip(AGE_BAND_LABELS, bands[i].round(4).tolist()))
            g = int(np.argmax(gender[i]))
            e = int(np.argmax(emotion[i]))
            results.append(
                FaceResult(
                    box=face.box,
                    detection_score=face.score,
                    age=float(ages[i]),
                    age_band=band,
                    age_band_confidence=float(band_probs[band]),
                    gender=model.gender_labels_[g],
                    gender_confidence=float(gender[i, g]),
                    emotion=EMOTIONS[e],
                    emotion_confidence=float(emotion[i, e]),
                    emotion_probs=dict(zip(EMOTIONS, emotion[i].round(4).tolist())),
                    age_band_probs=band_probs,
                    frames=int(frames[i]) if frames is not None else 1,
                )
            )
        return results

    def analyse_image(self, image: np.ndarray, require_face: bool = True) -> AnalysisResult:
        height, width = image.shape[:2]
        if require_face and min(height, width) < self.detector.min_face_size:
            raise NoFaceError(
                f"The image is only {width}x{height} pixels: too small to find a face "
                f"(faces need at least {self.detector.min_face_size} pixels)."
            )
        probs = self.frame_probabilities(image)
        if require_face and not probs.faces:
            raise NoFaceError(NO_FACE_MESSAGE)
        return AnalysisResult(image, self.to_results(probs.faces, probs.age, probs.gender, probs.emotion))

    def analyse_image_bytes(self, data: bytes) -> AnalysisResult:
        return self.analyse_image(decode_image(data))

    def analyse_frames(self, frames: list[np.ndarray], window: int = DEFAULT_WINDOW, progress=None) -> AnalysisResult:
        tracker = TemporalAverager(window)
        for i, frame in enumerate(frames):
            tracker.update(self.frame_probabilities(frame))
            if progress:
                progress(i + 1, len(frames), f"frame {i + 1}/{len(frames)}")
        faces, age, gender, emotion, counts = tracker.averaged()
        if not faces:
            raise NoFaceError(NO_FACE_MESSAGE)
        return AnalysisResult(
            frames[-1], self.to_results(faces, age, gender, emotion, counts), frames_analysed=len(frames), window=window
        )

    def analyse_video_bytes(
        self,
        data: bytes,
        fps: float = DEFAULT_VIDEO_FPS,
        window: int = DEFAULT_WINDOW,
        max_frames: int = DEFAULT_MAX_FRAMES,
        progress=None,
    ) -> AnalysisResult:
        return self.analyse_frames(decode_video(data, fps, max_frames), window, progress)


# ---- sequence mode -----------------------------------------------------------------------------
def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class _Track:
    face: DetectedFace
    history: deque = field(default_factory=deque)  # of (age, gender, emotion) vectors
    last_seen: int = 0


class TemporalAverager:
    """Matches faces across frames greedily by IoU (>= 0.3) and averages each track's
    probabilities over its last `window` observations; tracks unseen for `window` frames expire."""

    def __init__(self, window: int = DEFAULT_WINDOW):
        if window < 1:
            raise InvalidParameter(f"window must be >= 1 frame, got {window}")
        self.window = window
        self.tracks: list[_Track] = []
        self.frame = 0

    def update(self, probs: FrameProbabilities) -> None:
        self.frame += 1
        free = list(range(len(self.tracks)))
        for i, face in enumerate(probs.faces):
            best, best_iou = None, MATCH_IOU
            for t in free:
                overlap = iou(self.tracks[t].face.box, face.box)
                if overlap >= best_iou:
                    best, best_iou = t, overlap
            if best is None:
                self.tracks.append(_Track(face))
                best = len(self.tracks) - 1
            else:
                free.remove(best)
            track = self.tracks[best]
            track.face, track.last_seen = face, self.frame
            track.history.append((probs.age[i], probs.gender[i], probs.emotion[i]))
            while len(track.history) > self.window:
                track.history.popleft()
        self.tracks = [t for t in self.tracks if self.frame - t.last_seen < self.window]

    def averaged(self):
        tracks = sorted(self.tracks, key=lambda t: -t.face.width * t.face.height)
        faces = [t.face for t in tracks]
        mean = [np.mean([h[k] for h in t.history], axis=0) for k in range(3) for t in tracks]
        n = len(tracks)
        age = np.array(mean[:n]).reshape(n, -1)
        gender = np.array(mean[n : 2 * n]).reshape(n, -1)
        emotion = np.array(mean[2 * n :]).reshape(n, -1)
        return faces, age, gender, emotion, [len(t.history) for t in tracks]
