"""``da3cpp`` command line: depth maps, point clouds and exports for images and videos.

Entry point: ``da3cpp = "depth_anything_cpp.cli:main"``. Exit status: 0 success,
1 some inputs failed (the others are still written), 2 usage or model error,
130 interrupted (Ctrl-C: the current input's files are removed, no temp files remain),
143 terminated (SIGTERM: the same clean-up).
"""


from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

from .colmap import _run_colmap, read_colmap_inputs
from .commands import _Depth, _Export, _Points
from .info import _cmd_info
from .inputs import IMAGE_SUFFIXES
from .parser import MODEL_ENV, _build_parser
from .running import _run

__all__ = ["main", "read_colmap_inputs", "IMAGE_SUFFIXES", "MODEL_ENV"]


_COMMANDS = {"depth": _Depth, "points": _Points, "export": _Export}


def _main(argv: list) -> int:
    if argv and argv[0] == "convert":
        from .. import convert

        return int(convert.main(argv[1:]) or 0)
    if argv and argv[0] == "bench" and any(a == "--peers" or a.startswith("--peers=") for a in argv[1:]):
        from .. import bench_peers  # issue #23: ours beside ONNX Runtime / OpenVINO / PyTorch

        return int(bench_peers.main(argv[1:]) or 0)
    if argv and argv[0] == "bench":
        from .. import bench

        return int(bench.main(argv[1:]) or 0)
    if argv and argv[0] == "serve":
        from .. import server

        return int(server.main(argv[1:]) or 0)
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command == "colmap":
        return _run_colmap(args)
    if args.command in _COMMANDS:
        return _run(args, _COMMANDS[args.command](args))
    if args.command == "info":
        return _cmd_info(args)
    parser.print_help()
    return 2


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``da3cpp`` with ``argv`` (default ``sys.argv[1:]``); return the exit status
    (130 after Ctrl-C, 143 after SIGTERM, with a one-line message; both clean up alike)."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except _Terminated:
        print("da3cpp: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("da3cpp: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

