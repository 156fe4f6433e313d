"""The browser libraries the pages inline, so that they render with no network.

Vega, Vega-Lite and vega-embed draw the plots (of ``reports/K.html`` and of ``dvc plots
show``); jQuery and DataTables draw the sample table. They are copied, pinned, from the npm
registry's tarballs into ``browse/vendor/`` with their LICENSE files (``package.json`` there
lists the versions). ``python -m reflection_tuning.browse.vendor --update`` fetches them again
with ``npm pack``; ``python -m reflection_tuning.browse.vendor`` rewrites DVC's page template
``.dvc/plots.html`` (``plots.html_template`` in ``.dvc/config``) from the copies.

DVC's own page loads the three Vega libraries from a CDN through its ``{scripts}``
placeholder; our template leaves that placeholder out and inlines the copies instead.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from reflection_tuning.infra.io import write_text

VENDOR_DIR = Path(__file__).with_name("vendor")
DVC_TEMPLATE = Path(".dvc/plots.html")


@dataclass(frozen=True)
class Lib:
    package: str  # npm name
    version: str  # pinned
    file: str  # the file inside the npm tarball's package/ directory
    license: str  # its license file inside the tarball

    @property
    def name(self) -> str:
        return Path(self.file).name


VEGA = (
    Lib("vega", "6.2.0", "build/vega.min.js", "LICENSE"),
    Lib("vega-lite", "6.4.1", "build/vega-lite.min.js", "LICENSE"),
    Lib("vega-embed", "7.1.0", "build/vega-embed.min.js", "LICENSE"),
)
TABLE = (
    Lib("jquery", "3.7.1", "dist/jquery.min.js", "LICENSE.txt"),
    Lib("datatables.net", "2.3.4", "js/dataTables.min.js", "License.txt"),
    Lib("datatables.net-dt", "2.3.4", "css/dataTables.dataTables.min.css", "License.txt"),
)
LIBS = VEGA + TABLE

_SOURCE_MAP = re.compile(r"\n?//# sourceMappingURL=\S+\s*$")


def read(lib: Lib) -> str:
    """A vendored file's text, without its source-map comment (the map is not shipped).

    Raises:
        FileNotFoundError: the copy is missing (run ``--update``).
        ValueError: the text holds ``</script`` or ``</style``, which would end the inline element.
    """
    text = _SOURCE_MAP.sub("", (VENDOR_DIR / lib.name).read_text(encoding="utf-8"))
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"{lib.name}: cannot be inlined (holds a closing script/style tag)")
    return text


def inline(libs: tuple[Lib, ...]) -> str:
    """``<script>``/``<style>`` elements holding the libraries, in order, with their versions."""
    parts = []
    for lib in libs:
        tag = "style" if lib.name.endswith(".css") else "script"
        parts.append(f"<!-- {lib.package}@{lib.version} from npm; license: reflection_tuning/browse/vendor/"
                     f"{lib.package}.LICENSE -->\n<{tag}>{read(lib)}</{tag}>")
    return "\n".join(parts)


def dvc_template() -> str:
    """DVC's ``plots.html_template``: DVC's default page with the Vega libraries inlined.

    It has ``{plot_divs}`` and ``{refresh_tag}`` but no ``{scripts}``: DVC would fill that
    with CDN ``<script src>`` tags.
    """
    return (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n{refresh_tag}\n<title>DVC Plot</title>\n"
        + inline(VEGA)
        + "\n<style>table { border-spacing: 15px; }</style>\n</head>\n<body>\n{plot_divs}\n</body>\n</html>\n"
    )


def update(dest: Path = VENDOR_DIR) -> None:
    """Fetch every pinned library with ``npm pack`` and copy its file and license into ``dest``.

    Raises:
        subprocess.CalledProcessError: npm failed (no registry, unknown version).
    """
    with tempfile.TemporaryDirectory() as tmp:
        for lib in LIBS:
            out = subprocess.run(["npm", "pack", f"{lib.package}@{lib.version}", "--silent"], cwd=tmp,
                                 check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            with tarfile.open(Path(tmp) / out) as tar:
                tar.extractall(Path(tmp) / lib.package, filter="data")
            root = Path(tmp) / lib.package / "package"
            shutil.copyfile(root / lib.file, dest / lib.name)
            shutil.copyfile(root / lib.license, dest / f"{lib.package}.LICENSE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reflection_tuning.browse.vendor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="fetch the pinned libraries from npm first")
    parser.add_argument("--template", type=Path, default=DVC_TEMPLATE, help="default .dvc/plots.html")
    args = parser.parse_args(argv)
    if args.update:
        update()
    write_text(args.template, dvc_template())
    print(f"wrote {args.template}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
