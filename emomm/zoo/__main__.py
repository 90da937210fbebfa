"""``python -m emomm.zoo`` lists the zoo's models and bundles with their key figures;
``python -m emomm.zoo show NAME`` prints one card (``--yaml``: the machine-readable one)."""
from __future__ import annotations

import argparse
import sys

from emomm.utils.zoo_files import CARD, ZooEntryError, entry_dir, names, read_card, zoo_dir
from emomm.zoo.cards import render_markdown, summary_row


def listing() -> str:
    """The zoo as a plain-text table (one row per entry)."""
    rows = [summary_row(read_card(entry_dir(n))) for n in names()]
    if not rows:
        return (f"the zoo at {zoo_dir()} is empty: build an entry with `python -m emomm.zoo.build NAME` "
                "(or `make zoo`)")
    head = list(rows[0])
    widths = {k: max(len(k), *(len(r[k]) for r in rows)) for k in head}
    lines = ["  ".join(k.ljust(widths[k]) for k in head)]
    lines += ["  ".join(r[k].ljust(widths[k]) for k in head) for r in rows]
    return "\n".join(lines) + "\n\n`python -m emomm.zoo show NAME` prints a card"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m emomm.zoo", description=__doc__)
    sub = ap.add_subparsers(dest="command")
    show = sub.add_parser("show", help="print a model's card")
    show.add_argument("name")
    show.add_argument("--yaml", action="store_true", help="the machine-readable card.yaml")
    args = ap.parse_args(argv)
    try:
        if args.command == "show":
            folder = entry_dir(args.name)
            print((folder / CARD).read_text() if args.yaml else render_markdown(read_card(folder)))
        else:
            print(listing())
    except ZooEntryError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
