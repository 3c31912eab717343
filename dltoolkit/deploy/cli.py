"""The ``export`` and ``serve`` verbs of the ``dltoolkit`` command line.

Example:
    $ dltoolkit export runs/wine/model --format onnx --out wine.onnx
    $ dltoolkit serve runs/wine/model --port 8000
"""

from __future__ import annotations

import argparse

from dltoolkit.deploy.export import FORMATS, TOLERANCE

MAX_RECORDS, MAX_BODY_BYTES = 1000, 1_000_000  # as in dltoolkit.deploy.serve


def cmd_export(args: argparse.Namespace) -> int:
    from dltoolkit.deploy.export import export_checked

    path, diff, rows = export_checked(
        args.model, args.format, out=args.out, tolerance=args.tolerance, data=args.data
    )
    print(f"wrote {path} ({args.format}); max difference vs the bundle on {rows} checked rows: {diff:.3g}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from dltoolkit.deploy.serve import serve

    serve(
        args.model,
        args.host,
        args.port,
        max_records=args.max_records,
        max_body_bytes=args.max_body_bytes,
        threads=args.threads,
    )
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``export`` and ``serve``."""
    p = subparsers.add_parser(
        "export", help="export a model or ensemble bundle, preprocessing included, to ONNX or TorchScript"
    )
    p.add_argument("model", help="a model or ensemble bundle directory")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (default) or torchscript")
    p.add_argument("--out", required=True, help="the file to write (only after it was verified)")
    p.add_argument(
        "--tolerance",
        type=float,
        default=TOLERANCE,
        help=f"largest accepted difference (default {TOLERANCE})",
    )
    p.add_argument(
        "--data",
        metavar="CSV",
        help="training data to verify on (its test split) instead of the example rows the bundle carries",
    )
    p.set_defaults(func=cmd_export)
    p = subparsers.add_parser("serve", help="serve a bundle over HTTP: POST /predict, GET /health, /metadata")
    p.add_argument("model", help="a model or ensemble bundle directory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--max-records", type=int, default=MAX_RECORDS, help="most records per request")
    p.add_argument("--max-body-bytes", type=int, default=MAX_BODY_BYTES, help="largest request body")
    p.add_argument("--threads", type=int, default=1, help="torch threads in the server (default 1)")
    p.set_defaults(func=cmd_serve)
