"""The README's layout table matches the tree: every module is listed, every listed file
exists, every top-level folder has a row."""

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_rows() -> dict[str, str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)/` \| (.*) \|$", section, flags=re.M)
    return dict(rows)


def named(description: str) -> list[str]:
    return [
        n
        for n in re.findall(r"`([^`]+)`", description)
        if re.search(r"\.(py|json|toml|html|md)$", n)
    ]


def test_every_top_level_folder_has_a_row():
    rows = layout_rows()
    folders = {
        p.name
        for p in ROOT.iterdir()
        if p.is_dir() and not p.name.startswith(".") and any(p.rglob("*.*"))
    }
    folders -= {"results", "build", "dist"} | {p for p in folders if p.endswith(".egg-info")}
    assert folders <= set(rows), folders - set(rows)


def test_every_module_is_listed_and_every_listed_file_exists():
    for folder, description in layout_rows().items():
        if folder == "tests":
            continue
        names = named(description)
        for name in names:
            assert list((ROOT / folder).glob(name)), f"README lists {folder}/{name}: missing"
        for module in sorted((ROOT / folder).glob("*.py")):
            if module.name == "__init__.py":
                continue
            listed = any(fnmatch.fnmatch(module.name, n) for n in names)
            assert listed, f"{folder}/{module.name} is not in the README's layout table"


def test_every_registered_problem_has_a_row_in_the_problems_table():
    from problems.registry import REGISTRY, _load_families

    _load_families()
    text = (ROOT / "README.md").read_text()
    section = text.split("## Problems", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| ([^|]+) \|", section, flags=re.M)
    tabled = {n for cell in first_cells for n in re.findall(r"`([^`]+)`", cell)}
    assert set(REGISTRY) <= tabled, sorted(set(REGISTRY) - tabled)
