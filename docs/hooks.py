"""mkdocs hooks: the docs show matdiff's real output, and math renders offline.

- A fenced block ```` ```matdiff ```` holds the arguments of one ``matdiff`` command;
  the build runs it (in process) and shows the command and what it printed. A command
  that fails (exit status other than 0) fails the build, so the pages stay true to the
  code.
- A fenced block ```` ```python run ```` is run, and what it prints is shown under it.
- KaTeX comes from the npm install the tests use (``.katex/node_modules/katex/dist``)
  and is copied into the site: no CDN.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KATEX = ROOT / ".katex" / "node_modules" / "katex" / "dist"
_BLOCK = re.compile(r"^```(matdiff|python run)\n(.*?)^```\n", re.S | re.M)


def _run_command(args: str) -> str:
    from matdiff import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main(shlex.split(args))
    if code != 0:
        raise RuntimeError(f"docs: `matdiff {args}` exited with {code}:\n{out.getvalue()}")
    return f"```console\n$ matdiff {args}\n{out.getvalue().rstrip()}\n```\n"


def _run_python(code: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<docs>", "exec"), {"__name__": "__docs__"})  # our own docs
    shown = "\n".join("# " + line if line else "#" for line in out.getvalue().rstrip().split("\n"))
    return f"```python\n{code.rstrip()}\n{shown}\n```\n"


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ANN001
    def replace(m: re.Match) -> str:
        kind, body = m.group(1), m.group(2)
        if kind == "matdiff":
            return "".join(_run_command(line) for line in body.strip().splitlines())
        return _run_python(body)

    return _BLOCK.sub(replace, markdown)


def on_post_build(config) -> None:  # noqa: ANN001
    if not KATEX.is_dir():
        raise RuntimeError(f"docs: KaTeX is not installed at {KATEX}; run "
                           "npm install --prefix .katex katex@0.16")
    dest = Path(config["site_dir"]) / "assets" / "katex"
    shutil.copytree(KATEX, dest, dirs_exist_ok=True)
