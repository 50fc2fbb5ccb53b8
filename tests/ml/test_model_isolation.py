"""The model package must run on a machine that has torch and numpy but no Django.

The static rule is an import contract (tests/config/test_import_contracts.py); these check what
importing the packages actually loads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ML = Path(__file__).resolve().parents[2] / "modeling" / "ml"


def test_importing_the_model_package_loads_no_django():
    code = (
        "import sys, modeling.ml.networks, modeling.ml.data, modeling.ml.train, modeling.ml.inference, "
        "modeling.ml.metrics, modeling.ml.heatmaps, modeling.ml.bench; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'annotation', 'consensus', 'config')))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ML.parents[1], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_shared_maths_package_loads_neither_django_nor_the_apps_nor_torch():
    code = (
        "import sys, scoring.agreement, scoring.reliability, scoring.readers; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'annotation', 'consensus', 'modeling', 'config', 'torch'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ML.parents[1], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
