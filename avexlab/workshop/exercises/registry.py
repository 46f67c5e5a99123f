"""Every exercise of the course by id, and the sections that ask them."""

from __future__ import annotations

from avexlab.errors import ConfigError

from . import s1_hearing, s2_methods, s3_grid, s4_paradigms, s5_ood, s6_repertoire
from .base import Exercise

__all__ = ["EXERCISES", "SECTIONS", "section_exercises"]

SECTIONS: dict[int, str] = {
    1: "What an encoder hears",
    2: "Probing, retrieval, clustering",
    3: "Architecture and data mix",
    4: "SSL vs SL",
    5: "Out of distribution",
    6: "Call types and individuals",
}


def _registry() -> dict[str, Exercise]:
    out: dict[str, Exercise] = {}
    for module in (s1_hearing, s2_methods, s3_grid, s4_paradigms, s5_ood, s6_repertoire):
        for ex in module.EXERCISES:
            if ex.id in out or not ex.id.startswith(f"s{ex.section}-"):
                raise ConfigError(f"exercise id {ex.id!r}: expected unique ids starting with s{ex.section}-")
            out[ex.id] = ex
    return out


EXERCISES: dict[str, Exercise] = _registry()


def section_exercises(section: int) -> list[Exercise]:
    """The exercises of one section, in the order the notebook asks them."""
    return [ex for ex in EXERCISES.values() if ex.section == section]
