"""The synthetic taxonomy: class -> family -> genus -> species with Latin-like binomials, each species a
repertoire of call types drawn around its genus' prototype (so congeners sound alike: hard pairs), and
individuals with stable vocal signatures (pitch 2-10 %, tempo 5-15 %, harmonic profile).

The taxonomy depends only on (seed, sizes), never on the shift knobs: changing the sample rate or the SNR
keeps every species, individual and call type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from avexlab.synth.config import TAXON_GROUPS, SynthConfig
from avexlab.synth.dsp import CallType
from avexlab.synth.seeding import rng_for

GROUP_CLASS = {
    "songbirds": ("Aves", "Passeriformes"),
    "owls_doves": ("Aves", "Strigiformes"),
    "frogs": ("Amphibia", "Anura"),
    "insects": ("Insecta", "Orthoptera"),
    "cetaceans": ("Mammalia", "Cetacea"),
    "bats": ("Mammalia", "Chiroptera"),
}

# Call kinds per taxon group (a species' repertoire is drawn from its group's kinds).
GROUP_KINDS = {
    "songbirds": ("fm_syllable", "trill", "harmonic_stack", "song"),
    "owls_doves": ("hoot", "hoot_series", "coo"),
    "frogs": ("pulse_train", "advertisement", "croak"),
    "insects": ("chirp", "trill", "buzz"),
    "cetaceans": ("moan", "whistle", "click_train", "upsweep"),
    "bats": ("echolocation", "social", "echolocation", "social_trill"),
}

_SYL = (
    "ca",
    "lo",
    "mer",
    "phi",
    "ru",
    "tan",
    "vi",
    "xe",
    "dor",
    "ne",
    "sy",
    "lu",
    "thra",
    "pe",
    "mo",
    "gri",
    "zo",
    "cu",
    "la",
    "bri",
    "to",
    "nax",
    "ve",
    "sto",
)
_GEN_END = ("us", "ia", "ops", "ella", "ura", "ix", "odes", "ax")
_EPI_END = ("ensis", "ata", "ii", "icus", "ina", "osa", "alis", "ae")


@dataclass(frozen=True)
class Species:
    """One species: ``name`` (binomial), taxonomy, repertoire, and whether any call reaches above 8 kHz."""

    name: str
    code: str
    group: str
    class_: str
    order: str
    family: str
    genus: str
    call_types: tuple[CallType, ...]
    call_type_names: tuple[str, ...]
    individuals: tuple[str, ...]

    @property
    def above_8k(self) -> bool:
        return any(ct.band_hz()[1] > 8000.0 and max(ct.f_start, ct.f_end) > 7000.0 for ct in self.call_types)


@dataclass(frozen=True)
class Signature:
    """An individual's stable voice: pitch factor, tempo factor, per-partial gains ``[8]``."""

    f_scale: float
    tempo: float
    harm_gain: tuple[float, ...]


def _latin(rng: np.random.Generator, n_syl: int, ends: tuple[str, ...]) -> str:
    return "".join(rng.choice(_SYL, size=n_syl)) + str(rng.choice(ends))


