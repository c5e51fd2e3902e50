"""``ecglens`` entry point: the headless commands of :mod:`ecgmodel.cli` plus ``ecglens view``."""

from __future__ import annotations

import argparse
import sys

from ecgmodel.cli import build_parser
from ecgmodel.cli import main as headless_main


def _view(args: argparse.Namespace) -> int:
    from .main_window import run_viewer  # Qt is imported only for this command

    return run_viewer(args.file, screenshot=args.screenshot)


def parser() -> argparse.ArgumentParser:
    """The full ``ecglens`` parser, viewer included."""
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    view = sub.add_parser("view", help="open the ECG Lens viewer (optionally on FILE)")
    view.add_argument("file", nargs="?", default=None)
    view.add_argument(
        "--screenshot",
        default=None,
        help="render the window (analysis finished, overlay shown) to this PNG and exit",
    )
    view.set_defaults(func=_view)
    return p


def main(argv: list[str] | None = None) -> int:
    return headless_main(argv, parser=parser())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
