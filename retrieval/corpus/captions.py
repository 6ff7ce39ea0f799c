"""Captions and queries from a place's true attributes (:class:`.places.Place`).

Two texts per item, each from templates picked by the item's generator:

* ``caption`` - platform-neutral training description: the object (kind, colour, roof,
  walls, size, surface), its neighbours with a viewpoint-free relation (``next to``,
  ``near``, ``across the road from``, ``across the river from``) and context (trees, main
  road, river). No orientation words.
* ``query`` - platform-specific phrasing (``an overhead image of ...``, ``a drone photo
  taken from above at an angle showing ...``, ``a street-level photo of ...``) of the same
  facts, with directions that hold only for that view: compass directions on north-up
  satellite tiles, left / right / behind / in front of relative to a drone or ground
  camera's heading. Every query holds at least one orientation phrase;
  :func:`smgeo_retrieval.text.remove_orientation_words` turns them into ``next to`` /
  ``nearby``.

No text contains a digit, an item or place identifier, or any number.
"""

from __future__ import annotations

import math

import numpy as np

from smgeo_retrieval.corpus.places import BUILDING_KINDS, Neighbour, Place, Thing, compass

# noun key -> spellings (the first is the canonical one; others are synonyms used by templates)
NOUNS: dict[str, tuple[str, ...]] = {
    "house": ("house", "detached house", "family home"),
    "building": ("building", "low building", "commercial building"),
    "tall building": ("tall building", "apartment block", "multi-storey building"),
    "warehouse": ("warehouse", "industrial hall", "large shed"),
    "barn": ("barn", "farm building"),
    "roundabout": ("roundabout", "traffic circle"),
    "basketball court": ("basketball court",),
    "tennis court": ("tennis court",),
    "football pitch": ("football pitch", "soccer field"),
    "bridge": ("bridge", "road bridge"),
    "stadium": ("stadium", "athletics stadium"),
    "car park": ("car park", "parking lot"),
    "swimming pool": ("swimming pool", "outdoor pool"),
    "river": ("river",),
    "pond": ("pond",),
    "running track": ("running track",),
    "playground": ("playground",),
    "farm field": ("farm field", "field"),
    "woodland": ("patch of woodland", "small wood"),
}
PLATFORM_OPENINGS: dict[str, tuple[str, ...]] = {
    "satellite": ("an overhead image of", "a satellite image of", "a top-down satellite view showing",
                  "an aerial image taken straight down of", "a satellite picture of"),
    "drone": ("a drone photo taken from above at an angle showing", "an oblique drone shot of",
              "a drone image looking down at", "a photo from a drone flying over", "a low-altitude drone view of"),
    "ground": ("a street-level photo of", "a photo taken from the street of", "a ground-level picture of",
               "a picture taken by a pedestrian of", "a street view of"),
}
CAPTION_OPENINGS = ("", "", "a view of ", "an image of ", "there is ")


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(phrase: str) -> str:
    return ("an " if phrase[:1] in "aeiou" else "a ") + phrase


def noun(rng: np.random.Generator, kind: str) -> str:
    return _pick(rng, NOUNS.get(kind, (kind,)))


def object_phrase(rng: np.random.Generator, t: Thing) -> str:
    """Noun phrase (with article) stating every attribute of ``t``."""
    base = _object_base(rng, t)
    return f"{base} and {t.extra}" if t.extra and " with " in base else (f"{base} with {t.extra}" if t.extra else base)


def _object_base(rng: np.random.Generator, t: Thing) -> str:
    n = noun(rng, t.kind)
    size = f"{t.size} " if t.size else ""
    if t.kind in BUILDING_KINDS:
        roof = _article(f"{t.colour} {t.roof} roof" if t.roof != "flat" else f"flat {t.colour} roof")
        walls = f"{t.wall} walls" if t.wall else ""
        form = int(rng.integers(3))
        if form == 0:
            return _article(f"{size}{n} with {roof}" + (f" and {walls}" if walls else ""))
        if form == 1:
            return _article(f"{size}{t.wall + ' ' if t.wall else ''}{n} with {roof}")
        return _article(f"{size}{n}") + (f" with {walls} and {roof}" if walls else f" with {roof}")
    colour = f"{t.colour} " if t.colour else ""
    if t.kind == "tennis court":
        extra = f" with {_article(t.detail)} surround" if t.detail else ""
        return _article(f"{size}{colour}{n}{extra}")
    if t.kind == "football pitch":
        return _article(f"{size}{n}") + (" of " if rng.random() < 0.5 else " with ") + \
            ("green artificial turf" if t.detail == "artificial turf" else "green grass")
    if t.kind == "stadium":  # the stands are its extra
        return _article(f"{n} with {_article(t.colour or 'red')} running track")
    if t.kind == "swimming pool":
        return _article(f"{size}{n} with {t.colour} water")
    if t.kind == "car park":
        return _article(f"{size}{colour}{n}") if rng.random() < 0.5 else _article(f"{size}{n} with {t.colour} asphalt")
    if t.kind == "roundabout":
        return _article(f"{size}{n} with {_article(t.colour)} central island")
    if t.kind == "bridge":
        return _article(f"{size}{colour}{n}") + (f" with {t.detail} sides" if t.detail else "")
    if t.kind == "river":
        return "a river"
    return _article(f"{size}{colour}{n}")


