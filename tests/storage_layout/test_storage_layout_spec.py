"""AreaSpec and Layout declarations: unambiguous parsing, custom layouts, and stdlib-only imports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import storage_layout
from storage_layout import DEFAULT_LAYOUT, Area, AreaSpec, InvalidKey, InvalidSpec, Layout, Location


def test_field_names_are_derived_from_the_template_in_order() -> None:
    spec = AreaSpec(Area.INFERENCE, "inference/{twin_id}/{model}/{run}", "serving/{twin_id}/{model}/{run}")
    assert spec.field_names == ("twin_id", "model", "run")
    assert AreaSpec(Area.COMMON, "common/{model}", "warping-common/{model}").field_names == ("model",)
    assert AreaSpec(Area.COMMON, "common", "warping-common").field_names == ()


def test_the_default_layout_declares_the_seed_tree() -> None:
    templates = {spec.area: (spec.key_template, spec.mirror_template) for spec in DEFAULT_LAYOUT.specs}
    assert templates == {
        Area.RAW: ("raw/{twin_id}", "warping-data/{twin_id}"),
        Area.PROCESSED: (
            "processed/{twin_id}/preprocessed/{model}",
            "warping-processed/{twin_id}/processed/{model}",
        ),
        Area.INFERENCE: ("inference/{twin_id}/{model}/{run}", "warping-serving/{twin_id}/{model}/{run}"),
        Area.COMMON: ("common/{model}", "warping-common/{model}"),
        Area.SCRATCH: ("scratch/{job}/{attempt}", "warping-scratch/{job}/{attempt}"),
        Area.DATASETS: ("datasets/{model}/{name}", "warping-datasets/{model}/{name}"),
    }
    assert [area.value for area in Area] == ["raw", "processed", "inference", "common", "scratch", "datasets"]


def test_a_dataset_file_has_a_key_and_a_mirror_path_that_parse_back(tmp_path: Path) -> None:
    location = Location.dataset("bilayer", "vox_v1", "imgs/train/alice/abc/00001/0.jpg")
    key = DEFAULT_LAYOUT.key(location)
    assert key == "datasets/bilayer/vox_v1/imgs/train/alice/abc/00001/0.jpg"
    assert DEFAULT_LAYOUT.parse_key(key) == location
    mirror = DEFAULT_LAYOUT.mirror_path(location, tmp_path)
    assert mirror == tmp_path / "warping-datasets/bilayer/vox_v1/imgs/train/alice/abc/00001/0.jpg"
    assert DEFAULT_LAYOUT.parse_mirror_path(mirror, tmp_path) == location
    assert DEFAULT_LAYOUT.prefix(Area.DATASETS, model="bilayer", name="vox_v1") == "datasets/bilayer/vox_v1/"
    assert location.twin_id is None
    assert "datasets/" not in " ".join(DEFAULT_LAYOUT.twin_prefixes("alice"))  # deleting a twin keeps datasets
    with pytest.raises(InvalidKey, match="name '..' is invalid"):
        DEFAULT_LAYOUT.parse_key("datasets/facesync/../x")
    with pytest.raises(storage_layout.LayoutError, match="name"):
        Location.dataset("bilayer", "../escape", "a.npz")


@pytest.mark.parametrize(
    ("key_template", "mirror_template", "message"),
    [
        ("", "m/{model}", "template '' is invalid"),
        ("{model}/common", "m/{model}", "must start with a literal name"),
        ("common/{model}", "{model}", "must start with a literal name"),
        ("common/x{model}", "m/{model}", "a placeholder must be a whole segment"),
        ("common/{Model}", "m/{Model}", "a placeholder must be a whole segment"),
        ("common//{model}", "m/{model}", "it is empty"),
        ("common/../{model}", "m/{model}", "it starts with '.'"),
        ("/common/{model}", "m/{model}", "it is empty"),
        ("common/{model}/{model}", "m/{model}/{model}", "holds a placeholder more than once"),
        ("common/{model}", "m/{run}", "must hold the same placeholders in the same order"),
        ("c/{model}/{run}", "m/{run}/{model}", "must hold the same placeholders in the same order"),
        ("c/{model}/{twin_id}", "m/{model}/{twin_id}", "{twin_id} must be the first placeholder"),
    ],
)
def test_malformed_specs_are_rejected(key_template: str, mirror_template: str, message: str) -> None:
    with pytest.raises(InvalidSpec, match=re.escape(message)):
        AreaSpec(Area.COMMON, key_template, mirror_template)


def test_an_area_may_be_declared_only_once() -> None:
    spec = AreaSpec(Area.RAW, "raw/{twin_id}", "warping-data/{twin_id}")
    with pytest.raises(InvalidSpec, match="area 'raw' is declared twice"):
        Layout([spec, spec])


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("raw/{twin_id}", "a/{twin_id}"), ("raw/{twin_id}/x", "b/{twin_id}")),
        (("raw/{twin_id}", "a/{twin_id}"), ("raw/{job}", "b/{job}")),
        (("raw/{twin_id}", "same/{twin_id}"), ("other/{model}", "same/{model}")),
    ],
)
def test_templates_that_could_claim_the_same_key_or_path_are_rejected(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    with pytest.raises(InvalidSpec, match="could both match one"):
        Layout([AreaSpec(Area.RAW, *first), AreaSpec(Area.SCRATCH, *second)])


def test_templates_differing_in_a_later_literal_are_distinct() -> None:
    layout = Layout(
        [
            AreaSpec(Area.RAW, "t/{twin_id}/in", "m/{twin_id}/in"),
            AreaSpec(Area.PROCESSED, "t/{twin_id}/out", "m/{twin_id}/out"),
        ]
    )
    assert layout.parse_key("t/a/out/x").area is Area.PROCESSED
    assert layout.parse_key("t/a/in/x").area is Area.RAW
    with pytest.raises(InvalidKey, match="has too few parts"):
        layout.parse_key("t/a")


def test_an_area_missing_from_a_layout_is_reported() -> None:
    layout = Layout([AreaSpec(Area.RAW, "raw/{twin_id}", "warping-data/{twin_id}")])
    with pytest.raises(InvalidSpec, match="is not in this layout"):
        layout.key(Location.common("th", "a.pth"))


def test_layouts_compare_by_their_specs() -> None:
    assert Layout(DEFAULT_LAYOUT.specs) == DEFAULT_LAYOUT
    assert hash(Layout(DEFAULT_LAYOUT.specs)) == hash(DEFAULT_LAYOUT)
    assert Layout(DEFAULT_LAYOUT.specs[:2]) != DEFAULT_LAYOUT


def test_the_package_imports_only_the_standard_library() -> None:
    package_root = Path(storage_layout.__file__).resolve().parents[1]
    program = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(package_root)!r})\n"
        "before = set(sys.modules)\n"
        "import storage_layout\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-I", "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = {name.partition(".")[0] for name in json.loads(completed.stdout)}
    foreign = loaded - set(sys.stdlib_module_names) - {"storage_layout"}
    assert foreign == set(), f"storage_layout imports non-stdlib modules: {sorted(foreign)}"
