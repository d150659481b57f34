"""Command line: parse, call the Python API, print. No work happens here.

Heavy modules (TensorFlow, the converter) are imported inside the command handlers so
``mcuq --help`` and ``mcuq boards`` answer instantly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mcuq import __version__
from mcuq.backends.base import backend_for, backend_names
from mcuq.common.console import Console
from mcuq.common.errors import MCUQError, UsageError
from mcuq.project.escape import terminal

EXIT_OK, EXIT_USER_ERROR, EXIT_USAGE = 0, 1, 2


def _console(args: argparse.Namespace) -> Console:
    level = 0 if args.quiet else (2 if args.verbose else 1)
    return Console(level=level)


def seed_value(text: str) -> int:
    """--seed: a numpy seed, 0 to 2**32-1 (refused here, before minutes of conversion)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is out of range: give 0 to {2**32 - 1}")
    return value


def _add_quantize_options(p: argparse.ArgumentParser, with_defaults: bool = True) -> None:
    d = (lambda v: v) if with_defaults else (lambda v: None)
    p.add_argument(
        "--calibration", "-c", metavar="DATA", help="representative data: .npy, .npz, .csv, image folder, module:function, or 'random'"
    )
    p.add_argument(
        "--calibration-samples",
        type=int,
        default=d(300),
        metavar="N",
        help="samples used for calibration (default 300, chosen with --seed)",
    )
    p.add_argument("--seed", type=seed_value, default=d(0), help="seed for the sample choice (default 0)")
    p.add_argument(
        "--io", choices=["int8", "uint8", "float32"], default=d("int8"), help="dtype of the model's inputs/outputs (default int8)"
    )
    p.add_argument("--activations", choices=["int8", "int16"], default=d("int8"), help="int16 selects the 16x8 mode")
    p.add_argument(
        "--per-channel",
        choices=["auto", "all", "none"],
        default=d("auto"),
        help="weight scales: auto (default) per-channel conv, per-tensor Dense unless validation data shows it costs "
        "accuracy; all: per-channel everywhere; none: per-tensor everywhere",
    )
    p.add_argument("--per-tensor", action="store_true", default=None, help="same as --per-channel none")
    p.add_argument(
        "--image-scale",
        choices=["0..1", "-1..1", "0..255"],
        default=d("0..1"),
        help="pixel scaling for an image-folder calibration (default 0..1)",
    )


def _options_from(args: argparse.Namespace) -> Any:
    from mcuq.frontend.converter import QuantizeOptions

    return QuantizeOptions(
        io=args.io,
        activations=args.activations,
        per_channel="none" if args.per_tensor else args.per_channel,
        calibration_samples=args.calibration_samples,
        seed=args.seed,
        image_scale=args.image_scale,
    )


def cmd_quantize(args: argparse.Namespace) -> int:
    from mcuq.frontend.converter import quantize

    console = _console(args)
    result = quantize(args.model, args.calibration, args.output, _options_from(args), console, force=args.force)
    record = f"{args.output}.mcuq.json"
    if not args.quiet:
        print(
            f"wrote {args.output}: {len(result.tflite):,} bytes, full {result.options.activations}, "
            f"io {result.options.io}, {len(result.info.ops)} ops ({', '.join(result.info.op_names)})"
        )
        if result.random_calibration:
            print("ACCURACY UNVERIFIED: calibrated on random data (--calibration random)")
        print(f"how it was made: {record}")
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    from mcuq.inspection import format_inspection, inspect_model

    report = inspect_model(args.model, args.calibration, _console(args) if not args.json else Console(0), args.calibration_samples)
    print(json.dumps(report, indent=2) if args.json else format_inspection(report))  # names escaped in both
    return EXIT_OK


def cmd_boards(args: argparse.Namespace) -> int:
    from mcuq.boards import get_board, list_boards

    boards = [get_board(board_file=args.board_file)] if args.board_file else list_boards()
    notes = {b.id: backend_for(b).board_note(b) for b in boards}
    if args.json:
        print(json.dumps([{**b.as_json(), "library_unlisted_core": notes[b.id]} for b in boards], indent=2))
        return EXIT_OK
    print(f"{'id':<14} {'mcu':<12} {'arch':<11} {'MHz':>4} {'SRAM':>8} {'flash':>9} {'PSRAM':>7} {'runtime':<7} library")
    for b in boards:
        lib = backend_for(b).describe(b)
        mark = " (*) core not listed by the library" if notes[b.id] else ""
        print(
            f"{b.id:<14} {b.mcu:<12} {b.architecture:<11} {b.clock_mhz:>4} {b.sram_bytes // 1024:>6}KB "
            f"{b.flash_bytes // 1024:>7}KB {b.psram_bytes // 1024 if b.psram_bytes else '-':>5}{'KB' if b.psram_bytes else '  '} {b.default_runtime:<7} {lib}{mark}"
        )
    for b in boards:
        if notes[b.id]:
            print(f"(*) {b.id}: {notes[b.id]}")
    return EXIT_OK


