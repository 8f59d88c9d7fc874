"""``python -m wyoming_bodhi.simulators.iapp``: run the iApp ASRx simulator until interrupted."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from ..cli import common_options, common_parser, run
from .options import END_FORMS, IappOptions
from .server import IappSimulator

API_KEY_ENV = "IAPP_SIMULATOR_API_KEY"


def build_parser() -> argparse.ArgumentParser:
    parser = common_parser(
        "python -m wyoming_bodhi.simulators.iapp",
        "A local iApp ASRx-compatible streaming ASR server for Thai (scripted texts, no real ASR).",
        8766,
        API_KEY_ENV,
    )
    add = parser.add_argument
    add(
        "--end-form",
        choices=END_FORMS,
        default="end_of_process",
        help="how the end of the results is said (default: %(default)s)",
    )
    add(
        "--new-sentence",
        default="NewSentence",
        metavar="STATE",
        help="the state that starts a new sentence (default: %(default)s; also 'New sentence')",
    )
    return parser


def options_from_args(args: argparse.Namespace) -> IappOptions:
    return IappOptions(
        **common_options(args), end_form=args.end_form, new_sentence=args.new_sentence
    )


def main(argv: Sequence[str] | None = None) -> None:
    run(argv, build_parser(), options_from_args, IappSimulator)


if __name__ == "__main__":
    main()
