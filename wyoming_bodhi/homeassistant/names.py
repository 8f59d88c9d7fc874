"""Home Assistant's own names — exposed entities, areas, floors — as hotwords: the policy.

A recogniser stumbles on proper nouns, and a home is full of them: "Rasoi ki batti",
"Bedroom fan", "Ground floor". Assist can only act on what the user exposed to it, so exactly
those names are worth biasing recognition towards.

Three modules:

* here, :func:`collect_names` is pure: raw WebSocket command results in, ordered
  de-duplicated names out. All the policy (what counts as exposed, order, de-duplication)
  lives here;
* :mod:`.websocket_api` asks Home Assistant's WebSocket API for those results, once;
* :mod:`.hass_names` (:class:`~.hass_names.HassNames`) does that in the background and keeps
  the last good answer, so the request path only ever reads a tuple and never waits on Home
  Assistant.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_LOGGER = logging.getLogger(__name__)

# Assist's id in ``homeassistant/expose_entity/list`` (the cloud assistants have their own).
ASSISTANT = "conversation"


class HassDataError(ValueError):
    """A command answered with a shape we cannot read."""


@dataclass(frozen=True)
class _RegistryEntry:
    hidden: bool
    categorised: bool
    aliases: list[str]


def _clean(value: object) -> str | None:
    """One name, whitespace collapsed, or None when there is nothing to say."""
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _aliases(value: object) -> list[str]:
    # Aliases are a set in Home Assistant, so the JSON list comes in any order; sorting keeps
    # the output identical from fetch to fetch. Newer versions put a null in the list to stand
    # for "the entity's own name", which the friendly name already covers.
    if not isinstance(value, list):
        return []
    return sorted((name for item in value if (name := _clean(item))), key=_sort_key)


def _sort_key(name: str) -> tuple[str, str]:
    return name.casefold(), name


def _records(value: object, what: str) -> list[Mapping[str, Any]]:
    """The dicts in a list result; a single odd item is skipped, a wrong shape is an error."""
    if not isinstance(value, list):
        raise HassDataError(f"{what} answered with {type(value).__name__}, not a list")
    return [item for item in value if isinstance(item, Mapping)]


def _named(records: Iterable[Mapping[str, Any]]) -> Iterable[str]:
    """Area or floor names, each followed by its aliases."""
    for record in records:
        if name := _clean(record.get("name")):
            yield name
        yield from _aliases(record.get("aliases"))


def exposed_entity_ids(exposed: object) -> set[str] | None:
    if exposed is None:
        return None
    entities = exposed.get("exposed_entities") if isinstance(exposed, Mapping) else None
    if not isinstance(entities, Mapping):
        raise HassDataError("homeassistant/expose_entity/list has no exposed_entities mapping")
    # Only an explicit True counts: an entity whose Assist setting is missing or False is
    # something the user chose not to (or never meant to) talk about.
    return {
        entity_id
        for entity_id, settings in entities.items()
        if isinstance(entity_id, str) and isinstance(settings, Mapping)
        if settings.get(ASSISTANT) is True
    }


def _registry(registry: object) -> dict[str, _RegistryEntry]:
    """Entity registry entries by entity id, from whichever registry command answered.

    ``config/entity_registry/get_entries`` gives ``{entity_id: entry or null}`` and is the only
    one carrying aliases; ``config/entity_registry/list`` gives a list of entries;
    ``list_for_display`` gives ``{"entities": [...]}`` with one- and two-letter keys.
    """
    items: list[Mapping[str, Any]]
    if registry is None:
        return {}
    if isinstance(registry, Mapping) and isinstance(registry.get("entities"), list):
        items = _records(registry["entities"], "config/entity_registry/list_for_display")
    elif isinstance(registry, Mapping):
        items = [
            {"entity_id": entity_id, **entry}
            for entity_id, entry in registry.items()
            if isinstance(entry, Mapping)
        ]
    else:
        items = _records(registry, "config/entity_registry/list")
    entries: dict[str, _RegistryEntry] = {}
    for item in items:
        entity_id = item.get("entity_id", item.get("ei"))
        if not isinstance(entity_id, str):
            continue
        entries[entity_id] = _RegistryEntry(
            hidden=bool(item.get("hidden_by") or item.get("hb")),
            # list_for_display numbers the categories from 0 ("config"), hence `is not None`.
            categorised=item.get("entity_category", item.get("ec")) is not None,
            aliases=_aliases(item.get("aliases")),
        )
    return entries


def _entity_names(
    states: object, exposed: set[str] | None, registry: dict[str, _RegistryEntry]
) -> Iterable[str]:
    groups: list[list[str]] = []
    for state in _records(states, "get_states"):
        entity_id = state.get("entity_id")
        if not isinstance(entity_id, str) or "." not in entity_id:
            continue
        attributes = state.get("attributes")
        if not isinstance(attributes, Mapping):
            attributes = {}
        entry = registry.get(entity_id)
        if exposed is None:
            # Home Assistant before 2023.5 had no per-assistant exposure and Assist understood
            # every entity, so mirror that, less what Home Assistant itself keeps out of sight:
            # hidden entities (registry, or the old `hidden` attribute) and config/diagnostic
            # ones, which are not things anyone asks to switch on.
            if attributes.get("hidden") is True:
                continue
            if entry is not None and (entry.hidden or entry.categorised):
                continue
        elif entity_id not in exposed:
            continue
        # This is how Home Assistant names a state (State.name), and so what Assist matches.
        name = _clean(attributes.get("friendly_name")) or _clean(
            entity_id.split(".", 1)[1].replace("_", " ")
        )
        group = ([name] if name else []) + (entry.aliases if entry else [])
        if group:
            groups.append(group)
    # get_states comes in the order entities were set up, which changes with every restart of
    # Home Assistant; sorting keeps the list, and whatever a cap cuts off, the same.
    groups.sort(key=lambda group: _sort_key(group[0]))
    for group in groups:
        yield from group


def collect_names(
    *,
    exposed: object,
    states: object,
    areas: object,
    floors: object = None,
    registry: object = None,
    limit: int | None = None,
) -> list[str]:
    """The names worth biasing recognition towards, most valuable first.

    Arguments are the ``result`` of each WebSocket command, as parsed JSON:

    * ``exposed`` — ``homeassistant/expose_entity/list``. ``None`` means this Home Assistant
      predates per-assistant exposure (before 2023.5), and every entity that is neither hidden
      nor a config/diagnostic one counts. To use no entities at all, pass
      ``{"exposed_entities": {}}``.
    * ``states`` — ``get_states``: friendly names.
    * ``areas`` — ``config/area_registry/list``; ``floors`` — ``config/floor_registry/list``
      (``None`` before Home Assistant 2024.4 had floors).
    * ``registry`` — ``config/entity_registry/get_entries`` (aliases), ``list`` or
      ``list_for_display`` (hidden, category), or ``None``.

    Area then floor names and their aliases come first, in the registry's order: they are
    few, short and in almost every command. Then entities, sorted by name, each followed by its
    aliases. Whitespace is collapsed, empty names dropped, and a name that differs from an
    earlier one only in case is dropped too (the first spelling wins). ``limit`` keeps the
    first so many; ``None`` keeps all.

    Raises :class:`HassDataError` when a result has the wrong shape as a whole; single odd
    records inside one are skipped.
    """
    exposed_ids = exposed_entity_ids(exposed)
    entries = _registry(registry)
    area_names = _named(_records(areas, "config/area_registry/list"))
    floor_names = _named(_records(floors, "config/floor_registry/list") if floors else [])
    entity_names = _entity_names(states, exposed_ids, entries)

    names: list[str] = []
    seen: set[str] = set()
    if limit is not None and limit <= 0:
        return names
    for name in (*area_names, *floor_names, *entity_names):
        key = name.casefold()
        if key in seen:
            continue
        seen.add(key)
        names.append(name)
        if limit is not None and len(names) >= limit:
            break
    return names


__all__ = ["ASSISTANT", "HassDataError", "collect_names", "exposed_entity_ids"]
