"""Plug-ins found through entry points (scenarios, theories): every one that loads, and every one that does not
with its one-line reason, so a broken third-party plug-in never takes the others down with it."""
from __future__ import annotations

from importlib.metadata import entry_points

from .errors import ParameterError

__all__ = ["load_group", "pick"]


def load_group(group: str, kind: type) -> tuple[dict, dict[str, str]]:
    """(objects by name, broken plug-ins by name with the reason) of an entry-point group; an entry point that
    fails to import, or is not a `kind`, is broken."""
    found, broken = {}, {}
    for ep in entry_points(group=group):
        try:
            obj = ep.load()
            if not isinstance(obj, kind):
                raise TypeError(f"{ep.value} is a {type(obj).__name__}, not an sgdsim {kind.__name__}")
            found[ep.name] = obj
        except Exception as e:  # noqa: BLE001 -- a plug-in that fails to import is reported, not raised
            broken[ep.name] = " ".join(f"{type(e).__name__}: {e}".split())
    return dict(sorted(found.items())), dict(sorted(broken.items()))


def pick(what: str, name: str, found: dict, broken: dict[str, str]):
    """The plug-in `name` of a group loaded by `load_group`; a one-line ParameterError says it is broken (and
    why) or lists the valid names. `what` names the kind in the message ("scenario", "theory")."""
    if name in broken:
        raise ParameterError(f"{what} {name!r} is installed but fails to load ({broken[name]})")
    if name not in found:
        raise ParameterError(f"unknown {what} {name!r} (valid: {', '.join(found) or 'none installed'})")
    return found[name]
