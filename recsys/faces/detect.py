"""Face detection with the three-stage MTCNN cascade (P-Net -> R-Net -> O-Net, Zhang et al. 2016).

We use facenet-pytorch's MTCNN because its pretrained P/R/O-Net weights ship inside the wheel
(no download). Its NMS comes from torchvision.ops; if that compiled op is unusable (a torch /
torchvision mismatch), `_ensure_nms` swaps in the plain-tensor NMS below, which gives the same
picks, only slower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recsys.errors import InvalidInput, WeightsUnavailable

# Larger images are shrunk before detection: MTCNN's pyramid cost grows with pixel count and a
# face that fills less than ~1/30 of a 1280-px frame is too small for the attribute models anyway.
MAX_DETECTION_SIDE = 1280


@dataclass(frozen=True)
class DetectedFace:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float  # O-Net face probability
    landmarks: np.ndarray  # (5, 2): left eye, right eye, nose, mouth left, mouth right

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """Greedy IoU non-maximum suppression in plain torch; indices kept, best score first."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-12)
        order = rest[iou <= threshold]
    return torch.stack(keep)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, threshold: float) -> torch.Tensor:
    """NMS per image index, by offsetting each image's boxes apart (torchvision's trick)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, threshold)


def _ensure_nms() -> str:
    """Use torchvision's NMS when it runs, else patch in ours. Returns which one is active."""
    from facenet_pytorch.models.utils import detect_face

    try:
        from torchvision.ops import batched_nms as tv_batched_nms

        tv_batched_nms(torch.tensor([[0.0, 0.0, 10.0, 10.0]]), torch.tensor([1.0]), torch.tensor([0]), 0.5)
        return "torchvision"
    except Exception:  # noqa: BLE001 - any failure of the compiled op means: use ours
        detect_face.batched_nms = batched_nms
        return "torch"


class FaceDetector:
    """MTCNN wrapper: `detect(rgb_uint8_array)` -> faces sorted by area, largest first."""

    def __init__(
        self, min_face_size: int = 40, thresholds=(0.6, 0.7, 0.7), min_score: float = 0.9, device: str | None = None
    ):
        self.min_face_size = min_face_size
        self.thresholds = tuple(thresholds)
        self.min_score = min_score
        self.device = device
        try:
            from facenet_pytorch import MTCNN
        except ImportError as exc:
            raise WeightsUnavailable(
                "face detection needs the facenet-pytorch wheel (MTCNN weights): "
                "pip install --no-deps -r requirements-nodeps.txt"
            ) from exc
        self.nms_backend_ = _ensure_nms()
        # The detector is tiny; the CPU is as fast as a GPU round-trip for single images.
        self._mtcnn = MTCNN(
            keep_all=True,
            min_face_size=min_face_size,
            thresholds=list(self.thresholds),
            device=device or "cpu",
            post_process=False,
        )

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InvalidInput("detect() expects an RGB uint8 array of shape (H, W, 3)")
        scale = min(1.0, MAX_DETECTION_SIDE / max(image.shape[:2]))
        work = image
        if scale < 1.0:
            from PIL import Image

            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            work = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
        if min(work.shape[:2]) < self.min_face_size:
            return []  # MTCNN's image pyramid would be empty
        with torch.inference_mode():
            try:
                boxes, scores, points = self._mtcnn.detect(work, landmarks=True)
            except (RuntimeError, ValueError) as exc:
                # facenet-pytorch concatenates an empty candidate list when every candidate of a
                # stage falls outside the image: that means "no face", not a failure.
                if "non-empty list" not in str(exc):
                    raise
                return []
        if boxes is None:
            return []
        faces = []
        for box, score, landmarks in zip(boxes, scores, points):
            if score is None or score < self.min_score:
                continue
            box = np.asarray(box, dtype=float) / scale
            faces.append(
                DetectedFace(tuple(float(v) for v in box), float(score), np.asarray(landmarks, dtype=float) / scale)
            )
        return sorted(faces, key=lambda f: -f.width * f.height)
