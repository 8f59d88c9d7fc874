"""``python -m wyoming_bodhi.simulators.bodhi``: run the Bodhi simulator until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Sequence

from ...engines.bodhi.catalog import Catalog, UnknownModelError
from ..options import FINAL_FORMS, REFUSAL_STATUSES, SimulatorOptions
from .server import BodhiSimulator

API_KEY_ENV = "BODHI_SIMULATOR_API_KEY"


def _texts(value: str) -> list[str]:
    try:
        texts = json.loads(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--texts must be a JSON list of strings: {err}") from err
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise argparse.ArgumentTypeError("--texts must be a JSON list of strings")
    return texts


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
    parser = argparse.ArgumentParser(
        prog="python -m wyoming_bodhi.simulators.bodhi",
        description="A local Bodhi-compatible streaming ASR server (scripted texts, no real ASR).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)")
    add("--tls-cert", metavar="PEM", help="serve wss:// with this certificate")
    add("--tls-key", metavar="PEM", help="the certificate's private key")
    add("--texts", type=_texts, default=[], help='segment texts in order, as JSON: \'["a", "b"]\'')
    add(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"accept only this key (default: ${API_KEY_ENV}, else any non-empty key)",
    )
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
    add("--no-partials", dest="partials", action="store_false", help="send completes only")
    add("--revise", action="store_true", help="one partial per segment shows a wrong last word")
    add("--empty-partials", action="store_true", help="first partial of each segment is empty")
    add("--seconds-per-word", type=float, default=0.25, help="partials reveal a word per this")
    add("--threshold-dbfs", type=float, default=-40.0, help="speech energy threshold")
    add(
        "--refuse-status",
        type=int,
        choices=sorted(REFUSAL_STATUSES),
        help="refuse handshakes with this HTTP status",
    )
    add("--refuse-count", type=int, help="refuse only the first N handshakes (default: all)")
    add("--handshake-delay", type=float, default=0.0, metavar="S")
    add("--idle-timeout", type=float, default=15.0, metavar="S")
    add("--silent-after-eof", action="store_true", help="never answer eof")
    add("--drop-after-frames", type=int, metavar="N", help="cut the TCP connection on frame N")
    add("--error-after-frames", type=int, metavar="N", help="send a 500 error on frame N")
    add(
        "--malformed-results",
        action="store_true",
        help="send a non-JSON frame and an unknown JSON message before the first result",
    )
    add("--eos-delay", type=float, default=0.0, metavar="S", help="delay before final results")
    add(
        "--raw-before-results",
        type=_texts,
        default=[],
        metavar="JSON",
        help="text frames sent as they are before the first result, as a JSON list of strings",
    )
    add("--raw-repeat", type=int, default=1, metavar="N", help="send those N times over")
    add(
        "--leave-open-after-error",
        action="store_true",
        help="after an in-socket error, leave the socket open and unread until the idle timeout",
    )
    add("--history", type=int, default=1000, metavar="N", help="connection records kept")
    add("--debug", action="store_true", help="log at debug level")
    return parser


def options_from_args(args: argparse.Namespace) -> SimulatorOptions:
    return SimulatorOptions(
        host=args.host,
        port=args.port,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        api_key=args.api_key or None,
        require_customer_id=args.require_customer_id,
        extra_models=args.models,
        texts=args.texts,
        confidences=args.confidences,
        partials=args.partials,
        revise=args.revise,
        empty_partials=args.empty_partials,
        final=args.final,
        seconds_per_word=args.seconds_per_word,
        threshold_dbfs=args.threshold_dbfs,
        refuse_status=args.refuse_status,
        refuse_count=args.refuse_count,
        handshake_delay=args.handshake_delay,
        idle_timeout=args.idle_timeout,
        silent_after_eof=args.silent_after_eof,
        drop_after_frames=args.drop_after_frames,
        error_after_frames=args.error_after_frames,
        malformed_results=args.malformed_results,
        eos_delay=args.eos_delay,
        raw_before_results=args.raw_before_results,
        raw_repeat=args.raw_repeat,
        leave_open_after_error=args.leave_open_after_error,
        history=args.history,
    )


async def serve(options: SimulatorOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with BodhiSimulator(options):
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        options = options_from_args(args)
        # Fail on a badly named --model before serving anything.
        Catalog(options.extra_models)
    except (ValueError, UnknownModelError) as err:
        parser.error(str(err))
    asyncio.run(serve(options))


if __name__ == "__main__":
    main()
