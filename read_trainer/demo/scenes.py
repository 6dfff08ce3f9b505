"""Scenes of the synthetic compositional world: vocabulary, sampling, geometry, drawing.

A scene is 1-3 flat-coloured objects on a grey background, each with a shape, a colour
and a size, placed on a jittered 3x3 grid. The grid is what makes spatial relations
unambiguous: two objects are either in the same row/column (their offset on that axis is
at most two jitters, far below the relation margin) or one or more cells apart (far
above it). There is no "almost left of" case for a caption to get wrong.

Colours are distinct within a scene, so a (colour, shape) description always names one
object and every 2+ object scene supports a colour swap (the bag-of-words test the
world exists for). Shapes may repeat ("a red cube left of a blue cube").
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass

from PIL import Image, ImageDraw

# Flat, well separated RGB values. No colour name starts with a vowel: "a"/"an" never
# changes when two colour words are swapped, so swap negatives keep the exact bag of words.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 90, 230),
    "yellow": (240, 210, 40),
    "purple": (150, 60, 200),
    "pink": (250, 140, 200),
    "cyan": (40, 210, 220),
    "white": (245, 245, 245),
}
# Grey (r = g = b) cannot equal any object colour, so objects can be found by exact pixel value.
BACKGROUND: tuple[int, int, int] = (100, 100, 100)

SHAPES: tuple[str, ...] = ("cube", "sphere", "cone", "cylinder", "star", "ring", "cross", "diamond")
SIZES: tuple[str, ...] = ("small", "large")
RELATIONS: tuple[str, ...] = ("left", "right", "above", "below")
OPPOSITE: dict[str, str] = {"left": "right", "right": "left", "above": "below", "below": "above"}

# Colour-shape pairs that never occur in the train (or iid test) split; every image of
# the `novel` split contains at least one. A fixed list, independent of the seed, so
# "novel compositions" means the same thing for every run. 10 of 64 pairs (~16%); each
# colour and each shape is held out at most twice, so every word is still seen in train
# with most of its partners.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset({
    ("red", "star"), ("green", "cube"), ("blue", "cone"), ("yellow", "ring"),
    ("purple", "sphere"), ("pink", "diamond"), ("cyan", "cylinder"), ("white", "cross"),
    ("red", "cylinder"), ("blue", "diamond"),
})
ALL_PAIRS: frozenset[tuple[str, str]] = frozenset((c, s) for c in COLOURS for s in SHAPES)
SEEN_PAIRS: frozenset[tuple[str, str]] = ALL_PAIRS - HELD_OUT_PAIRS

# Object counts: mostly 2-3 so that almost every image supports swap negatives.
N_OBJECTS_WEIGHTS: dict[int, float] = {1: 0.1, 2: 0.45, 3: 0.45}

# Geometry as fractions of the image side. Cells are 1/3 of the side; a large object
# (diameter 0.29) plus two jitters (0.015 each) still fits inside one cell, so objects
# never overlap and every object keeps its exact colour on screen.
GRID = 3
RADIUS = {"small": 0.09, "large": 0.145}
JITTER = 0.015


@dataclass(frozen=True)
class WorldObject:
    """One drawn object. ``x``/``y`` are its pixel centre (y grows downwards), ``radius`` its half-extent."""

    shape: str
    colour: str
    size: str
    x: float
    y: float
    radius: float


@dataclass(frozen=True)
class Scene:
    image_size: int
    objects: tuple[WorldObject, ...]

    def to_json(self) -> str:
        return json.dumps({"image_size": self.image_size, "objects": [asdict(o) for o in self.objects]},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str | dict) -> "Scene":
        data = json.loads(text) if isinstance(text, str) else text
        return cls(int(data["image_size"]), tuple(WorldObject(**o) for o in data["objects"]))

    def pairs(self) -> set[tuple[str, str]]:
        """The (colour, shape) combinations shown in this scene."""
        return {(o.colour, o.shape) for o in self.objects}


def relation_margin(image_size: int) -> float:
    """Minimum centre offset for a relation to hold: half a grid cell.

    Same-row/column offsets are at most ``2 * JITTER * image_size`` (~2 px at 64), one cell
    apart is at least ``image_size / 3 - 2 px``; half a cell sits safely between the two.
    """
    return image_size / GRID / 2


def relation_holds(a: WorldObject, relation: str, b: WorldObject, image_size: int) -> bool:
    """Whether ``a`` is ``relation`` of ``b`` ("left" = a is left of b), judged on centres."""
    m = relation_margin(image_size)
    if relation == "left":
        return b.x - a.x >= m
    if relation == "right":
        return a.x - b.x >= m
    if relation == "above":  # image y grows downwards
        return b.y - a.y >= m
    if relation == "below":
        return a.y - b.y >= m
    raise ValueError(f"unknown relation {relation!r}")


def true_relations(a: WorldObject, b: WorldObject, image_size: int) -> list[str]:
    """Every relation ``r`` with "a r b" true (two for a diagonal pair, e.g. left and above)."""
    return [r for r in RELATIONS if relation_holds(a, r, b, image_size)]


def sample_scene(rng: random.Random, image_size: int, novel: bool) -> Scene:
    """Draw a random scene.

    ``novel=False`` uses only seen colour-shape pairs (train and iid test);
    ``novel=True`` puts one held-out pair in the scene and lets the others be anything.
    """
    n = rng.choices(list(N_OBJECTS_WEIGHTS), weights=list(N_OBJECTS_WEIGHTS.values()))[0]
    pairs: list[tuple[str, str]] = []
    if novel:
        pairs.append(rng.choice(sorted(HELD_OUT_PAIRS)))
    colours = rng.sample([c for c in COLOURS if c not in {p[0] for p in pairs}], n - len(pairs))
    pool = ALL_PAIRS if novel else SEEN_PAIRS
    for colour in colours:
        pairs.append((colour, rng.choice([s for s in SHAPES if (colour, s) in pool])))
    rng.shuffle(pairs)
    cells = rng.sample(range(GRID * GRID), n)
    cell = image_size / GRID
    objects = []
    for (colour, shape), c in zip(pairs, cells):
        size = rng.choice(SIZES)
        x = (c % GRID + 0.5) * cell + rng.uniform(-JITTER, JITTER) * image_size
        y = (c // GRID + 0.5) * cell + rng.uniform(-JITTER, JITTER) * image_size
        objects.append(WorldObject(shape, colour, size, round(x, 2), round(y, 2),
                                   round(RADIUS[size] * image_size, 2)))
    return Scene(image_size, tuple(objects))


def _star(x: float, y: float, r: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        rad = r if k % 2 == 0 else 0.45 * r
        angle = -math.pi / 2 + k * math.pi / 5
        points.append((x + rad * math.cos(angle), y + rad * math.sin(angle)))
    return points


def draw_object(draw: ImageDraw.ImageDraw, o: WorldObject) -> None:
    """Draw one object in a single flat colour (no anti-aliasing), centred on (x, y).

    Every shape is symmetric about its centre or, for the cone, has its centroid there,
    so a pixel centroid recovers the scene coordinates (tests rely on this).
    """
    x, y, r, fill = o.x, o.y, o.radius, COLOURS[o.colour]
    if o.shape == "cube":
        h = 0.85 * r
        draw.rectangle([x - h, y - h, x + h, y + h], fill=fill)
    elif o.shape == "sphere":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
    elif o.shape == "cone":
        # apex at -r, base at +r/2: the triangle's centroid is exactly (x, y)
        draw.polygon([(x, y - r), (x - r, y + 0.5 * r), (x + r, y + 0.5 * r)], fill=fill)
    elif o.shape == "cylinder":
        w = 0.6 * r
        draw.rounded_rectangle([x - w, y - r, x + w, y + r], radius=0.4 * w, fill=fill)
    elif o.shape == "star":
        draw.polygon(_star(x, y, r), fill=fill)
    elif o.shape == "ring":
        draw.ellipse([x - r, y - r, x + r, y + r], fill=fill)
        h = 0.5 * r
        draw.ellipse([x - h, y - h, x + h, y + h], fill=BACKGROUND)
    elif o.shape == "cross":
        t = 0.33 * r
        draw.rectangle([x - r, y - t, x + r, y + t], fill=fill)
        draw.rectangle([x - t, y - r, x + t, y + r], fill=fill)
    elif o.shape == "diamond":
        draw.polygon([(x, y - r), (x + 0.75 * r, y), (x, y + r), (x - 0.75 * r, y)], fill=fill)
    else:
        raise ValueError(f"unknown shape {o.shape!r}")


def render_scene(scene: Scene) -> Image.Image:
    image = Image.new("RGB", (scene.image_size, scene.image_size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for o in scene.objects:
        draw_object(draw, o)
    return image
