"""Finding the repository folder that holds a top-level tool (``bench/``, ``faults/``)."""

from __future__ import annotations

from pathlib import Path


def find_folder_holding(marker: Path, start: Path | None = None) -> Path | None:
    """The folder holding ``marker``: the working folder or a parent, else this package's
    repository (an editable install)."""
    for origin in (start or Path.cwd(), Path(__file__).resolve()):
        for folder in (origin, *origin.parents):
            if (folder / marker).is_file():
                return folder
    return None
