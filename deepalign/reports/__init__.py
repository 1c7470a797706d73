"""deepalign.reports: Markdown / HTML reports with figures, built from a results table."""

from deepalign.reports.build import Report, build_report

__all__ = ["Report", "build_report"]
