"""Faces in photos (人脸): find them, and blur them before a photo is shown to anyone but staff.

A citizen's photo of a pile of rubbish often shows passers-by. Face data is sensitive personal information
(DESIGN.md, "Personal and biometric data"), so a photo that leaves the staff side (case pages for citizens,
Open311, exports) goes through `blur_faces` first.

Images reaching this module are already upright: the media pipeline (`media.images.clean`) applies the EXIF
orientation, as `PIL.ImageOps.exif_transpose` does, before anything else. That matters here because the HOG
detector only finds upright faces, and `face_recognition.load_image_file` ignores EXIF orientation: a phone
photo stored sideways would silently show no faces and be published unblurred.

face_recognition (and dlib under it) is imported only inside `HogFaceDetector`; scripts/install.sh says how
it is installed without an 8-minute dlib build.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image, ImageFilter

from core.errors import TongguanError, ValidationFailed
from media import images

if TYPE_CHECKING:
    from collections.abc import Callable

    from numpy.typing import NDArray


class FaceDetectorUnavailable(TongguanError):
    """The configured detector cannot run here (face_recognition or its models are not installed)."""

    status = 503


@dataclass(frozen=True)
class FaceBox:
    """A face's box in pixels, in face_recognition's (top, right, bottom, left) order; right and bottom are
    exclusive, as in `PIL.Image.crop`."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def grown(self, margin: float, *, width: int, height: int) -> FaceBox:
        """This box grown on every side by `margin` times its size, clipped to a width × height image."""
        dx = math.ceil(self.width * margin)
        dy = math.ceil(self.height * margin)
        return FaceBox(
            top=max(0, self.top - dy),
            right=min(width, self.right + dx),
            bottom=min(height, self.bottom + dy),
            left=max(0, self.left - dx),
        )


def _face_recognition() -> Any:
    """The face_recognition module, or FaceDetectorUnavailable.

    Imported by the classes that use it, not at module level, so that code using NoFaces never loads dlib and its
    100 MB of models; imported when a detector is made, not at its first use, so a missing install fails early.
    """
    try:
        import face_recognition
    except (ImportError, SystemExit) as exc:
        # face_recognition_models 0.3.0 calls quit() when pkg_resources is missing: SystemExit, caught.
        raise FaceDetectorUnavailable(
            "face_detector_unavailable", f"face_recognition cannot be imported ({exc!r}); run scripts/install.sh"
        ) from exc
    return face_recognition


# face_recognition keeps one detector and one network per process, which dlib does not document as thread-safe:
# every call into it (blurring in jobs, identify in the API, both in one embedded process) takes this lock.
DLIB_LOCK = threading.Lock()


