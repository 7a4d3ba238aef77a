"""Build step: put KaTeX inside the package, so the page works offline.

``pip install ".[web]"`` (or ``python -m build``) runs setuptools' ``build_py``; this
subclass (named in pyproject.toml, ``[tool.setuptools.cmdclass]``) then copies
KaTeX's ``katex.min.js``, ``katex.min.css``, its WOFF2 fonts and its licence into
``matdiff/web/static/katex/`` of the build.  The KaTeX it copies is the first of:

1. ``$MATDIFF_KATEX`` (a ``node_modules/katex`` folder);
2. the checkout's ``.katex/node_modules/katex`` (``npm install --prefix .katex katex@0.16``,
   which the tests use too);
3. ``npm install katex@0.16`` into a temporary folder, where npm is on the PATH
   (``MATDIFF_KATEX_NPM=0`` turns this off).

Without any of them the build goes on with a warning, and the page shows formulas as
Unicode text.  Only the WOFF2 fonts are copied (every browser that runs the page reads
them; KaTeX's CSS lists the WOFF and TTF files only as fallbacks): about 0.6 MB in all.
KaTeX is MIT-licensed; its LICENSE goes along.

This module is loaded by setuptools from its file, in the build's own environment: it
imports the standard library and setuptools only, never matdiff.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from setuptools.command.build_py import build_py

#: the KaTeX release line the page is written for
KATEX_SPEC = "katex@0.16"


def _is_katex(path: Path) -> bool:
    return (path / "dist" / "katex.min.js").is_file() and (path / "dist" / "katex.min.css"
                                                           ).is_file()


def find_katex(root: Path) -> Path | None:
    """An installed ``node_modules/katex`` folder (1. and 2. above), or ``None``."""
    env = os.environ.get("MATDIFF_KATEX")
    for c in ([Path(env)] if env else []) + [root / ".katex" / "node_modules" / "katex"]:
        if _is_katex(c):
            return c
    return None


def copy_katex(katex: Path, dest: Path) -> list[Path]:
    """Copy what the page needs of ``katex`` (a ``node_modules/katex`` folder) into
    ``dest``; the files written."""
    dist = katex / "dist"
    (dest / "fonts").mkdir(parents=True, exist_ok=True)
    out = []
    for name in ("katex.min.js", "katex.min.css"):
        out.append(Path(shutil.copyfile(dist / name, dest / name)))
    for font in sorted((dist / "fonts").glob("*.woff2")):
        out.append(Path(shutil.copyfile(font, dest / "fonts" / font.name)))
    for name in ("LICENSE", "package.json"):
        if (katex / name).is_file():
            out.append(Path(shutil.copyfile(katex / name, dest / name)))
    return out


class BuildPy(build_py):
    """``build_py``, then KaTeX into ``matdiff/web/static/katex`` of the build."""

    def run(self) -> None:
        super().run()
        dest = Path(self.build_lib) / "matdiff" / "web" / "static" / "katex"
        root = Path.cwd()
        katex = find_katex(root)
        if katex is not None:
            copy_katex(katex, dest)
            self.announce(f"matdiff: KaTeX copied from {katex}", level=2)
            return
        npm = shutil.which("npm")
        if npm and os.environ.get("MATDIFF_KATEX_NPM", "1") != "0":
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund",
                                    "--prefix", tmp, KATEX_SPEC], check=True, timeout=180)
                except (subprocess.SubprocessError, OSError) as exc:
                    self.warn(f"matdiff: npm could not install {KATEX_SPEC} ({exc})")
                else:
                    katex = Path(tmp) / "node_modules" / "katex"
                    if _is_katex(katex):
                        copy_katex(katex, dest)
                        self.announce(f"matdiff: KaTeX installed with npm ({KATEX_SPEC})",
                                      level=2)
                        return
        self.warn("matdiff: KaTeX not found (set MATDIFF_KATEX, or npm install --prefix "
                  f".katex {KATEX_SPEC}): the page of 'matdiff serve' will show formulas "
                  "as Unicode text")
