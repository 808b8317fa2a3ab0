"""Ids, hosts, passwords and keys in the real service's shapes.

Deterministic mode draws everything from one seeded ``random.Random``; otherwise ids come from a
randomly seeded generator and secrets (passwords, API keys) from ``secrets``.
"""

from __future__ import annotations

import random
import secrets
import string
import uuid
from collections.abc import Callable, Container

#: Every id of the API (project, branch, endpoint, organization) matches this.
ID_PATTERN = r"^[a-z0-9-]{1,60}$"

ADJECTIVES = [
    "old",
    "aged",
    "ancient",
    "autumn",
    "billowing",
    "bitter",
    "black",
    "blue",
    "bold",
    "broad",
    "broken",
    "calm",
    "cold",
    "cool",
    "crimson",
    "curly",
    "damp",
    "dark",
    "dawn",
    "delicate",
    "divine",
    "dry",
    "empty",
    "falling",
    "fancy",
    "flat",
    "floral",
    "fragrant",
    "frosty",
    "gentle",
    "green",
    "hidden",
    "holy",
    "icy",
    "jolly",
    "late",
    "lingering",
    "little",
    "lively",
    "long",
    "lucky",
    "misty",
    "morning",
    "muddy",
    "mute",
    "nameless",
    "noisy",
    "odd",
    "patient",
    "plain",
    "polished",
    "proud",
    "purple",
    "quiet",
    "rapid",
    "raspy",
    "red",
    "restless",
    "rough",
    "round",
    "royal",
    "shiny",
    "shrill",
    "shy",
    "silent",
    "small",
    "snowy",
    "soft",
    "solitary",
    "sparkling",
    "spring",
    "square",
    "steep",
    "still",
    "summer",
    "super",
    "sweet",
    "throbbing",
    "tight",
    "tiny",
    "twilight",
    "wandering",
    "weathered",
    "white",
    "wild",
    "winter",
    "wispy",
    "withered",
    "yellow",
    "young",
]
NOUNS = [
    "violet",
    "sea",
    "breeze",
    "art",
    "band",
    "bar",
    "base",
    "bird",
    "block",
    "boat",
    "bonus",
    "bread",
    "brook",
    "bush",
    "butterfly",
    "cake",
    "cell",
    "cherry",
    "cloud",
    "credit",
    "darkness",
    "dawn",
    "dew",
    "disk",
    "dream",
    "dust",
    "feather",
    "field",
    "fire",
    "firefly",
    "flower",
    "fog",
    "forest",
    "frog",
    "frost",
    "glade",
    "glitter",
    "grass",
    "hall",
    "hat",
    "haze",
    "heart",
    "hill",
    "king",
    "lab",
    "lake",
    "leaf",
    "limit",
    "math",
    "meadow",
    "mode",
    "moon",
    "morning",
    "mountain",
    "mouse",
    "mud",
    "night",
    "paper",
    "pine",
    "poetry",
    "pond",
    "queen",
    "rain",
    "recipe",
    "resonance",
    "rice",
    "river",
    "salad",
    "scene",
    "shadow",
    "shape",
    "silence",
    "sky",
    "smoke",
    "snow",
    "snowflake",
    "sound",
    "star",
    "sun",
    "sunset",
    "surf",
    "term",
    "thunder",
    "tooth",
    "tree",
    "truth",
    "union",
    "unit",
    "violet",
    "voice",
    "water",
    "waterfall",
    "wave",
    "wildflower",
    "wind",
    "wood",
]
_LOWER_ALNUM = string.ascii_lowercase + string.digits
_ALNUM = string.ascii_letters + string.digits


class IdGenerator:
    def __init__(self, deterministic: bool, seed: int) -> None:
        self.deterministic = deterministic
        self._rng = random.Random(seed if deterministic else secrets.randbits(64))
        self._next_int = 1

    def _words(self) -> str:
        return f"{self._rng.choice(ADJECTIVES)}-{self._rng.choice(NOUNS)}"

    def _suffix(self) -> str:
        # Observed suffixes look like ``a5e59rrb``: a region-ish letter+digit, then 6 random chars.
        return "a5" + "".join(self._rng.choice(_LOWER_ALNUM) for _ in range(6))

    def project_id(self) -> str:
        return f"{self._words()}-{self._rng.randint(10_000_000, 99_999_999)}"

    def branch_id(self) -> str:
        return f"br-{self._words()}-{self._suffix()}"

    def endpoint_id(self) -> str:
        return f"ep-{self._words()}-{self._suffix()}"

    def snapshot_id(self) -> str:
        return f"snap-{self._words()}-{self._suffix()}"

    def operation_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def user_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def integer(self) -> int:
        """Database and API key ids: integers, increasing."""
        value = self._next_int
        self._next_int += 1
        return value

    def _secret(self, alphabet: str, length: int) -> str:
        if self.deterministic:
            return "".join(self._rng.choice(alphabet) for _ in range(length))
        return "".join(secrets.choice(alphabet) for _ in range(length))

    def password(self) -> str:
        return "npg_" + self._secret(_ALNUM, 12)

    def api_key(self) -> str:
        return self._secret(_LOWER_ALNUM, 64)


def region_host(region_id: str) -> str:
    """``aws-us-east-2`` -> ``us-east-2.aws.neon.tech`` (the project's proxy host)."""
    platform, _, region = region_id.partition("-")
    return f"{region}.{platform}.neon.tech"


def endpoint_host(endpoint_id: str, region_id: str, *, pooled: bool = False) -> str:
    suffix = "-pooler" if pooled else ""
    return f"{endpoint_id}{suffix}.{region_host(region_id)}"


def unique(make: Callable[[], str], taken: Container[str]) -> str:
    """A fresh id from ``make`` that ``taken`` does not hold (ids of deleted resources stay taken)."""
    while True:
        candidate: str = make()
        if candidate not in taken:
            return candidate
