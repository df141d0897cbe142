"""The four Customer Agent metrics: canonical names, accepted spellings, property keys."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class AgentMetric:
    enum_name: str  # the AgentMetric GraphQL enum value
    name: str  # canonical name, as the Metrics list shows it
    aliases: tuple[str, ...]
    known_properties: tuple[str, ...]


STARTED = AgentMetric(
    "STARTED_CONVERSATION", "Started Conversation with Customer Agent",
    ("Started Customer Agent Conversation",), ("conversation_id", "initial_skill", "channel"))
RESOLVED = AgentMetric(
    "CONVERSATION_RESOLVED", "Conversation with Customer Agent Resolved",
    ("Resolved Customer Agent Conversation",), ("conversation_id", "final_skill", "tags", "channel"))
ESCALATED = AgentMetric(
    "CONVERSATION_ESCALATED", "Conversation with Customer Agent Escalated",
    ("Escalated Customer Agent Conversation",), ("conversation_id", "escalation_reason", "tags", "channel"))
RECOMMENDED = AgentMetric(
    "RECEIVED_PRODUCT_RECOMMENDATION", "Received Product Recommendation from Customer Agent",
    (), ("conversation_id", "products", "channel"))

AGENT_METRICS = (STARTED, RESOLVED, ESCALATED, RECOMMENDED)

def _normal(name: str) -> str:
    return re.sub(r"\s+", " ", name.strip()).lower()


_BY_SPELLING: dict[str, AgentMetric] = {
    _normal(spelling): metric
    for metric in AGENT_METRICS
    for spelling in (metric.name, metric.enum_name, *metric.aliases)
}

# Display spellings ("Conversation ID") and camelCase ("conversationId") of the canonical keys.
_KNOWN_KEYS = {"conversation_id", "initial_skill", "final_skill", "tags", "escalation_reason", "products", "channel"}


def _key_spellings(key: str) -> set[str]:
    words = key.split("_")
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    display = " ".join(words).capitalize().replace(" id", " ID")
    return {camel, display, " ".join(words).title(), display.lower()}


PROPERTY_ALIASES: dict[str, str] = {
    spelling: key for key in _KNOWN_KEYS for spelling in _key_spellings(key) if spelling != key
}


@functools.lru_cache(maxsize=4096)  # a batch names few metrics, thousands of times
def metric_key(name: str) -> str:
    """The key a metric is matched by: case-insensitive, and the same for every spelling of an agent metric."""
    found = _BY_SPELLING.get(_normal(name))
    return _normal(found.name) if found else _normal(name)


@functools.lru_cache(maxsize=4096)
def agent_metric(name: str) -> AgentMetric | None:
    return _BY_SPELLING.get(_normal(name))


AGENT_METRIC_KEYS = {metric_key(agent.name): agent.enum_name for agent in AGENT_METRICS}
"""The agent metrics' keys (as `metrics.name_key` holds them) → their AgentMetric enum names."""


@functools.lru_cache(maxsize=4096)
def canonical_metric_name(name: str) -> str:
    """An agent metric's canonical name for any accepted spelling; other names stay as given."""
    found = agent_metric(name)
    return found.name if found else re.sub(r"\s+", " ", name.strip())


def canonical_property_key(key: str) -> str:
    return PROPERTY_ALIASES.get(key, key)
