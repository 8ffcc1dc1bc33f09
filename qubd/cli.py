"""The ``qubd`` command: ``qubd demo``, ``qubd score PATH ...``, ``qubd series PATH ... --json LOG``,
``qubd plot REPORT.json -o PNG``.

Every failure is one line ``qubd: error: ...`` on stderr (under torchrun, rank 0's: see ``_fail``) and
a non-zero exit status, without a traceback (set ``QUBD_TRACEBACK=1`` to see one). Outputs are
checked before anything is read and written atomically (``qubd.report.writers``); SIGTERM and
SIGHUP end the command like Ctrl-C, with its temporary files removed.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from qubd.layouts import DEFAULT as DEFAULT_LAYOUT
from qubd.layouts import LAYOUTS
from qubd.report.options import (
    BASELINE_ALIASES,
    BASELINES,
    COMPRESSORS,
    DEVICES,
    EXPECTED,
    NONFINITE_POLICIES,
    ScoreOptions,
)
from qubd.torchrun import launched_by_torchrun, writes_outputs

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_SIGNAL_BASE = 128
# Signals that end the command like Ctrl-C does: temporary files are removed on the way out.
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
MIN_TABLE_WIDTH = 110


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error."""

    def error(self, message: str):
        _fail(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


def _fail(message: str, status: int = EXIT_ERROR, every_rank_alike: bool = True):
    """``message``'s first line on stderr, then exit with ``status``. Under torchrun, an error that every
    rank meets alike (usage errors, signals, qubd's own errors: the distributed steps raise those on
    every rank together) is printed by rank 0 only, the other ranks exiting with the same status
    quietly; any other error is printed by each rank that meets it, naming the rank."""
    from qubd.report.safe_text import printable

    if every_rank_alike and not writes_outputs():
        raise SystemExit(status)
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    if not every_rank_alike and launched_by_torchrun():
        first_line = f"rank {os.environ['RANK']}: {first_line}"
    print(f"qubd: error: {printable(first_line)}", file=sys.stderr)
    raise SystemExit(status)


class _Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like KeyboardInterrupt, so ``finally`` blocks remove the
    temporary files."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_terminated(signum: int, frame) -> None:
    raise _Terminated(signum)


@contextmanager
def _terminating_signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP raise ``_Terminated`` while the command runs (main thread only: Python
    handles signals there); the previous handlers are restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A signal ignored when qubd started (``nohup``) stays ignored.
    wanted = [signum for signum in TERMINATING_SIGNALS if signal.getsignal(signum) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, _raise_terminated) for signum in wanted}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _clip(text: str) -> float | None:
    if text.lower() in ("none", "minmax", "min/max"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentile or 'none': {text!r}") from None


def _add_score_options(parser: argparse.ArgumentParser) -> None:
    q = parser.add_argument_group("what is computed")
    q.add_argument("--bits", type=int, default=8, help="bit depth of the quantisation (default 8)")
    q.add_argument(
        "--clip",
        type=_clip,
        default=99.9,
        help="range: percentile for robust clipping, or 'none' for min/max (default 99.9)",
    )
    q.add_argument(
        "--baseline",
        default=EXPECTED,
        choices=(*BASELINES, *BASELINE_ALIASES),
        help="expected: mean and std over random arrangements of each tensor's values, in closed "
        "form (default); shuffle: each tensor's values permuted (sampled, --repeats runs); reinit: a "
        "module's random re-initialisation (modules only); none",
    )
    q.add_argument("--seed", type=int, default=0, help="seed of a sampled baseline (default 0)")
    q.add_argument("--repeats", type=int, default=1, help="sampled baseline runs: mean and std (default 1)")
    q.add_argument("--binary", action="store_true", help="also the binary baseline BDM(W > 0)")
    q.add_argument(
        "--compress",
        action="append",
        choices=COMPRESSORS,
        default=[],
        help="also the compressed size of the packed bit-planes (repeatable)",
    )
    q.add_argument(
        "--layout",
        default=DEFAULT_LAYOUT,
        choices=tuple(LAYOUTS),
        help="the 2-D view a conv kernel [out, in, h, w] is scored as: default (flatten(1): out x in*h*w), "
        "in_channel_rows, channels_last, square, mosaic (out*h x in*w); see docs/design.md",
    )
    q.add_argument(
        "--manifold",
        action="store_true",
        help="also the BDM of each tensor's tiled manifold (its bit-planes interleaved into one image)",
    )
    q.add_argument(
        "--advice-margin",
        type=float,
        default=1.0,
        help="percentage points below 100%% for a plane to count as below baseline (default 1)",
    )
    q.add_argument("--device", default="auto", choices=DEVICES, help="where to score (default auto)")


def _steps(text: str) -> list[int]:
    try:
        return [int(step) for step in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from None


def _add_tensor_options(parser: argparse.ArgumentParser) -> None:
    pick = parser.add_argument_group("which tensors")
    pick.add_argument(
        "--include",
        action="append",
        metavar="PATTERN",
        help="only tensors whose name matches (glob, or a substring without wildcards); repeatable",
    )
    pick.add_argument("--exclude", action="append", metavar="PATTERN", help="leave out matching tensors")
    pick.add_argument(
        "--nonfinite",
        default="error",
        choices=NONFINITE_POLICIES,
        help="a tensor with NaN/Inf values: stop with an error (default) or skip it",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qubd", description="Algorithmic complexity (QuBD) of neural-network weights.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    demo = commands.add_parser("demo", help="score a small MLP trained for a moment (start here)")
    demo.add_argument("--steps", type=int, default=200, help="training steps (default 200)")
    demo.add_argument("--seed", type=int, default=0, help="seed of model, data and baseline (default 0)")
    demo.set_defaults(run=_run_demo)

    score = commands.add_parser(
        "score",
        help="score a checkpoint: .safetensors, a Hugging Face model directory, .bin/.pt",
        description="Per-plane QuBD of a checkpoint against a baseline. PATH: a .safetensors file, a "
        "Hugging Face model directory (sharded, with model.safetensors.index.json), or .bin/.pt files "
        "(read with torch.load(weights_only=True) only); several PATHs make one checkpoint.",
    )
    score.add_argument("paths", nargs="+", metavar="PATH")
    _add_score_options(score)
    score.add_argument(
        "--reference",
        metavar="REF",
        help="baseline: each tensor's namesake in checkpoint REF (e.g. step 0), scored alike",
    )
    _add_tensor_options(score)
    out = score.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="write the full report as JSON ('-': to stdout)")
    out.add_argument("--csv", metavar="PATH", help="write QuBD per tensor and plane as CSV ('-': to stdout)")
    out.add_argument("--plot", metavar="PNG", help="write per-plane ratio bars and a tensor x plane heatmap")
    out.add_argument("--tensors", action="store_true", help="also print a table of the tensors")
    out.add_argument("--quiet", action="store_true", help="print no table")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_model_options(score)
    score.set_defaults(run=_run_score)

    series = commands.add_parser(
        "series",
        help="score the checkpoints of a training run into a training log (qubd plot draws it)",
        description="Per-plane QuBD of each checkpoint of a training run, written to the training-log "
        "format of ComplexityTracker. PATH: a checkpoint, or a folder of checkpoint-N (Hugging Face "
        "Trainer) or stepN folders; the step is the number a name ends in, or --steps. An existing LOG "
        "is resumed: the checkpoints it holds are not scored again.",
    )
    series.add_argument("paths", nargs="+", metavar="PATH")
    series.add_argument("--json", required=True, metavar="LOG", help="the training log to write or resume")
    series.add_argument(
        "--steps",
        type=_steps,
        help="the checkpoints' steps, comma-separated, in the order found (default: from the names)",
    )
    series.add_argument(
        "--reference",
        metavar="first|REF",
        help="baseline: each tensor's namesake in the first checkpoint ('first') or in checkpoint REF",
    )
    _add_score_options(series)
    _add_tensor_options(series)
    series.add_argument("--quiet", action="store_true", help="print no table")
    series.add_argument("--no-progress", action="store_true", help="no progress bar")
    series.set_defaults(run=_run_series)

    plot = commands.add_parser("plot", help="plot a JSON report or training log")
    plot.add_argument("report", metavar="REPORT.json")
    plot.add_argument("-o", "--output", required=True, metavar="PNG", help="image to write")
    plot.set_defaults(run=_run_plot)
    _add_doctor_command(commands)
    _add_version_option(parser)
    return parser


def _add_model_options(score: argparse.ArgumentParser) -> None:
    score.add_argument(
        "--revision",
        metavar="REV",
        help="for a model name (org/name) read from the local Hugging Face cache: branch, tag or commit",
    )
    score.add_argument(
        "--dry-run",
        action="store_true",
        help="list the tensors that would be scored and skipped (and why), without computing",
    )


def _checkpoint_paths(args: argparse.Namespace):
    """PATH arguments as ``open_source`` takes them; with ``--revision``, model names resolved in the
    Hugging Face cache at that revision (without it, ``open_source`` resolves names itself)."""
    paths = args.paths
    if args.revision is not None:
        from qubd.checkpoints.hub import resolve_checkpoint

        paths = [resolve_checkpoint(p, args.revision) for p in paths]
    return paths[0] if len(paths) == 1 else paths


def _run_dry_run(args: argparse.Namespace) -> None:
    from qubd.report.describe import describe

    description = describe(_checkpoint_paths(args), args.include, args.exclude)
    print("\n".join(description.lines()))
    print("(nothing computed; tensors with NaN/Inf values are found only when scoring)")


def _add_version_option(parser: argparse.ArgumentParser) -> None:
    from qubd import __version__

    parser.add_argument("--version", action="version", version=f"qubd {__version__}")


def _add_doctor_command(commands) -> None:
    doctor = commands.add_parser(
        "doctor",
        help="versions, backends, and a self-test of every backend against the reference",
        description="Versions (qubd, torch, Triton, CUDA, native extension), the backends each device "
        "can use and the one it uses, a parity self-test of every backend against the torch reference "
        "on random tensors, and a throughput figure per backend. Exits 1 when a backend disagrees.",
    )
    doctor.add_argument(
        "--seconds", type=float, default=1.0, help="time each backend's throughput for this long (default 1)"
    )
    doctor.set_defaults(run=_run_doctor)


def _run_doctor(args: argparse.Namespace) -> None:
    from qubd.doctor import run_doctor

    status = run_doctor(lambda line: print(line, flush=True), seconds=args.seconds)
    if status:
        raise SystemExit(status)


class _BrokenPipe(Exception):
    """stdout was closed by its reader (``qubd score ... | head -1``)."""


def _console():
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:  # rich's own exits with status 1
            self.quiet = True
            raise _BrokenPipe

    console = _Console()
    if not console.is_terminal:
        console = _Console(width=max(console.width, MIN_TABLE_WIDTH))
    return console


def _run_score(args: argparse.Namespace) -> None:
    """Every output is checked before anything is read (``_score_outputs``); the output files are
    written (all or none: staged, then put in place together) before the table is printed, so a reader
    that closes stdout early (``| head``) does not cost them. With an output on stdout (``-``) the
    table is not printed."""
    from qubd.checkpoints.collector import collector_paused

    if args.dry_run:
        return _run_dry_run(args)
    with collector_paused():  # a checkpoint of many small tensors: see qubd.checkpoints.collector
        _score_and_write(args)


def _score_and_write(args: argparse.Namespace) -> None:
    from qubd.checkpoints import open_source
    from qubd.checkpoints.collector import collector_running
    from qubd.report import score_source
    from qubd.report.plots import plot_report
    from qubd.report.reference import open_reference
    from qubd.report.scores import model_sums
    from qubd.report.serialize import report_json_parts
    from qubd.report.table import print_report
    from qubd.report.writers import staged

    writes = writes_outputs()
    outputs, image_format = _score_outputs(args) if writes else ({}, None)
    options = _score_options(args)
    paths = _checkpoint_paths(args)
    if launched_by_torchrun():
        from qubd.distributed.launch import score_checkpoint

        if args.reference:
            _fail("--reference is not supported under torchrun yet; score with one process", EXIT_USAGE)
        report = score_checkpoint(paths, options, args.include, args.exclude)
    else:
        with (
            open_source(paths, args.include, args.exclude) as source,
            open_reference(args.reference, args.include, args.exclude) as reference,
        ):
            progress = not args.no_progress and sys.stderr.isatty()
            report = score_source(source, options, progress=progress, reference=reference)
    if not writes:
        return
    sums = model_sums(report)  # for the JSON report and the table
    with staged() as stage:
        if "json" in outputs:
            stage.write_text(outputs["json"], report_json_parts(report, sums))
        if "csv" in outputs:
            stage.write_text(outputs["csv"], report.to_csv())
        if "plot" in outputs:
            with collector_running():  # matplotlib's objects make cycles
                plot_report(report, outputs["plot"], image_format, stage)
    for name, out in outputs.items():
        _say_written(OUTPUT_KINDS[name], out.given)
    if not args.quiet and not any(out.is_stdout for out in outputs.values()):
        print_report(report, _console(), per_tensor=args.tensors, sums=sums)


OUTPUT_KINDS = {"json": "the JSON report", "csv": "the CSV of QuBD per tensor and plane", "plot": "the plot"}


def _say_written(what: str, path: str) -> None:
    """One line on stderr per file written, never mixed into data written to stdout."""
    from qubd.report.safe_text import printable

    where = "standard output" if str(path) == "-" else printable(str(path))
    print(f"qubd: wrote {what} to {where}", file=sys.stderr)


def _score_options(args: argparse.Namespace) -> ScoreOptions:
    """The options of ``qubd score`` and ``qubd series`` (``_add_score_options``), as one ScoreOptions."""
    from qubd.report.reference import resolve_baseline

    return ScoreOptions(
        bits=args.bits,
        clip=args.clip,
        baseline=resolve_baseline(args.baseline, args.reference),
        seed=args.seed,
        repeats=args.repeats,
        binary=args.binary,
        compressors=tuple(dict.fromkeys(args.compress)),
        nonfinite=args.nonfinite,
        device=args.device,
        advice_margin=args.advice_margin,
        layout=args.layout,
        manifold=args.manifold,
    )


def _run_series(args: argparse.Namespace) -> None:
    from qubd.report.safe_text import printable
    from qubd.report.series import score_series
    from qubd.report.table import series_table

    if args.binary or args.compress or args.manifold or args.layout != DEFAULT_LAYOUT:
        _fail(
            "--binary, --compress, --manifold and --layout are not part of a training log; use qubd score",
            EXIT_USAGE,
        )
    result = score_series(
        args.paths,
        args.json,
        steps=args.steps,
        reference=args.reference,
        include=args.include,
        exclude=args.exclude,
        progress=not args.no_progress and sys.stderr.isatty(),
        options=_score_options(args),
    )
    if result.scored:
        _say_written(f"the training log ({len(result.scored)} checkpoint(s) added)", args.json)
    else:
        print(
            f"qubd: {printable(args.json)} already holds every checkpoint; nothing written", file=sys.stderr
        )
    if not args.quiet:
        console = _console()
        console.print(series_table(result.log))
        console.print(
            f"Scored {len(result.scored)} checkpoint(s); {len(result.resumed)} already in {args.json} were "
            f"not scored again. Plot it: qubd plot {args.json} -o {args.json}.png",
            highlight=False,
        )


def _score_outputs(args: argparse.Namespace) -> tuple[dict, str | None]:
    """The checked outputs of ``qubd score`` by option name, and the plot's image format: each
    writable, none the same file as another or as one of the files of the checkpoint or the reference,
    at most one on stdout. Runs before any tensor is read (a folder's shard index is read to know
    its shards)."""
    from qubd.checkpoints import input_files
    from qubd.checkpoints.hub import resolve_checkpoint
    from qubd.report.plots import plot_format
    from qubd.report.writers import check_outputs

    given = {name: getattr(args, name) for name in ("json", "csv", "plot") if getattr(args, name) is not None}
    checkpoints = [resolve_checkpoint(p, args.revision) for p in args.paths]
    checkpoints += [args.reference] if args.reference else []
    inputs = [f for path in checkpoints for f in input_files(path)]
    outputs = dict(zip(given, check_outputs(given.values(), inputs), strict=True))
    image_format = plot_format(outputs["plot"].given) if "plot" in outputs else None
    return outputs, image_format


def _run_plot(args: argparse.Namespace) -> None:
    from qubd.report.plots import plot_file
    from qubd.report.writers import check_outputs

    (output,) = check_outputs([args.output], inputs=[args.report])
    plot_file(args.report, output)
    _say_written("the plot", args.output)


def _run_demo(args: argparse.Namespace) -> None:
    from qubd.report import score
    from qubd.report.demo import demo_model, train_demo_model
    from qubd.report.table import print_report

    if args.steps < 0:
        _fail(f"--steps must be >= 0, got {args.steps}", EXIT_USAGE)
    console = _console()
    model = demo_model(args.seed)
    before = score(model, seed=args.seed)
    console.print(
        f"Training a 64-256-256-10 MLP for {args.steps} steps on synthetic data "
        "(labels from 8 of its 64 inputs)...",
        highlight=False,
    )
    loss = train_demo_model(model, args.steps, seed=args.seed)
    after = score(model, seed=args.seed)
    after.source = f"the demo MLP after {args.steps} training steps"
    console.print(
        f"Loss after training: {loss:.3f}. Before training, QuBD was {before.total.ratio:.1f}% of the "
        f"shuffled weights' (most significant plane: {before.planes[-1].ratio:.1f}%).\n",
        highlight=False,
    )
    print_report(after, console)
    console.print(
        "\nTrained weights hold structure in their most significant planes: those are simpler than the "
        "same weights shuffled. Next: qubd score MODEL.safetensors --json report.json --plot report.png",
        highlight=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``qubd`` command line; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        with _terminating_signals_unwind():
            args.run(args)
    except (_BrokenPipe, BrokenPipeError):
        return _closed_stdout()
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except _Terminated as stop:
        _fail(f"terminated by {signal.Signals(stop.signum).name}", EXIT_SIGNAL_BASE + stop.signum)
    except SystemExit:
        raise
    except Exception as err:
        if os.environ.get("QUBD_TRACEBACK"):
            raise
        _fail(_describe(err), every_rank_alike=_is_qubd_error(err))
    return 0


def _closed_stdout() -> int:
    """The reader of stdout went away: the rest of the output has no reader, which is not an error
    (the output files were written first). Quietly exit 0; stdout goes to /dev/null so that Python's
    final flush does not complain either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (e.g. captured by a test)
        pass
    return 0


def _is_qubd_error(err: BaseException) -> bool:
    from qubd.checkpoints import CheckpointError
    from qubd.report import ReportError

    return isinstance(err, (CheckpointError, ReportError))


def _describe(err: BaseException) -> str:
    if _is_qubd_error(err):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return f"{type(err).__name__}: {err}"


if __name__ == "__main__":
    raise SystemExit(main())
