"""The `babyfast` command-line program. Each part registers its own subcommands."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that expose `register(subparsers)`; each subcommand sets `func(args) -> int` as its handler.
_COMMAND_MODULES = ("babyfast.store._cli", "babyfast.synth._cli", "babyfast.train._cli", "babyfast.eval._cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="babyfast",
        description="Pretrain video models on infant egocentric video: store, synthetic world, training.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