def neighbour_phrase(rng: np.random.Generator, t: Thing) -> str:
    """Short noun phrase of a neighbour: kind and colour (roof colour for buildings)."""
    n = noun(rng, t.kind)
    if t.kind == "river":
        return "a river"
    if t.kind in BUILDING_KINDS and t.colour:
        return _article(f"{n} with {_article(t.colour)} roof") if rng.random() < 0.5 else _article(f"{t.colour}-roofed {n}")
    return _article(f"{t.colour} {n}" if t.colour else n)


def _context(rng: np.random.Generator, place: Place) -> list[str]:
    out = []
    if place.over_river:
        out.append(_pick(rng, ("over a river", "crossing a river", "spanning a river")))
    if place.main_road:
        out.append(_pick(rng, ("by a main road", "along a busy main road", "beside a wide road")))
    if place.trees:
        out.append(_pick(rng, ("with trees around it", "among trees", "surrounded by trees")))
    return out


def caption(place: Place, rng: np.random.Generator) -> str:
    """Platform-neutral description (one of several templates)."""
    obj = object_phrase(rng, place.thing)
    ctx = _context(rng, place)
    nbs = [f"{n.relation} {neighbour_phrase(rng, n.thing)}" for n in place.neighbours]
    form = int(rng.integers(3))
    head = _pick(rng, CAPTION_OPENINGS) + obj
    if ctx:
        head += " " + " and ".join(ctx) if form != 1 else ", " + ", ".join(ctx)
    if not nbs:
        return head + (", standing on its own." if form == 2 else ".")
    if form == 0:
        return f"{head}, {' and '.join(nbs)}."
    if form == 1:
        return f"{head}. It is {' and '.join(nbs)}."
    return f"{head}; it stands {nbs[0]}" + (f", and {nbs[1]}." if len(nbs) > 1 else ".")


def relative_side(place: Place, nb: Thing, heading: float) -> str:
    """Where ``nb`` is seen from a camera looking along compass ``heading`` (degrees):
    ``left``, ``right``, ``behind`` (farther than the place) or ``front`` (nearer)."""
    dx, dy = nb.centre[0] - place.centre[0], nb.centre[1] - place.centre[1]
    psi = math.radians(heading)
    right = dx * math.cos(psi) + dy * math.sin(psi)  # camera right = (cos, sin) in scene x east, y south
    ahead = dx * math.sin(psi) - dy * math.cos(psi)
    if abs(right) >= 0.8 * abs(ahead):
        return "right" if right > 0 else "left"
    return "behind" if ahead > 0 else "front"


def _side_phrase(rng: np.random.Generator, side: str) -> str:
    if side in ("left", "right"):
        return _pick(rng, (f"on the {side}", f"to the {side} of it", f"on its {side}", f"on the {side}-hand side"))
    if side == "behind":
        return _pick(rng, ("behind it", "behind it", "further back behind it"))
    return _pick(rng, ("in front of it", "just in front of it"))


def _direction(rng: np.random.Generator, place: Place, nb: Neighbour, platform: str, heading: float) -> str:
    if platform == "satellite":
        word = compass(nb.thing.centre[0] - place.centre[0], nb.thing.centre[1] - place.centre[1])
        return _pick(rng, (f"to the {word}", f"to the {word} of it", f"on its {word} side", f"on the {word} side"))
    return _side_phrase(rng, relative_side(place, nb.thing, heading))


def _across(relation: str) -> str:
    return relation.removesuffix(" from") + " " if relation.startswith("across") else ""


def query(place: Place, platform: str, rng: np.random.Generator, heading: float = 0.0) -> str:
    """Query phrased for ``platform``; ``heading``: the camera's compass heading (degrees;
    drone and ground), which sets left / right / behind / in front."""
    opening = _pick(rng, PLATFORM_OPENINGS[platform])
    obj = object_phrase(rng, place.thing)
    ctx = _context(rng, place)
    clauses = []
    for nb in place.neighbours:
        phrase = neighbour_phrase(rng, nb.thing)
        where = _direction(rng, place, nb, platform, heading)
        if rng.random() < 0.5:
            clauses.append(f"with {phrase} {_across(nb.relation)}{where}")
        else:
            clauses.append(f"{'and ' if clauses else ''}{where} {'is' if rng.random() < 0.5 else 'there is'} "
                           f"{phrase}{' ' + _across(nb.relation).strip() if _across(nb.relation) else ''}")
    text = f"{opening} {obj}"
    if ctx:
        text += " " + " and ".join(ctx)
    if clauses:
        text += ", " + ", ".join(clauses)
    if not clauses:  # always one orientation phrase
        if platform == "satellite":
            text += _pick(rng, (", north is up", ", with north up"))
        else:
            word = compass(math.sin(math.radians(heading)), -math.cos(math.radians(heading)))
            text += _pick(rng, (f", looking {word}", f", facing {word}"))
    return text + "."
