"""How often a property test's probes ask a question whose answer can be wrong.

A probe whose audience is nobody or everybody passes for almost any compiler bug; `Power` counts, per
kind of node, the share of drawn nodes whose audience splits the profiles, and the tests print it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tests.reference import World

# On the CI profile, at least this share of probes, and of each kind's nodes, must split the profiles.
PROBE_SHARE, KIND_SHARE = 0.5, 0.2
# Kinds drawn fewer times than this are reported but not held to KIND_SHARE.
MIN_DRAWS = 8
# The name under which a test records its power report (`record_property`): tests/conftest.py prints them.
POWER_PROPERTY = "probe power"


def kinds_of(node: Mapping[str, Any]) -> list[str]:
    """The kinds a node counts towards: its own, and for did/didNot the features of its condition."""
    ((key, value),) = node.items()
    if key == "profile":
        return ["profile createdAt" if value["property"] == "createdAt" else "profile"]
    if key not in ("did", "didNot"):
        return [key]
    kinds = [key]
    if value.get("where"):
        kinds.append("where")
    if value.get("count"):
        ((_, n),) = value["count"].items()
        kinds.append("count zero" if n == 0 else "count")
    if value.get("within"):
        ((window, _),) = value["within"].items()
        kinds.append(f"within {window}")
    if value.get("having"):
        kinds.append("having")
    for follow_up in ("followedBy", "notFollowedBy"):
        if value.get(follow_up):
            kinds.append(follow_up)
            if value[follow_up].get("sameProperties"):
                kinds.append("sameProperties")
    return kinds


class Power:
    def __init__(self, title: str) -> None:
        self.title = title
        self.draws: Counter[str] = Counter()
        self.splits: Counter[str] = Counter()

    def record(self, world: World, probe: Mapping[str, Any], as_of: datetime) -> float:
        """Count the probe and each of its nodes; returns how evenly the probe splits (0 none, 0.5 halves)."""
        everyone = len(world.profiles)
        evenness = 0.0
        for depth, node in enumerate(world.nodes(probe)):
            members = len(world.members(node, as_of))
            split = 0 < members < everyone
            kinds = kinds_of(node) if depth else ["probe", *kinds_of(node)]
            for kind in kinds:
                self.draws[kind] += 1
                self.splits[kind] += split
            if depth == 0:
                evenness = min(members, everyone - members) / everyone
        return evenness

    def share(self, kind: str) -> float:
        return self.splits[kind] / self.draws[kind] if self.draws[kind] else 0.0

    def report(self) -> str:
        rows = [f"{kind:<20} {self.splits[kind]:>5} of {self.draws[kind]:>5} split ({self.share(kind):.0%})"
                for kind in sorted(self.draws, key=lambda k: (k != "probe", k))]
        return "\n".join([f"power of {self.title}:", *rows])

    def weak_kinds(self) -> list[str]:
        """Kinds below their share: the probe below PROBE_SHARE, a node kind below KIND_SHARE."""
        weak = [] if self.share("probe") >= PROBE_SHARE else ["probe"]
        return weak + [kind for kind in self.draws
                       if kind != "probe" and self.draws[kind] >= MIN_DRAWS and self.share(kind) < KIND_SHARE]
