"""Taxonomy on a small GBIF-backbone-format table written into tmp_path."""

from __future__ import annotations

import polars as pl
import pytest

from avexlab.data import LabelSpace
from avexlab.data.taxonomy import Taxonomy, harmonise_manifest, merge_label_spaces
from avexlab.errors import DataNotFoundError, ManifestError

HEADER = [
    "taxonID", "scientificName", "canonicalName", "taxonRank", "taxonomicStatus", "acceptedNameUsageID",
    "kingdom", "phylum", "class", "order", "family", "genus",
]  # fmt: skip
ROWS = [
    ["1", "Parus major Linnaeus, 1758", "Parus major", "species", "accepted", "", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Parus"],
    ["2", "Parus kapustini Portenko, 1954", "Parus kapustini", "species", "synonym", "1", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Parus"],
    ["3", "Cyanistes caeruleus (Linnaeus, 1758)", "Cyanistes caeruleus", "species", "accepted", "", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Cyanistes"],
    ["4", "Parus caeruleus Linnaeus, 1758", "Parus caeruleus", "species", "homotypic synonym", "3", "Animalia", "Chordata", "Aves", "Passeriformes", "Paridae", "Parus"],
    ["5", "Oldus name", "Oldus name", "species", "synonym", "4", "Animalia", "", "", "", "", ""],
    ["6", "Homonymus alpha Smith", "Homonymus alpha", "species", "accepted", "", "Animalia", "", "", "", "", ""],
    ["7", "Homonymus alpha Jones", "Homonymus alpha", "species", "accepted", "", "Plantae", "", "", "", "", ""],
    ["8", "Strix aluco doubtful", "Strix aluco", "species", "doubtful", "", "Animalia", "", "", "", "", ""],
    ["9", "Strix aluco Linnaeus, 1758", "Strix aluco", "species", "synonym", "10", "Animalia", "", "", "", "", ""],
    ["10", "Strix sylvatica Shaw", "Strix sylvatica", "species", "accepted", "", "Animalia", "", "", "", "", ""],
    ["11", "Brokenus chain", "Brokenus chain", "species", "synonym", "999", "Animalia", "", "", "", "", ""],
]  # fmt: skip


@pytest.fixture()
def tax_path(tmp_path):
    p = tmp_path / "Taxon.tsv"
    p.write_text("\n".join("\t".join(r) for r in [HEADER, *ROWS]) + "\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("Parus major", "Parus major"),
        ("  parus   MAJOR ", "Parus major"),
        ("Parus_major", "Parus major"),
        ("Parus kapustini", "Parus major"),  # synonym
        ("Parus kapustini Portenko, 1954", "Parus major"),  # author string
        ("Parus caeruleus (Linnaeus, 1758)", "Cyanistes caeruleus"),  # author in brackets
        ("Oldus name", "Cyanistes caeruleus"),  # chain of two synonyms
        ("Strix aluco", "Strix aluco"),  # doubtful beats synonym
    ],
)
def test_resolve(tax_path, name, accepted):
    assert Taxonomy.from_file(tax_path).resolve(name) == accepted


def test_unresolved_ambiguous_and_broken(tax_path):
    t = Taxonomy.from_file(tax_path)
    assert t.try_resolve("Nonexistus foo") is None
    assert "ambiguous" in (t.lookup("Homonymus alpha").reason or "")
    assert "broken" in (t.lookup("Brokenus chain").reason or "")
    with pytest.raises(ManifestError, match="'Nonexistus foo'.*not in the taxonomy"):
        t.resolve("Nonexistus foo")
    assert t.ranks("Parus caeruleus")["genus"] == "Cyanistes"


def test_csv_and_missing_columns(tmp_path):
    p = tmp_path / "t.csv"
    pl.DataFrame([dict(zip(HEADER, r, strict=True)) for r in ROWS[:2]]).write_csv(p)
    assert Taxonomy.from_file(p).resolve("Parus kapustini") == "Parus major"
    pl.DataFrame({"taxonID": ["1"], "canonicalName": ["x"]}).write_csv(p)
    with pytest.raises(ManifestError, match="without.*scientificName"):
        Taxonomy.from_file(p)
    with pytest.raises(DataNotFoundError, match="Taxon.tsv"):
        Taxonomy.from_file(tmp_path / "nope.tsv")


def test_merge_label_spaces_by_accepted_name(tax_path):
    t = Taxonomy.from_file(tax_path)
    a = LabelSpace.from_labels(["Parus major", "noise"])
    b = LabelSpace.from_labels(["Parus kapustini", "Parus caeruleus"])
    space, mapping = merge_label_spaces(a, b, taxonomy=t)
    assert space.labels == ("Cyanistes caeruleus", "Parus major", "noise")
    assert mapping["Parus kapustini"] == "Parus major" and mapping["noise"] == "noise"
    plain, _ = merge_label_spaces(a, b)
    assert len(plain) == 4


def test_harmonise_manifest_maps_and_reports(tax_path):
    t = Taxonomy.from_file(tax_path)
    df = pl.DataFrame(
        {
            "species": ["Parus kapustini", "Nonexistus foo", None, "Nonexistus foo"],
            "labels": [["Parus kapustini", "Parus major"], ["Nonexistus foo"], ["noise"], []],
        }
    )
    out, report = harmonise_manifest(df, t)
    assert out["species"].to_list() == ["Parus major", "Nonexistus foo", None, "Nonexistus foo"]
    assert out["species_original"].to_list() == df["species"].to_list()
    assert out["labels"].to_list() == [["Parus major"], ["Nonexistus foo"], ["noise"], []]
    assert report.to_dicts() == [{"name": "Nonexistus foo", "reason": "not in the taxonomy", "rows": 2}]
