"""The embedded dataset: procedurally drawn scenes, generated offline and deterministically.

Each scene is a textured, noisy background (smooth colour blotches, stripes, clutter strokes
and blobs that are not objects) with a few objects of three classes that mirror paper B's
cat / motorbike / bottle: a round head with two ears and two eyes, two wheels joined by a
frame with a seat and a handlebar, a body with shoulders, neck and cap. Every object has its
own size (mostly small), position, aspect, tilt and random two-colour texture, so neither
colour nor size gives the class away; objects may overlap and later ones hide earlier ones.
Foreground is a minority of the pixels (about a tenth on average), the imbalance that
motivates the Dice loss.

Targets all come from the visible pixels: `segmentation` is the class map (0 = background,
k + 1 = class k), `mask` is `segmentation > 0`, `labels` lists the classes with at least one
visible pixel and `label` is the class with the most visible pixels.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from jaxvision.data.files import jpeg_bytes, png_bytes

CLASS_NAMES = ("cat", "motorbike", "bottle")
SPLITS = ("train", "validation", "test")
_VERSION = tfds.core.Version("1.0.0")
_MIN_HALF_SIZE_PX = 2.5  # smaller objects would vanish at the test image sizes
OBJECTS = (0.06, 0.25)  # default range of an object's half-size, as a fraction of the side


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Bilinearly upsampled random grid: [size, size, 3] in [0, 1]."""
    grid = rng.uniform(size=(cells + 1, cells + 1, 3)).astype(np.float32)
    t = np.linspace(0.0, cells, size, dtype=np.float32)
    i = np.minimum(t.astype(np.int32), cells - 1)
    f = (t - i)[:, None]
    rows = grid[i] * (1 - f[:, :, None]) + grid[i + 1] * f[:, :, None]  # [size, cells+1, 3]
    return rows[:, i] * (1 - f.T[:, :, None]) + rows[:, i + 1] * f.T[:, :, None]