def cmd_deploy(args: argparse.Namespace) -> int:
    from mcuq.deploy import DeployRequest, deploy, format_summary

    request = DeployRequest.from_cli(args)
    result = deploy(request, console=_console(args))
    if args.json:
        print(json.dumps(result.summary(), indent=2))
    elif args.quiet:  # the result only: a failure is an error, on stderr
        print(terminal(result.result_line), file=sys.stdout if result.ok else sys.stderr)
    else:
        print(terminal(format_summary(result), keep_newlines=True))
    return EXIT_OK if result.ok else EXIT_USER_ERROR


def cmd_monitor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mcuq.device.check import DeviceRequest, monitor_text
    from mcuq.project.manifest import read_manifest

    project = Path(args.project)
    ok, text = monitor_text(project, read_manifest(project), DeviceRequest(args.device, args.baud, reset=not args.no_reset))
    print(text)
    return EXIT_OK if ok else EXIT_USER_ERROR


def cmd_validate(args: argparse.Namespace) -> int:
    from mcuq.device.check import DeviceRequest
    from mcuq.validate import format_validation, validate_project

    device = DeviceRequest(args.device, args.baud, args.samples, not args.no_reset) if args.device else None
    report = validate_project(
        args.project,
        data=args.data,
        max_drop=args.max_drop,
        min_snr=args.min_snr,
        write_report=not args.no_report,
        console=_console(args),
        labels=args.labels,
        device=device,
        backend_options=option_values(args, "validate"),
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    elif args.quiet:
        print(terminal(report.result_line), file=sys.stdout if report.passed else sys.stderr)
    else:
        print(terminal(format_validation(report), keep_newlines=True))
    return EXIT_OK if report.passed else EXIT_USER_ERROR


def cmd_init(args: argparse.Namespace) -> int:
    from mcuq.frontend.config import write_default_config

    path = write_default_config(args.path, board=args.board, model=args.model)
    print(f"wrote {path}: edit it, then run 'mcuq deploy'")
    return EXIT_OK


def add_backend_options(parser: argparse.ArgumentParser, command: str) -> None:
    """The options the runtimes declare for ``command`` (BackendOption in each runtime's
    section.py): one flag each, named, typed and explained by the declaration."""
    from mcuq.backends.registry import declared_options

    seen: set[str] = set()
    for runtime, option in declared_options(command):
        if option.name in seen:  # two runtimes may share an option: one flag
            continue
        seen.add(option.name)
        text = f"{option.help} [runtime {runtime}]"
        if option.kind is bool:
            parser.add_argument(option.flag, dest=option.name, action="store_true", default=None, help=text)
        else:
            parser.add_argument(option.flag, dest=option.name, metavar=option.metavar, choices=option.choices or None, help=text)


def option_values(args: argparse.Namespace, command: str) -> dict[str, str | bool]:
    """The runtime-declared options given on the command line, by name."""
    from mcuq.backends.registry import declared_options

    values = {option.name: getattr(args, option.name, None) for _, option in declared_options(command)}
    return {name: value for name, value in values.items() if value is not None}


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option (and exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--quiet", "-q", action="store_true", help="print only errors and the result")
    common.add_argument("--verbose", "-v", action="store_true", help="show TensorFlow's own log output and debug detail")
    parser = OneLineParser(
        prog="mcuq",
        description="Take a Keras/TensorFlow model to a microcontroller as full int8, and prove it on the host.",
    )
    parser.add_argument("--version", action="version", version=f"mcuq {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("quantize", parents=[common], help="convert a Keras/SavedModel model to a full-int8 .tflite")
    p.add_argument("model", help=".keras, .h5, SavedModel folder, or an int8 .tflite to check")
    p.add_argument("-o", "--output", required=True, help="where to write the int8 .tflite")
    p.add_argument("--force", action="store_true", help="replace an existing output file that mcuq did not write")
    _add_quantize_options(p)
    p.set_defaults(func=cmd_quantize)

    p = sub.add_parser("inspect", parents=[common], help="inputs, outputs, op table, MACs and TFLite Micro support of a model")
    p.add_argument("model")
    p.add_argument("--calibration", "-c", metavar="DATA", help="needed to inspect a Keras/SavedModel (converted first)")
    p.add_argument("--calibration-samples", type=int, default=300, metavar="N")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("deploy", parents=[common], help="write an arena-sized PlatformIO project for a board and validate it")
    p.add_argument("model", nargs="?", help="model to deploy (default: 'model' in ./mcuq.toml)")
    p.add_argument("--board", "-b", help="board id (see 'mcuq boards'; default esp32)")
    p.add_argument("--board-file", help="your own board TOML (same schema as boards/*.toml)")
    p.add_argument("--out", "-o", help="output folder (default build/<board>-<model>)")
    p.add_argument("--runtime", choices=backend_names(), help="TFLite Micro or the plain-C int8 runtime (default: the board's)")
    p.add_argument("--arena-size", type=int, metavar="BYTES", help="override the planned tensor arena")
    add_backend_options(p, "deploy")
    p.add_argument("--golden", type=int, metavar="N", help="golden vectors checked at boot (default 4)")
    p.add_argument(
        "--data",
        metavar="VAL",
        help="validation data (.npz with one array per input name, optional 'labels' "
        "and 'label_names'); with --per-channel auto it decides per-channel Dense",
    )
    p.add_argument("--name", help="C prefix of the generated API (default: from the model's name): NAME_init(), NAME_model.h")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line: a label table in the generated code and the report")
    p.add_argument("--force", action="store_true", help="replace the files of a previous mcuq project in --out (never your own files)")
    p.add_argument("--config", default=None, help="project config file (default ./mcuq.toml when no MODEL is given)")
    p.add_argument(
        "--allow-code",
        action="store_true",
        help="let mcuq.toml name a calibration/data 'module:function' (Python code from that folder is imported and run)",
    )
    p.add_argument("--json", action="store_true", help="print the deploy summary as JSON")
    _add_quantize_options(p, with_defaults=False)
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("validate", parents=[common], help="prove a generated project on the x86 TFLite Micro; accuracy and per-layer error")
    p.add_argument("project", help="folder written by 'mcuq deploy'")
    p.add_argument("--data", metavar="VAL", help="validation data (.npz: inputs and optional 'labels')")
    p.add_argument("--labels", metavar="LABELS.npy", help="integer class labels, one per validation sample (else 'labels' in the .npz)")
    p.add_argument("--max-drop", type=float, metavar="P", help="fail when int8 accuracy is more than P points below float")
    p.add_argument("--min-snr", type=float, metavar="DB", help="fail when an output's SNR is below DB")
    p.add_argument("--no-report", action="store_true", help="do not write report.html/report.json")
    add_backend_options(p, "validate")
    p.add_argument(
        "--device",
        metavar="PORT",
        help="also run the golden vectors and validation samples on the flashed board at this serial port "
        "(/dev/ttyUSB0, /dev/ttyACM0, COM3) and compare its raw outputs bit for bit",
    )
    p.add_argument(
        "--baud", type=int, default=115200, metavar="B", help="the board's baud rate (default 115200, the project's monitor_speed)"
    )
    p.add_argument("--samples", type=int, default=50, metavar="N", help="validation samples to run on the board (default 50)")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board through DTR when opening the port")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("monitor", parents=[common], help="the flashed board's boot self-test and identity, decoded")
    p.add_argument("project", help="folder written by 'mcuq deploy'")
    p.add_argument("--device", required=True, metavar="PORT", help="the board's serial port")
    p.add_argument("--baud", type=int, default=115200, metavar="B")
    p.add_argument("--no-reset", action="store_true", help="do not reset the board through DTR")
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("boards", parents=[common], help="list the supported boards")
    p.add_argument("--json", action="store_true")
    p.add_argument("--board-file", help="check and show your own board file")
    p.set_defaults(func=cmd_boards)

    p = sub.add_parser("init", parents=[common], help="write a commented mcuq.toml in the current folder")
    p.add_argument("--path", default="mcuq.toml")
    p.add_argument("--board", default="esp32")
    p.add_argument("--model", default="model.keras")
    p.set_defaults(func=cmd_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from mcuq.frontend.tf import set_verbose

    set_verbose(bool(getattr(args, "verbose", False)))
    handler: Callable[[argparse.Namespace], int] = args.func
    try:
        return handler(args)
    except UsageError as exc:
        print(terminal(f"mcuq: error: {exc}", keep_newlines=True), file=sys.stderr)
        return EXIT_USAGE
    except MCUQError as exc:  # names in the message (tensor, layer, file) cannot drive the terminal
        print(terminal(f"mcuq: error: {exc}", keep_newlines=True), file=sys.stderr)
        return EXIT_USER_ERROR
    except BrokenPipeError:  # e.g. `mcuq inspect --json | head`
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # the file system refused (full disk, permissions, a path that changed under us)
        where = f"{exc.filename}: " if exc.filename else ""
        print(terminal(f"mcuq: error: {where}{exc.strerror or exc}; check the path and its permissions"), file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("mcuq: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
