"""Table formats: which tabulate formats exist, and how a report lays each out.

:func:`check_table_format` is the one check that a format name is one of
tabulate's; the tables raise its plain message, the ``netcopy`` commands name
their option (``--format``) in theirs.
"""

from __future__ import annotations

from tabulate import tabulate_formats

#: formats whose report is markdown (headings with ``##``, list items with ``-``)
MARKDOWN_FORMATS = frozenset({"github", "pipe"})

#: tabulate formats that draw no line between rows: a blank/ruled line separates the groups.
SEPARATED_FORMATS = frozenset(
    {
        "plain",
        "simple",
        "psql",
        "presto",
        "orgtbl",
        "simple_outline",
        "rounded_outline",
        "heavy_outline",
        "mixed_outline",
        "double_outline",
        "fancy_outline",
    }
)


def check_table_format(fmt: str, *, option: str | None = None) -> None:
    """Raise ValueError unless ``fmt`` is one of tabulate's formats.

    Without ``option``: ``unknown table format 'x'; choose one of ...`` (tabulate's
    order). With ``option`` (a command-line option such as ``"--format"``):
    ``--format 'x' is not a table format; choose one of ...`` (sorted).
    """
    if fmt in tabulate_formats:
        return
    if option is None:
        raise ValueError(
            f"unknown table format {fmt!r}; choose one of {', '.join(tabulate_formats)}"
        )
    raise ValueError(
        f"{option} {fmt!r} is not a table format; choose one of "
        + ", ".join(sorted(tabulate_formats))
    )