def draw_call(rng: np.random.Generator, kind: str) -> CallType:
    """A random call type of ``kind`` (one of ``GROUP_KINDS``' values): a genus prototype here, a one-off
    voice in the general pool's wild-animal classes."""
    u = rng.uniform
    if kind == "fm_syllable":
        f0 = u(2000, 6500)
        return CallType(kind, u(0.06, 0.3), f0, f0 * u(0.55, 1.6), n_harm=2, harm_decay=0.25)
    if kind == "trill":
        f0 = u(2500, 6500)
        r = u(10, 40)
        return CallType(
            kind, u(0.4, 1.4), f0, f0 * u(0.85, 1.15), r, u(0.1, 0.3), True, 2, 0.2, r, u(0.4, 0.7)
        )
    if kind == "harmonic_stack":
        f0 = u(900, 2800)
        return CallType(kind, u(0.1, 0.4), f0, f0 * u(0.9, 1.1), u(0, 8), 0.02, False, 5, u(0.5, 0.8))
    if kind == "song":
        f0 = u(2500, 6000)
        return CallType(
            kind,
            u(1.0, 2.4),
            f0,
            f0 * u(0.8, 1.2),
            u(3, 8),
            u(0.1, 0.3),
            False,
            2,
            0.3,
            u(4, 10),
            u(0.5, 0.7),
        )
    if kind == "hoot":
        f0 = u(250, 1000)
        return CallType(kind, u(0.2, 0.8), f0, f0 * u(0.85, 1.0), n_harm=5, harm_decay=u(0.4, 0.7))
    if kind == "hoot_series":
        f0 = u(250, 900)
        return CallType(
            kind,
            u(1.0, 2.4),
            f0,
            f0 * u(0.9, 1.05),
            n_harm=4,
            harm_decay=u(0.4, 0.7),
            pulse_rate=u(2, 5),
            pulse_duty=u(0.4, 0.7),
        )
    if kind == "coo":
        f0 = u(300, 700)
        return CallType(
            kind, u(0.4, 1.0), f0, f0 * u(1.05, 1.3), u(1, 3), u(0.05, 0.1), False, 3, u(0.4, 0.6)
        )
    if kind == "pulse_train":
        f0 = u(600, 3500)
        return CallType(
            kind,
            u(0.3, 1.5),
            f0,
            f0 * u(0.95, 1.05),
            n_harm=2,
            harm_decay=0.3,
            pulse_rate=u(20, 120),
            pulse_duty=u(0.2, 0.5),
        )
    if kind == "advertisement":
        f0 = u(800, 3800)
        return CallType(
            kind,
            u(0.08, 0.3),
            f0,
            f0 * u(0.9, 1.1),
            n_harm=2,
            harm_decay=0.4,
            pulse_rate=u(80, 200),
            pulse_duty=0.5,
        )
    if kind == "croak":
        f0 = u(150, 450)
        return CallType(
            kind,
            u(0.2, 0.6),
            f0,
            f0 * u(0.9, 1.0),
            n_harm=8,
            harm_decay=u(0.7, 0.9),
            pulse_rate=u(5, 30),
            pulse_duty=u(0.5, 0.8),
        )
    if kind == "chirp":
        f0 = u(3500, 7000)
        return CallType(kind, u(0.1, 0.35), f0, f0, n_harm=1, pulse_rate=u(20, 50), pulse_duty=0.5)
    if kind == "buzz":
        f0 = u(3000, 6500)
        return CallType(
            kind, u(0.5, 2.0), f0, f0, n_harm=1, pulse_rate=u(150, 400), pulse_duty=0.5, noise=0.3
        )
    if kind == "moan":
        f0 = u(40, 400)
        return CallType(
            kind, u(1.0, 3.0), f0, f0 * u(0.6, 1.4), u(0.2, 1), u(0.05, 0.15), False, 6, u(0.5, 0.8)
        )
    if kind == "whistle":
        f0 = u(4000, 9000)
        return CallType(kind, u(0.2, 1.2), f0, u(5000, 12000), u(1, 5), u(0.05, 0.2), False, 2, 0.3)
    if kind == "click_train":
        return CallType(
            kind, u(0.5, 1.5), 1000.0, 1000.0, noise=1.0, pulse_rate=u(5, 60), pulse_duty=u(0.02, 0.05)
        )
    if kind == "upsweep":
        f0 = u(80, 200)
        return CallType(kind, u(0.5, 1.5), f0, f0 * u(1.5, 3.0), n_harm=4, harm_decay=u(0.5, 0.7))
    if kind == "echolocation":
        f0 = u(10000, 11500)
        r = u(6, 15)
        return CallType(kind, u(0.5, 1.5), f0, f0, r, u(0.12, 0.2), True, 1, 0.3, r, u(0.05, 0.12))
    if kind == "social":
        f0 = u(4000, 6500)
        return CallType(kind, u(0.05, 0.2), f0, f0 * u(0.5, 0.75), n_harm=2, harm_decay=0.3)
    if kind == "social_trill":
        f0 = u(3000, 6000)
        r = u(15, 30)
        return CallType(kind, u(0.2, 0.6), f0, f0 * u(0.8, 1.0), r, 0.15, True, 2, 0.3, r, 0.6)
    raise ValueError(f"unknown call kind {kind!r}")


