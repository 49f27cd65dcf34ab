"""``da3cpp info``: the compiled core, variants, devices and optionally one model."""

from __future__ import annotations

import argparse
import json

from .running import _err


def _format_value(value: object, indent: str) -> str:
    if isinstance(value, dict):
        lines = [""]
        for k, v in value.items():
            lines.append(f"{indent}  {k}: {_format_value(v, indent + '  ')}")
        return "\n".join(lines)
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, dict) for v in value):
        lines = [""]
        for j, v in enumerate(value):
            lines.append(f"{indent}  [{j}]{_format_value(v, indent + '    ')}")
        return "\n".join(lines)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def _cmd_info(args: argparse.Namespace) -> int:
    from .. import __version__, backend_info

    info: dict = {"version": __version__}
    info.update(backend_info())
    if args.model is not None:
        from ..api import DepthAnything3

        try:
            info["model"] = {"path": args.model, **DepthAnything3.from_pretrained(args.model).info}
        except Exception as exc:  # report, keep the rest of the info
            _err(f"cannot load model {args.model}: {exc}")
            return 2
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        for key, value in info.items():
            print(f"{key}: {_format_value(value, '')}")
    return 0

