"""``Report``: a score's record (``qubd.report.scores``) with its views (JSON, CSV, plots, pandas,
repr); the views import the record, never the other way round."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from qubd.report.display import report_html, report_repr
from qubd.report.frames import plane_frame, tensor_frame
from qubd.report.plots import plot_report
from qubd.report.scores import ReportData
from qubd.report.serialize import read_json, report_from_dict, report_to_csv, report_to_dict, report_to_json
from qubd.report.writers import Output, check_outputs, write_text

if TYPE_CHECKING:
    import pandas


class Report(ReportData):
    """A model's or checkpoint's QuBD (``ReportData``), written as JSON or CSV, plotted, or shown.

    Its files are written like every qubd output (``qubd.report.writers``: checked, atomic); like
    ``qubd score --json``, they refuse a path that is one of ``inputs``, the files of the checkpoint
    (and reference) that ``qubd.score`` read. A report read back from JSON has no inputs."""

    inputs: tuple[Path, ...] = ()

    @classmethod
    def of(cls, data: ReportData) -> Report:
        """``data`` with its views."""
        return cls(**{f.name: getattr(data, f.name) for f in fields(data)})

    def to_dict(self) -> dict:
        return report_to_dict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        """The report as JSON text; written atomically to ``path`` when given."""
        text = report_to_json(self)
        if path is not None:
            write_text(self._destination(path), text)
        return text

    def to_csv(self, path: str | Path | None = None) -> str:
        """One row per tensor and plane (and totals) as CSV text; written atomically to ``path``."""
        text = report_to_csv(self)
        if path is not None:
            write_text(self._destination(path), text)
        return text

    def plot(self, path: str | Path) -> None:
        """Per-plane ratio bars and a tensor x plane heatmap, as an image at ``path`` (matplotlib)."""
        plot_report(self, self._destination(path))

    def _destination(self, path: str | Path) -> Output:
        (output,) = check_outputs([path], self.inputs)
        return output

    def to_pandas(self, by: str = "tensor") -> pandas.DataFrame:
        """A pandas DataFrame (needs the ``pandas`` extra): ``by="tensor"``, one row per tensor and plane
        (skipped tensors with their reason); ``by="plane"``, QuBD per plane summed over the model."""
        frames = {"tensor": tensor_frame, "plane": plane_frame}
        if by not in frames:
            raise ValueError(f"by must be 'tensor' or 'plane', got {by!r}")
        return frames[by](self)

    def __repr__(self) -> str:
        return report_repr(self)

    def _repr_html_(self) -> str:
        return report_html(self)

    @classmethod
    def from_dict(cls, data: dict) -> Report:
        return cls.of(report_from_dict(data))

    @classmethod
    def from_json(cls, path: str | Path) -> Report:
        return cls.of(report_from_dict(read_json(path)))
