"""``python -m wyoming_bodhi.simulators.bodhi``: run the Bodhi simulator until interrupted."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from ..cli import common_options, common_parser, run
from .options import FINAL_FORMS, BodhiOptions
from .server import BodhiSimulator

API_KEY_ENV = "BODHI_SIMULATOR_API_KEY"


def _confidences(value: str) -> list[float | None]:
    try:
        confidences = json.loads(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--confidences must be a JSON list: {err}") from err
    if not isinstance(confidences, list) or not all(
        c is None or (isinstance(c, int | float) and 0 <= c <= 1) for c in confidences
    ):
        raise argparse.ArgumentTypeError("--confidences must be a JSON list of 0-1 or null")
    return [None if c is None else float(c) for c in confidences]


def build_parser() -> argparse.ArgumentParser:
    parser = common_parser(
        "python -m wyoming_bodhi.simulators.bodhi",
        "A local Bodhi-compatible streaming ASR server (scripted texts, no real ASR).",
        8765,
        API_KEY_ENV,
    )
    add = parser.add_argument
    add(
        "--require-customer-id",
        action="store_true",
        help="refuse handshakes without x-customer-id (legacy platform)",
    )
    add(
        "--model",
        dest="models",
        action="append",
        default=[],
        metavar="NAME",
        help="accept an extra model name (repeatable)",
    )
    add(
        "--confidences",
        type=_confidences,
        default=[],
        help="per-segment confidence in order, as JSON: '[0.9, 0.3, null]'",
    )
    add("--final", choices=FINAL_FORMS, default="last-complete", help="final-message form")
    add("--revise", action="store_true", help="one partial per segment shows a wrong last word")
    add("--empty-partials", action="store_true", help="first partial of each segment is empty")
    return parser


def options_from_args(args: argparse.Namespace) -> BodhiOptions:
    return BodhiOptions(
        **common_options(args),
        require_customer_id=args.require_customer_id,
        extra_models=args.models,
        confidences=args.confidences,
        revise=args.revise,
        empty_partials=args.empty_partials,
        final=args.final,
    )


def main(argv: Sequence[str] | None = None) -> None:
    # A badly named --model fails as the simulator is built, before anything is served.
    run(argv, build_parser(), options_from_args, BodhiSimulator)


if __name__ == "__main__":
    main()