def _segment_distance(x, y, x0, y0, x1, y1):
    """Distance from points (x, y) to the segment (x0, y0)-(x1, y1)."""
    dx, dy = x1 - x0, y1 - y0
    t = np.clip(((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy + 1e-9), 0.0, 1.0)
    return np.hypot(x - x0 - t * dx, y - y0 - t * dy)


def _in_triangle(u, v, a, b, c):
    def side(p, q):
        return (u - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (v - q[1])

    s1, s2, s3 = side(a, b), side(b, c), side(c, a)
    return ((s1 >= 0) & (s2 >= 0) & (s3 >= 0)) | ((s1 <= 0) & (s2 <= 0) & (s3 <= 0))


def _cat(u, v):
    head = (u / 0.75) ** 2 + ((v - 0.2) / 0.7) ** 2 <= 1.0
    ears = _in_triangle(u, v, (-0.72, -0.25), (-0.2, -0.42), (-0.58, -1.0))
    ears |= _in_triangle(u, v, (0.72, -0.25), (0.2, -0.42), (0.58, -1.0))
    eyes = ((np.abs(u) - 0.3) ** 2 + (v - 0.05) ** 2) <= 0.11**2
    return head | ears, eyes


def _motorbike(u, v):
    wheels = np.zeros(u.shape, bool)
    for cx in (-0.62, 0.62):
        r = np.hypot(u - cx, v - 0.5)
        wheels |= (r <= 0.4) & (r >= 0.24)
    frame = _segment_distance(u, v, -0.62, 0.5, 0.05, -0.05) <= 0.09
    frame |= _segment_distance(u, v, 0.05, -0.05, 0.62, 0.5) <= 0.09
    frame |= _segment_distance(u, v, 0.45, -0.55, 0.62, 0.5) <= 0.07
    seat = (u >= -0.5) & (u <= 0.2) & (v >= -0.28) & (v <= -0.12)
    handlebar = _segment_distance(u, v, 0.3, -0.6, 0.62, -0.52) <= 0.07
    return wheels | frame | seat | handlebar, wheels


def _bottle(u, v):
    body = (np.abs(u) <= 0.38) & (v >= -0.15) & (v <= 1.0)
    shoulder_width = 0.14 + 0.24 * (v + 0.45) / 0.3
    shoulder = (v >= -0.45) & (v < -0.15) & (np.abs(u) <= shoulder_width)
    neck = (np.abs(u) <= 0.14) & (v >= -0.9) & (v < -0.45)
    cap = (np.abs(u) <= 0.18) & (v >= -1.0) & (v < -0.8)
    label_band = (v >= 0.2) & (v <= 0.6) & body
    return body | shoulder | neck | cap, label_band | cap


_DRAW = (_cat, _motorbike, _bottle)


def _background(rng: np.random.Generator, size: int, clutter: float = 1.0) -> np.ndarray:
    image = _smooth_noise(rng, size, int(rng.integers(2, 7)))
    image = image * float(rng.uniform(0.3, 0.9)) + rng.uniform(0.0, 0.4, size=3).astype(np.float32)
    axis = np.arange(size, dtype=np.float32)
    for _ in range(int(rng.integers(1, 3))):  # stripes of a random direction and period
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 24)
        step = 2 * np.pi / period
        across, down = axis * float(step * np.cos(angle)), axis * float(step * np.sin(angle))
        # sin(a + b) = sin a cos b + cos a sin b: two outer products instead of size^2 sines.
        wave = np.sin(down)[:, None] * np.cos(across)[None, :] + np.cos(down)[:, None] * np.sin(across)[None, :]
        colour = (rng.uniform(0.03, 0.2) * rng.uniform(-1, 1, size=3)).astype(np.float32)
        image += wave[:, :, None] * colour
    for _ in range(int(int(rng.integers(0, 7)) * clutter)):  # clutter strokes: edges that are not objects
        x0, y0, x1, y1 = (float(c) for c in rng.uniform(0, size, size=4))
        width = float(rng.uniform(0.5, 2.5))
        (ya, yb), (xa, xb) = _box(min(y0, y1), max(y0, y1), min(x0, x1), max(x0, x1), width, size)
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
        near = _segment_distance(xx, yy, x0, y0, x1, y1) <= width
        image[ya:yb, xa:xb][near] = rng.uniform(0, 1, size=3).astype(np.float32)
    for _ in range(int(int(rng.integers(0, 4)) * clutter)):  # soft blobs
        cx, cy = (float(c) for c in rng.uniform(0, size, size=2))
        r = float(rng.uniform(0.04, 0.15)) * size
        (ya, yb), (xa, xb) = _box(cy, cy, cx, cx, 3 * r, size)
        yy, xx = np.mgrid[ya:yb, xa:xb].astype(np.float32)
        weight = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[:, :, None]
        patch = image[ya:yb, xa:xb]
        patch += weight * (rng.uniform(0, 1, size=3).astype(np.float32) - patch)
    return image


def _box(y0: float, y1: float, x0: float, x1: float, margin: float, size: int):
    """Integer pixel ranges covering [y0, y1] x [x0, x1] grown by margin, clipped to the image."""

    def span(a, b):
        return max(int(a - margin), 0), min(int(np.ceil(b + margin)) + 1, size)

    return span(y0, y1), span(x0, x1)


def _sample_classes(rng: np.random.Generator, presence: float = 0.0) -> list[int]:
    """Classes of the objects to draw, each 1+ times, in random order: 1-3 distinct classes, or
    with `presence` > 0 each class independently with that probability (so every label set,
    the empty one included, occurs)."""
    if presence > 0:
        distinct = np.flatnonzero(rng.uniform(size=3) < presence)
    else:
        distinct = rng.choice(3, size=rng.choice([1, 2, 3], p=[0.4, 0.35, 0.25]), replace=False)
    classes = [int(k) for k in distinct for _ in range(1 + rng.poisson(0.8))]
    rng.shuffle(classes)
    return classes


def render_example(
    rng: np.random.Generator,
    size: int,
    objects: tuple[float, float] = OBJECTS,
    clutter: float = 1.0,
    presence: float = 0.0,
    background: float = 1.0,
) -> dict[str, np.ndarray]:
    """One scene: 'image' uint8 [size, size, 3] and 'segmentation' uint8 [size, size] (0-3).

    `objects` is the range of an object's half-size as a fraction of the image side;
    `clutter` scales the number of clutter strokes and blobs (0: none); `presence` > 0 draws
    each class independently with that probability (see `_sample_classes`); `background` scales
    the background's contrast about its mean colour (1: as drawn), the objects keep theirs.
    """
    image = _background(rng, size, clutter)
    if background != 1.0:
        mean = image.mean(axis=(0, 1), keepdims=True)
        image = mean + (image - mean) * np.float32(background)
    segmentation = np.zeros((size, size), np.uint8)
    for k in _sample_classes(rng, presence):
        # Log-uniform half-size: many small objects, a few large ones.
        half = max(size * np.exp(rng.uniform(np.log(objects[0]), np.log(objects[1]))), _MIN_HALF_SIZE_PX)
        # Python floats keep the float32 arrays below in float32 (numpy scalars would widen them).
        cx, cy = (float(c) for c in rng.uniform(0.1 * size, 0.9 * size, size=2))
        tilt = rng.uniform(-0.5, 0.5)
        cos, sin = float(np.cos(tilt)), float(np.sin(tilt))
        sx, sy = (float(half * f) for f in rng.uniform(0.8, 1.2, size=2))
        (y0, y1), (x0, x1) = _box(cy, cy, cx, cx, 1.3 * max(sx, sy), size)
        dy, dx = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.5
        dx, dy = dx - cx, dy - cy
        u, v = (dx * cos + dy * sin) / sx, (dy * cos - dx * sin) / sy
        inside, detail = _DRAW[k](u, v)
        base, second = rng.uniform(0, 1, size=(2, 3)).astype(np.float32)
        angle, freq = rng.uniform(0, np.pi), rng.uniform(2, 8)
        pattern = (np.sin(u * float(freq * np.cos(angle)) + v * float(freq * np.sin(angle))) > 0)[..., None]
        colour = np.where(pattern, base, base * 0.7 + second * 0.3)
        colour = np.where(detail[..., None], second, colour)
        colour = colour * (1.0 - 0.25 * np.clip(v, -1, 1)[..., None])  # shading: lit from above
        patch = image[y0:y1, x0:x1]
        patch[inside] = colour[inside]
        segmentation[y0:y1, x0:x1][inside] = k + 1
    image += float(rng.uniform(0.02, 0.08)) * rng.standard_normal(size=image.shape, dtype=np.float32)
    image = (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    return {"image": image, "segmentation": segmentation}


@dataclasses.dataclass(eq=False)
class ShapesConfig(tfds.core.BuilderConfig):
    """Image side, number of examples of each split, object sizes and clutter."""

    image_size: int = 128
    num_train: int = 2000
    num_validation: int = 500
    num_test: int = 500
    objects: tuple[float, float] = OBJECTS
    clutter: float = 1.0
    presence: float = 0.0
    background: float = 1.0

    @classmethod
    def make(
        cls,
        image_size: int = 128,
        num_train: int = 2000,
        num_validation: int = 500,
        num_test: int = 500,
        objects=OBJECTS,
        clutter: float = 1.0,
        presence: float = 0.0,
        background: float = 1.0,
    ) -> "ShapesConfig":
        """A config whose name records its settings, so each setting is prepared once."""
        for field, value in (
            ("image_size", image_size),
            ("num_train", num_train),
            ("num_validation", num_validation),
            ("num_test", num_test),
        ):
            if int(value) < (8 if field == "image_size" else 0):
                raise ValueError(
                    f"data.shapes.{field}={value} is too small: use a positive number (image_size at least 8)."
                )
        objects = tuple(float(v) for v in objects)
        if (
            not (len(objects) == 2 and 0 < objects[0] <= objects[1] <= 0.5)
            or not 0 <= clutter <= 1
            or not (0 <= presence < 1)
            or not (0 < background <= 1)
        ):
            raise ValueError(
                f"data.shapes.objects {objects} must be (low, high) with 0 < low <= high <= 0.5, "
                f"data.shapes.clutter ({clutter}) between 0 and 1, data.shapes.presence ({presence}) "
                f"at least 0 and under 1, and data.shapes.background ({background}) over 0 and at most 1."
            )
        name = f"{image_size}px_{num_train}_{num_validation}_{num_test}"
        if objects != OBJECTS or clutter != 1.0 or presence:
            name += f"_objects{objects[0]:g}-{objects[1]:g}_clutter{clutter:g}_presence{presence:g}"
        if background != 1.0:
            name += f"_background{background:g}"
        if name not in _MADE:  # one object per setting: tfds accepts only its own object of a listed config
            _MADE[name] = cls(
                name=name,
                version=_VERSION,
                image_size=int(image_size),
                num_train=int(num_train),
                num_validation=int(num_validation),
                num_test=int(num_test),
                objects=objects,
                clutter=float(clutter),
                presence=float(presence),
                background=float(background),
            )
        return _MADE[name]


_MADE: dict[str, ShapesConfig] = {}


class JaxvisionShapes(tfds.core.GeneratorBasedBuilder):
    """Procedural scenes of cats, motorbikes and bottles with masks (no download)."""

    VERSION = _VERSION
    BUILDER_CONFIGS = [ShapesConfig.make()]

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description=__doc__,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="jpeg"),
                    "segmentation": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
                    "mask": tfds.features.Image(shape=(size, size, 1), encoding_format="png"),
                    "labels": tfds.features.Sequence(tfds.features.ClassLabel(names=CLASS_NAMES)),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "id": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        c = self.builder_config
        counts = {"train": c.num_train, "validation": c.num_validation, "test": c.num_test}
        return {name: self._generate_examples(SPLITS.index(name), n) for name, n in counts.items()}

    def _generate_examples(self, split_index: int, count: int):
        c = self.builder_config
        size = c.image_size
        for i in range(count):
            # One generator per example: any example can be regenerated on its own.
            scene = render_example(
                np.random.default_rng([size, split_index, i]), size, c.objects, c.clutter, c.presence, c.background
            )
            segmentation = scene["segmentation"]
            pixels = np.bincount(segmentation.ravel(), minlength=len(CLASS_NAMES) + 1)[1:]
            key = f"{SPLITS[split_index]}_{i:06d}"
            yield (
                key,
                {
                    # JPEG, like the photos of real datasets, at a fifth of the PNG's encoding time.
                    "image": jpeg_bytes(scene["image"]),
                    "segmentation": png_bytes(segmentation[:, :, None]),
                    "mask": png_bytes((segmentation > 0).astype(np.uint8)[:, :, None]),
                    "labels": [int(k) for k in np.flatnonzero(pixels)],
                    "label": int(np.argmax(pixels)),
                    "id": key,
                },
            )
