"""The ``qubd`` command: ``qubd demo``, ``qubd score PATH ...``, ``qubd plot REPORT.json -o PNG``.

Every failure is one line ``qubd: error: ...`` on stderr and a non-zero exit status, without a
traceback (set ``QUBD_TRACEBACK=1`` to see one).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from qubd.report.options import BASELINE_ALIASES, BASELINES, COMPRESSORS, DEVICES, NONFINITE_POLICIES, SHUFFLE

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MIN_TABLE_WIDTH = 110


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, like every other error."""

    def error(self, message: str):
        _fail(f"{message} (see '{self.prog} --help')", EXIT_USAGE)


def _fail(message: str, status: int = EXIT_ERROR):
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"qubd: error: {first_line}", file=sys.stderr)
    raise SystemExit(status)


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
        default=SHUFFLE,
        choices=(*BASELINES, *BASELINE_ALIASES),
        help="shuffle: each tensor's values permuted (default); reinit: a module's random "
        "re-initialisation (modules only); none",
    )
    q.add_argument("--seed", type=int, default=0, help="seed of the baseline (default 0)")
    q.add_argument("--repeats", type=int, default=1, help="baseline runs: mean and std (default 1)")
    q.add_argument("--binary", action="store_true", help="also the binary baseline BDM(W > 0)")
    q.add_argument(
        "--compress",
        action="append",
        choices=COMPRESSORS,
        default=[],
        help="also the compressed size of the packed bit-planes (repeatable)",
    )
    q.add_argument(
        "--advice-margin",
        type=float,
        default=1.0,
        help="percentage points below 100%% for a plane to count as below baseline (default 1)",
    )
    q.add_argument("--device", default="auto", choices=DEVICES, help="where to score (default auto)")


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
    pick = score.add_argument_group("which tensors")
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
    out = score.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    out.add_argument("--csv", metavar="PATH", help="write QuBD per tensor and plane as CSV")
    out.add_argument("--plot", metavar="PNG", help="write per-plane ratio bars and a tensor x plane heatmap")
    out.add_argument("--tensors", action="store_true", help="also print a table of the tensors")
    out.add_argument("--quiet", action="store_true", help="print no table")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    score.set_defaults(run=_run_score)

    plot = commands.add_parser("plot", help="plot a JSON report or training log")
    plot.add_argument("report", metavar="REPORT.json")
    plot.add_argument("-o", "--output", required=True, metavar="PNG", help="image to write")
    plot.set_defaults(run=_run_plot)
    return parser


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
    """Every output path and the plot's format are checked before scoring; the output files are
    written (all or none: staged, then put in place together) before the table is printed, so a reader
    that closes stdout early (``| head``) does not cost them."""
    from qubd.checkpoints import open_source
    from qubd.report import ScoreOptions, score_source
    from qubd.report.plots import plot_format, plot_report
    from qubd.report.table import print_report
    from qubd.report.writers import check_writable, staged

    writes = _writes_outputs()
    outputs = [p for p in (args.json, args.csv, args.plot) if p and writes]
    for path in outputs:
        check_writable(path)
    image_format = plot_format(args.plot) if args.plot and writes else None
    options = ScoreOptions(
        bits=args.bits,
        clip=args.clip,
        baseline=args.baseline,
        seed=args.seed,
        repeats=args.repeats,
        binary=args.binary,
        compressors=tuple(dict.fromkeys(args.compress)),
        nonfinite=args.nonfinite,
        device=args.device,
        advice_margin=args.advice_margin,
    )
    paths = args.paths[0] if len(args.paths) == 1 else args.paths
    if _launched_by_torchrun():
        from qubd.distributed.launch import score_checkpoint

        report = score_checkpoint(paths, options, args.include, args.exclude)
    else:
        with open_source(paths, args.include, args.exclude) as source:
            report = score_source(source, options, progress=not args.no_progress and sys.stderr.isatty())
    if not writes:
        return
    with staged() as stage:
        if args.json:
            report.to_json(stage.path(args.json))
        if args.csv:
            report.to_csv(stage.path(args.csv))
        if args.plot:
            plot_report(report, stage.path(args.plot), image_format)
    if not args.quiet:
        print_report(report, _console(), per_tensor=args.tensors)


def _launched_by_torchrun() -> bool:
    from qubd.distributed.launch import launched_by_torchrun

    return launched_by_torchrun()


def _writes_outputs() -> bool:
    """Under torchrun only rank 0 writes the outputs and prints the table."""
    from qubd.distributed.launch import writes_outputs

    return writes_outputs()


def _run_plot(args: argparse.Namespace) -> None:
    from qubd.report.plots import plot_file, plot_format
    from qubd.report.writers import check_writable

    check_writable(args.output)
    plot_format(args.output)
    plot_file(args.report, args.output)


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
        args.run(args)
    except (_BrokenPipe, BrokenPipeError):
        return _closed_stdout()
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except Exception as err:
        if os.environ.get("QUBD_TRACEBACK"):
            raise
        _fail(_describe(err))
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


def _describe(err: BaseException) -> str:
    from qubd.checkpoints import CheckpointError
    from qubd.report import ReportError

    if isinstance(err, (CheckpointError, ReportError)):
        return str(err)
    if isinstance(err, OSError) and err.filename:
        return f"{err.filename}: {err.strerror or err}"
    return f"{type(err).__name__}: {err}"


if __name__ == "__main__":
    raise SystemExit(main())
