"""Find a baseline: a JSON file, or a run saved in pytest-benchmark's storage.

The value follows the rules of ``--benchmark-compare`` (pytest-benchmark's
``FileStorage.query``): an existing file is used as is; anything else is a
glob on saved file names, ``NAME-GLOB`` searched in the machine's folder
(``STORAGE/<machine-id>/``) and in ``STORAGE/`` itself, or
``MACHINE-GLOB/NAME-GLOB``. A trailing ``*.json`` is implied, so ``0001``
matches ``0001_base.json`` and ``*base`` matches ``0007_base.json``. The empty
value means the latest saved run, as a bare ``--benchmark-compare`` does.
Where several runs match, pytest-benchmark would compare against all of
them; a gate needs one, so it takes the last in pytest-benchmark's order (by
file name, then folder): the highest run number.
"""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["BaselineError", "find_baselines", "local_machine_id", "resolve_baseline"]

#: What a bare ``--benchmark-compare`` loads: every numbered saved run.
LATEST_GLOB = "[0-9][0-9][0-9][0-9]_"


class BaselineError(Exception):
    """A baseline value that names no usable file; the message says what was searched."""


def local_machine_id() -> str:
    """This machine's folder in pytest-benchmark's storage, e.g. ``Linux-CPython-3.11-64bit``.

    The same string as pytest-benchmark's ``get_machine_id()``.
    """
    return "-".join(
        (
            platform.system(),
            platform.python_implementation(),
            ".".join(platform.python_version_tuple()[:2]),
            platform.architecture()[0],
        )
    )


def _patterns(value: str, machine_id: str | None) -> tuple[str, str]:
    """(machine-folder glob, file-name glob) of a storage query, built as pytest-benchmark does."""
    parts = Path(value).parts
    if len(parts) > 2:
        raise BaselineError(
            f"{value!r} is not an existing file, and not a saved-run query either (those are "
            "'NNNN', 'NAME-GLOB' or 'MACHINE-GLOB/NAME-GLOB', e.g. '0001' or '*base')"
        )
    if len(parts) == 2:
        folder, name = parts
    else:
        folder = machine_id or "*"
        name = parts[0] if parts else ""
    return folder, name.rstrip("*") + "*.json"


def find_baselines(value: str, storage_dir: Path, machine_id: str | None = None) -> list[Path]:
    """Every saved run ``value`` selects, in pytest-benchmark's order (the last is the latest).

    ``machine_id`` is the machine folder to search (pytest-benchmark passes
    its own machine id; None searches every machine folder).
    """
    folder, name = _patterns(value or LATEST_GLOB, machine_id)
    if not storage_dir.is_dir():
        return []
    found = {p for d in storage_dir.glob(folder) if d.is_dir() for p in d.glob(name)}
    found.update(storage_dir.glob(name))
    return sorted((p for p in found if p.is_file()), key=lambda p: (p.name, str(p.parent)))


def resolve_baseline(value: str, storage_dir: Path, machine_id: str | None = None) -> Path:
    """The baseline file ``value`` names: an existing file, or the latest matching saved run.

    Raises BaselineError naming ``value`` and what was searched (callers
    prefix the option, e.g. ``--netcopy-baseline=``).
    """
    if value:
        candidate = Path(value)
        try:
            if candidate.is_file():
                return candidate
            if candidate.is_dir():
                raise BaselineError(
                    f"{value!r} is a directory, expected a pytest-benchmark JSON file or a "
                    "saved-run query such as '0001' or '*base'"
                )
        except OSError:
            pass
        if candidate.is_absolute():  # never a saved-run query (and glob refuses it)
            raise BaselineError(f"{value!r} is not an existing file")
    matches = find_baselines(value, storage_dir, machine_id)
    if matches:
        return matches[-1]
    folder, name = _patterns(value or LATEST_GLOB, machine_id)
    searched = f"{storage_dir / folder / name} and {storage_dir / name}"
    if not value:
        raise BaselineError(
            f"no saved run to compare with: nothing matches {searched}; "
            "save a baseline first with --benchmark-save=NAME"
        )
    where = "" if storage_dir.is_dir() else f" (storage {str(storage_dir)!r} does not exist)"
    hint = ""
    if value.endswith(".json"):
        hint = f"; a saved-run query leaves out '.json': {value[:-5]!r}"
    elif not any(c in value for c in "*?[/") and not value[:1].isdigit():
        hint = f"; to select a saved run by its name, use '*{value}'"
    raise BaselineError(
        f"{value!r} is neither an existing file nor a saved run: searched {searched}{where}{hint}"
    )
