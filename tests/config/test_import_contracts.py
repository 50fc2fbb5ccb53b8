"""The import rules hold by a linter, not by discipline: `lint-imports` (run by `make test`) keeps
every contract on this tree and breaks the right one when a forbidden import appears; the two
calls that go up the layers through settings strings point where the layers allow."""

from __future__ import annotations

import importlib
import inspect
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.conf import settings
from django.utils.module_loading import import_string

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first, so the copy under test is analysed, not the installed checkout.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, env={"PYTHONPATH": str(cwd)}
    )


def test_the_tree_keeps_every_import_contract() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("path", "line", "contract"),
    [
        ("annotation/selectors.py", "from modeling import selectors as _upwards", "app-layers"),
        ("consensus/models.py", "from modeling.models import ModelVersion as _upwards", "app-layers"),
        ("modeling/ml/metrics.py", "import django as _web", "ml-no-django"),
        ("modeling/ml/data.py", "from modeling import services as _app", "ml-no-django"),
        ("scoring/agreement.py", "import torch as _torch", "scoring-pure"),
        ("scoring/reliability.py", "from consensus import aggregation as _app", "scoring-pure"),
        ("consensus/services.py", "from consensus import bench_dawid_skene as _bench", "no-benchmark-in-production"),
    ],
)
def test_a_forbidden_import_breaks_its_contract_and_only_that_one(tmp_path: Path, path: str, line: str, contract: str) -> None:
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / path).open("a") as f:
        f.write(f"\n{line}\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert f"{CONTRACTS[contract]['name']} BROKEN" in result.stdout
    assert f"Contracts: {len(CONTRACTS) - 1} kept, 1 broken." in result.stdout


def _layer_of(package: str) -> int:
    for index, layer in enumerate(CONTRACTS["app-layers"]["layers"]):
        if package in [name.strip() for name in layer.replace(":", "|").split("|")]:
            return index
    raise AssertionError(f"{package} is in no layer")


@pytest.mark.parametrize(
    ("setting", "consumer", "keyword"),
    [("SUGGESTION_PROVIDER", "annotation.selectors", "radiograph"), ("MODEL_READER_PROVIDER", "consensus.agreement_report", "project")],
)
def test_settings_providers_are_called_by_a_lower_layer_through_config_only(setting: str, consumer: str, keyword: str) -> None:
    # The linter cannot see a dotted path in a string; this test can. The provider sits in a layer
    # above its caller (which may therefore not import it), config names it, and the caller reads
    # the setting and calls it with the keyword the provider takes.
    path = getattr(settings, setting)
    provider = import_string(path)
    assert callable(provider)
    provider_app, consumer_app = path.split(".")[0], consumer.split(".")[0]
    assert _layer_of(provider_app) < _layer_of(consumer_app), f"{setting} points down the layers: import it instead"
    assert _layer_of("config") < _layer_of(provider_app)
    source = inspect.getsource(importlib.import_module(consumer))
    assert f'getattr(settings, "{setting}"' in source
    assert f"{keyword}=" in source
    inspect.signature(provider).bind(**{keyword: None})