def _variant(rng: np.random.Generator, ct: CallType) -> CallType:
    """A second call type of the same kind: pitch shifted 3-8 %, duration and rates changed 8-20 %."""
    f = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.03, 0.08)
    d = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.2)
    r = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.08, 0.2)
    return dataclasses.replace(
        ct,
        dur_s=ct.dur_s * d,
        f_start=ct.f_start * f,
        f_end=ct.f_end * f * rng.uniform(0.9, 1.1),
        fm_rate=ct.fm_rate * r,
        pulse_rate=ct.pulse_rate * r,
    )


def _perturb(rng: np.random.Generator, ct: CallType, f_scale: float, tempo: float) -> CallType:
    """A congener's version of a genus call type: shifted pitch/tempo, slightly different rates."""
    jitter = rng.uniform(0.9, 1.1)
    fm_rate = ct.fm_rate * jitter / tempo
    return dataclasses.replace(
        ct,
        dur_s=ct.dur_s * tempo,
        f_start=ct.f_start * f_scale,
        f_end=ct.f_end * f_scale * rng.uniform(0.97, 1.03),
        fm_rate=fm_rate,
        pulse_rate=fm_rate if ct.fm_saw else ct.pulse_rate * jitter / tempo,
        pulse_duty=float(np.clip(ct.pulse_duty * rng.uniform(0.85, 1.15), 0.02, 0.9)),
        harm_decay=float(np.clip(ct.harm_decay * rng.uniform(0.85, 1.15), 0.05, 0.95)),
    )


def build_taxonomy(cfg: SynthConfig, seed: int) -> list[Species]:
    """All species of the world, group by group (``cfg.species_per_group`` each, in
    ``cfg.genera_per_group`` genera). Deterministic in (seed, sizes)."""
    out: list[Species] = []
    used: set[str] = set()
    for group in TAXON_GROUPS:
        rng = rng_for(seed, f"taxonomy/{group}")
        cls, order = GROUP_CLASS[group]
        kinds = GROUP_KINDS[group]
        n_ct = cfg.call_types_per_species
        genus_sizes = np.full(cfg.genera_per_group, cfg.species_per_group // cfg.genera_per_group)
        genus_sizes[: cfg.species_per_group % cfg.genera_per_group] += 1
        families = [_latin(rng, 2, ("idae",)).capitalize() for _ in range(max(1, cfg.genera_per_group // 3))]
        for g, size in enumerate(genus_sizes):
            genus = _latin(rng, 2, _GEN_END).capitalize()
            while genus in used:
                genus = _latin(rng, 3, _GEN_END).capitalize()
            used.add(genus)
            family = families[g % len(families)]
            # the genus prototype: its repertoire (kinds cycled so each species has varied call types)
            # call types come in pairs of one kind (a base and a variant), as in real repertoires where
            # call types grade into each other: telling them apart is possible but not trivial
            offset = int(rng.integers(0, len(kinds)))
            proto: list[CallType] = []
            for k in range(n_ct):
                if k % 2 == 0:
                    proto.append(draw_call(rng, kinds[(offset + k // 2) % len(kinds)]))
                else:
                    proto.append(_variant(rng, proto[-1]))
            for _ in range(int(size)):
                epithet = _latin(rng, 2, _EPI_END)
                while f"{genus} {epithet}" in used:
                    epithet = _latin(rng, 3, _EPI_END)
                name = f"{genus} {epithet}"
                used.add(name)
                sign = rng.choice([-1.0, 1.0])
                f_scale = 1.0 + sign * rng.uniform(0.06, 0.18)
                tempo = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.2)
                cts = tuple(_perturb(rng, ct, f_scale, tempo) for ct in proto)
                code = f"{group[:3]}{len([s for s in out if s.group == group]):02d}"
                names = tuple(f"{ct.kind}-{k}" for k, ct in enumerate(cts))
                inds = tuple(f"{code}-ind{i:02d}" for i in range(cfg.individuals_per_species))
                out.append(Species(name, code, group, cls, order, family, genus, cts, names, inds))
    return out


def signature(seed: int, individual: str) -> Signature:
    """The stable vocal signature of ``individual`` (depends only on seed and its id)."""
    rng = rng_for(seed, f"individual/{individual}")
    f_scale = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.02, 0.10)
    tempo = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.15)
    harm = 10 ** (rng.normal(0.0, 3.0, size=8) / 20)
    return Signature(float(f_scale), float(tempo), tuple(float(h) for h in harm))