class FaceDetector(Protocol):
    def detect(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        """Boxes of the faces in an upright H × W × 3 uint8 RGB image."""
        ...


class HogFaceDetector:
    """dlib's HOG frontal-face detector through face_recognition: CPU only, single-threaded.

    HOG finds frontal and half-turned faces; faces in profile, turned away, upside down or mostly covered
    are missed. With `upsample=1` it finds faces from about 40 px wide (0 would miss those under ~80 px, at a
    quarter of the time). Images whose long side exceeds `max_side` are shrunk first and the boxes scaled
    back: the smallest face found is then about 40 px × long side / max_side (≈ 80 px on a 4032 px phone
    photo), and one 12 MP photo takes about a second instead of five.
    """

    def __init__(self, *, upsample: int = 1, max_side: int = 2000) -> None:
        if upsample < 0 or max_side < 64:
            raise ValueError("upsample must be >= 0 and max_side >= 64")
        self.upsample = upsample
        self.max_side = max_side
        self._face_locations: Callable[..., list[tuple[int, int, int, int]]] = _face_recognition().face_locations

    def detect(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an H x W x 3 uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")
        height, width = rgb.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = rgb
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
        sy = height / small.shape[0]
        sx = width / small.shape[1]
        boxes = []
        with DLIB_LOCK:
            found = self._face_locations(small, number_of_times_to_upsample=self.upsample)
        for top, right, bottom, left in found:
            # dlib's right and bottom are inclusive: +1 makes them exclusive before scaling back up.
            boxes.append(
                FaceBox(
                    top=max(0, math.floor(top * sy)),
                    right=min(width, math.ceil((right + 1) * sx)),
                    bottom=min(height, math.ceil((bottom + 1) * sy)),
                    left=max(0, math.floor(left * sx)),
                )
            )
        return boxes


class FaceEngine(Protocol):
    """Finds faces and turns one into a face encoding (人脸特征): 128 numbers, close for photos of one person."""

    def locate(self, rgb: NDArray[np.uint8], *, upsample: int) -> list[FaceBox]:
        """Boxes of the faces in an upright RGB image, in its own pixels."""
        ...

    def encode(self, rgb: NDArray[np.uint8], box: FaceBox) -> NDArray[np.float32]:
        """The 128-d encoding of the face in `box` of the image."""
        ...


class DlibFaceEngine:
    """dlib through face_recognition: HOG boxes, 5-point landmarks, and its ResNet encoding (99.38 % on LFW).

    Two photos of one person are typically 0.3–0.5 apart (euclidean), of two people 0.7 and more; face_recognition
    calls 0.6 a match. One call runs at a time in a process (DLIB_LOCK); HOG on a 1024 px image costs ~80 ms and an
    encoding ~100 ms on one core here (bench/README.md, face_identify).
    """

    def __init__(self) -> None:
        fr = _face_recognition()
        self._face_locations: Callable[..., list[tuple[int, int, int, int]]] = fr.face_locations
        self._face_encodings: Callable[..., list[NDArray[np.float64]]] = fr.face_encodings

    def locate(self, rgb: NDArray[np.uint8], *, upsample: int) -> list[FaceBox]:
        _check_rgb(rgb)
        height, width = rgb.shape[:2]
        with DLIB_LOCK:
            found = self._face_locations(rgb, number_of_times_to_upsample=upsample)
        # dlib's right and bottom are inclusive; FaceBox's are exclusive.
        return [
            FaceBox(top=max(0, t), right=min(width, r + 1), bottom=min(height, b + 1), left=max(0, left))
            for t, r, b, left in found
        ]

    def encode(self, rgb: NDArray[np.uint8], box: FaceBox) -> NDArray[np.float32]:
        _check_rgb(rgb)
        with DLIB_LOCK:
            found = self._face_encodings(rgb, known_face_locations=[(box.top, box.right - 1, box.bottom - 1, box.left)])
        return np.asarray(found[0], dtype=np.float32)


def _check_rgb(rgb: NDArray[np.uint8]) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an H x W x 3 uint8 RGB array, got shape {rgb.shape} dtype {rgb.dtype}")


class NoFaces:
    """The fake detector: finds no face in any image, without loading dlib (tests, `tongguan demo`).

    Never let it decide what is shown to the public: `blur_faces` with it returns every photo unblurred.
    """

    def detect(self, rgb: NDArray[np.uint8]) -> list[FaceBox]:
        return []

    def locate(self, rgb: NDArray[np.uint8], *, upsample: int) -> list[FaceBox]:
        return []

    def encode(self, rgb: NDArray[np.uint8], box: FaceBox) -> NDArray[np.float32]:
        raise ValueError("NoFaces finds no face, so it has none to encode")


def _obscure(region: Image.Image) -> Image.Image:
    """The region pixelated to about 6 cells across its long side, then smoothed by half a cell.

    Cells this coarse leave a grown face box a few blobs of skin and hair colour: nothing a person or a face
    matcher recognises, and, unlike a plain Gaussian blur, nothing that deblurring can bring back. The
    smoothing hides the cell edges, which with 8 cells or a lighter blur still made HOG see a face.
    """
    width, height = region.size
    cell = max(1, math.ceil(max(width, height) / 6))
    cells = (max(1, round(width / cell)), max(1, round(height / cell)))
    mosaic = region.resize(cells, Image.Resampling.BOX).resize(region.size, Image.Resampling.NEAREST)
    return mosaic.filter(ImageFilter.GaussianBlur(cell / 2))


def blur_faces(image: Image.Image, *, detector: FaceDetector, margin: float = 0.25) -> tuple[Image.Image, int]:
    """A copy of an upright image with every detected face made unrecognisable, and the number of faces.

    Each face box is grown by `margin` of its size on every side (HOG boxes run from the eyebrows to the chin,
    so hair, forehead and ears need the margin) and pixelated. Pixels outside the grown boxes are unchanged;
    an image with no face comes back as an unchanged copy. A palette (or CMYK, …) image with a face comes back
    as RGB or RGBA. `image.info` (EXIF, with any GPS position) is copied as it is: dropping it is the encoder's
    job when the public copy is saved.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    boxes = detector.detect(np.asarray(image.convert("RGB")))
    out = image.copy()
    if not boxes:
        return out, 0
    if out.mode not in ("RGB", "RGBA", "L", "LA"):
        # Palette and other modes cannot be resampled smoothly; the copy changes mode only when it has a face.
        out = out.convert("RGBA" if "transparency" in out.info or out.mode.endswith("A") else "RGB")
    for face in boxes:
        box = face.grown(margin, width=out.width, height=out.height)
        if box.width <= 0 or box.height <= 0:
            continue
        xy = (box.left, box.top, box.right, box.bottom)
        out.paste(_obscure(out.crop(xy)), xy[:2])
    return out, len(boxes)


_DETECTORS: dict[str, Callable[[], Any]] = {
    "hog": HogFaceDetector,
    "none": NoFaces,
}


def get_face_detector(name: str = "hog") -> FaceDetector:
    """The detector a settings word names: "hog" (the real one) or "none" (the fake, `NoFaces`)."""
    try:
        factory = _DETECTORS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; known: {', '.join(sorted(_DETECTORS))}") from None
    detector: FaceDetector = factory()
    return detector


_ENGINES: dict[str, Callable[[], Any]] = {
    "hog": DlibFaceEngine,
    "none": NoFaces,
}


def get_face_engine(name: str = "hog") -> FaceEngine:
    """The engine a settings word (`TG_FACE_DETECTOR`) names: "hog" (dlib) or "none" (finds no face: demo, tests)."""
    try:
        factory = _ENGINES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown face engine {name!r}; known: {', '.join(sorted(_ENGINES))}") from None
    engine: FaceEngine = factory()
    return engine


class FaceRejected(ValidationFailed):
    """A photo that gives no face to match: none found (no_face), too small (face_too_small), or a face index the
    photo does not have (no_such_face)."""


@dataclass(frozen=True)
class FaceRead:
    """The faces of one photo and the encoding of the chosen one; boxes are in the upright photo's pixels."""

    faces: tuple[FaceBox, ...]  # largest first
    chosen: int
    encoding: NDArray[np.float32] = field(repr=False)
    width: int
    height: int


def read_face(
    data: bytes,
    *,
    engine: FaceEngine,
    limits: images.Limits = images.DEFAULT_LIMITS,
    side: int = 1024,
    min_px: int = 64,
    choose: int | None = None,
) -> FaceRead:
    """Find the faces of a photo and encode one: `choose` (an index into the faces, largest first) or the largest.

    The photo is decoded straight to `side` pixels (a 12 MP photo at 1/4 scale) and searched for faces without
    upsampling (faces from ~80 px there, a quarter of a photo's width on a 4032 px phone photo taken at arm's
    length); only when that finds none is it searched again at twice the scale, which finds faces from ~40 px at
    four times the cost. A chosen face narrower than `min_px` there gives an unreliable encoding and is refused.
    """
    shrunk = images.downscaled(data, limits=limits, max_side=side)
    rgb = np.asarray(shrunk.image)
    found = engine.locate(rgb, upsample=0) or engine.locate(rgb, upsample=1)
    if not found:
        raise FaceRejected("no_face", "no face was found in the photo")
    found.sort(key=lambda box: box.width * box.height, reverse=True)
    index = 0 if choose is None else choose
    if not 0 <= index < len(found):
        raise FaceRejected("no_such_face", f"the photo has {len(found)} face(s); face {index} does not exist")
    box = found[index]
    if min(box.width, box.height) < min_px:
        raise FaceRejected(
            "face_too_small",
            f"the face is {box.width}×{box.height} px in a {max(rgb.shape[:2])} px image; at least {min_px} px needed",
        )
    encoding = engine.encode(rgb, box)
    scale = shrunk.scale
    faces = tuple(
        FaceBox(
            top=max(0, math.floor(b.top * scale)),
            right=min(shrunk.width, math.ceil(b.right * scale)),
            bottom=min(shrunk.height, math.ceil(b.bottom * scale)),
            left=max(0, math.floor(b.left * scale)),
        )
        for b in found
    )
    return FaceRead(faces=faces, chosen=index, encoding=encoding, width=shrunk.width, height=shrunk.height)
