"""A report document: blocks (headings, paragraphs, tables, figures) rendered to both
Markdown (figures linked relative to the report) and a self-contained HTML file (figures
embedded as base64 PNG), and the atomic file write the report uses."""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path

from deepalign.reports.tables import Table

__all__ = ["Document", "write_atomic"]


class Document:
    """Blocks rendered to both Markdown and HTML; figure paths relative to `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks: list[tuple[str, object]] = []
        self.figures: list[Path] = []

    def heading(self, level: int, words: str) -> None:
        self.blocks.append((f"h{level}", words))

    def paragraph(self, words: str) -> None:
        self.blocks.append(("p", words))

    def table(self, table: Table) -> None:
        self.blocks.append(("table", table))

    def figure(self, path: Path, caption: str) -> None:
        self.figures.append(path)
        self.blocks.append(("figure", (path, caption)))

    def markdown(self) -> str:
        out = []
        for kind, content in self.blocks:
            if kind.startswith("h"):
                out.append("#" * int(kind[1:]) + " " + str(content))
            elif kind == "p":
                out.append(str(content))
            elif kind == "table":
                out.append(content.markdown())  # type: ignore[union-attr]
            else:
                path, caption = content  # type: ignore[misc]
                out.append(f"![{caption}]({path.relative_to(self.root).as_posix()})\n\n"
                           f"*{caption}*")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body = []
        for kind, content in self.blocks:
            if kind.startswith("h"):
                body.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{html.escape(str(content))}</p>")
            elif kind == "table":
                body.append(content.html())  # type: ignore[union-attr]
            else:
                path, caption = content  # type: ignore[misc]
                # embedded, so report.html alone carries its figures
                source = "data:image/png;base64," + base64.b64encode(
                    Path(path).read_bytes()).decode("ascii")
                body.append(f"<figure><img src=\"{source}\" alt=\"{html.escape(caption)}\">"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
                 "td,th{border:1px solid #ccc;padding:3px 6px}caption{font-style:italic}"
                 "img{max-width:100%}")
        return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
                f"{html.escape(title)}</title><style>{style}</style></head><body>"
                + "\n".join(body) + "</body></html>\n")


def write_atomic(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # never a temporary part left behind
        raise
