"""Validate LaTeX with KaTeX (the TeX-math parser a web page would use), via Node.js.

KaTeX is found at $MATDIFF_KATEX or ./.katex/node_modules/katex (``.ci/run`` installs
it with ``npm install --prefix .katex katex``).  Without it the check is skipped on a
developer's machine and fails under CI, so CI never passes without having parsed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KATEX = Path(os.environ.get("MATDIFF_KATEX", ROOT / ".katex" / "node_modules" / "katex"))

_SCRIPT = (
    "const k = require(process.argv[1]); const items = JSON.parse(require('fs')"
    ".readFileSync(0, 'utf8')); let bad = [];"
    "for (const s of items) { try { k.renderToString(s, {displayMode: true,"
    " throwOnError: true, strict: 'ignore'}); } catch (e) { bad.push([s, e.message]); } }"
    "console.log(JSON.stringify(bad));"
)


def katex_errors(items: list[str]) -> list[list[str]]:
    """``[latex, error]`` for each string KaTeX cannot parse (empty when all parse)."""
    if shutil.which("node") is None or not KATEX.exists():
        msg = f"KaTeX not found at {KATEX} (npm install --prefix .katex katex)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    out = subprocess.run(["node", "-e", _SCRIPT, str(KATEX)], input=json.dumps(items),
                         text=True, capture_output=True, check=True, timeout=120)
    return json.loads(out.stdout)
