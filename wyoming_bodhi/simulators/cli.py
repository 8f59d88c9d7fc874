"""What the simulators' command lines share: the flags every vendor's simulator takes, and
running one until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Callable, Sequence
from typing import Any

from .options import REFUSAL_STATUSES, SimulatorOptions
from .server import SimulatorServer


def json_texts(value: str) -> list[str]:
    try:
        texts = json.loads(value)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON list of strings: {err}") from err
    if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
        raise argparse.ArgumentTypeError("expected a JSON list of strings")
    return texts


def common_parser(
    prog: str, description: str, default_port: int, api_key_env: str
) -> argparse.ArgumentParser:
    """A parser with the flags every simulator takes; a vendor's CLI adds its own."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add = parser.add_argument
    add("--host", default="127.0.0.1")
    add("--port", type=int, default=default_port, help="0 picks a free port (default: %(default)s)")
    add("--tls-cert", metavar="PEM", help="serve wss:// with this certificate")
    add("--tls-key", metavar="PEM", help="the certificate's private key")
    add("--texts", type=json_texts, default=[], help='texts in order, as JSON: \'["a", "b"]\'')
    add(
        "--api-key",
        default=os.environ.get(api_key_env),
        help=f"accept only this key (default: ${api_key_env}, else any non-empty key)",
    )
    add("--no-partials", dest="partials", action="store_false", help="send final texts only")
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
    add("--silent-after-eof", action="store_true", help="never answer the end of the audio")
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
        type=json_texts,
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


def common_options(args: argparse.Namespace) -> dict[str, Any]:
    """The shared flags as :class:`SimulatorOptions` fields."""
    return {
        "host": args.host,
        "port": args.port,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
        "api_key": args.api_key or None,
        "texts": args.texts,
        "partials": args.partials,
        "seconds_per_word": args.seconds_per_word,
        "threshold_dbfs": args.threshold_dbfs,
        "refuse_status": args.refuse_status,
        "refuse_count": args.refuse_count,
        "handshake_delay": args.handshake_delay,
        "idle_timeout": args.idle_timeout,
        "silent_after_eof": args.silent_after_eof,
        "drop_after_frames": args.drop_after_frames,
        "error_after_frames": args.error_after_frames,
        "malformed_results": args.malformed_results,
        "eos_delay": args.eos_delay,
        "raw_before_results": args.raw_before_results,
        "raw_repeat": args.raw_repeat,
        "leave_open_after_error": args.leave_open_after_error,
        "history": args.history,
    }


async def serve(simulator: SimulatorServer) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with simulator:
        await stop.wait()


def run(
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    options_from_args: Callable[[argparse.Namespace], SimulatorOptions],
    simulator: Callable[[SimulatorOptions], SimulatorServer],
) -> None:
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        server = simulator(options_from_args(args))
    except ValueError as err:
        parser.error(str(err))
    asyncio.run(serve(server))
