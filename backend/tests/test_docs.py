"""The documentation names what exists: every setting, every script, every file a checklist
tells a developer to touch."""

import re
from pathlib import Path

from app.core.config import Settings
from bench.servers import PROJECT_ROOT, SCRIPTS

README = PROJECT_ROOT / "README.md"
DOCS = PROJECT_ROOT / "docs"


def table_names(path: Path) -> list[str]:
    """The backquoted names in the first column of a Markdown table."""
    return re.findall(r"^\| `([A-Z0-9_]+)` \|", path.read_text(), flags=re.MULTILINE)


def test_settings_table_lists_every_setting_once() -> None:
    names = table_names(DOCS / "settings.md")
    assert len(names) == len(set(names)), names
    assert set(names) == set(Settings.model_fields), (
        f"missing: {sorted(set(Settings.model_fields) - set(names))}, "
        f"unknown: {sorted(set(names) - set(Settings.model_fields))}"
    )


def test_readme_layout_names_every_script_and_top_level_folder() -> None:
    layout = README.read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    scripts = sorted(path.name for path in SCRIPTS.glob("*.sh"))
    missing = [name for name in scripts if name not in layout]
    assert not missing, f"scripts missing from the README's Layout: {missing}"
    folders = sorted(
        path.name
        for path in PROJECT_ROOT.iterdir()
        if path.is_dir() and not path.name.startswith(".") and path.name != "__pycache__"
    )
    missing = [name for name in folders if f"{name}/" not in layout]
    assert not missing, f"folders missing from the README's Layout: {missing}"


def test_every_path_the_development_checklists_name_exists() -> None:
    text = (DOCS / "development.md").read_text()
    paths = set(re.findall(r"`((?:backend|alembic|bench|scripts)/[\w/.<>-]+)`", text))
    assert paths, "no paths found in docs/development.md"
    missing = []
    for path in sorted(paths):
        if "<" in path or "000N" in path:  # a pattern for a new file: its folder must exist
            if not (PROJECT_ROOT / path).parent.is_dir():
                missing.append(path)
        elif not (PROJECT_ROOT / path).exists():
            missing.append(path)
    assert not missing, f"docs/development.md names paths that do not exist: {missing}"


def test_every_doc_the_readme_links_exists() -> None:
    links = re.findall(r"\]\((docs/[\w.-]+)\)", README.read_text())
    assert links, "the README links no docs"
    missing = [link for link in links if not (PROJECT_ROOT / link).is_file()]
    assert not missing, missing
