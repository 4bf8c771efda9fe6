"""The house's layout: every product tool and every study is listed in its folder's index."""
import glob
import os

import pytest
from conftest import ROOT


@pytest.mark.parametrize("folder", ["tools", "studies"])
def test_every_script_is_listed_in_its_index(folder):
    index = open(os.path.join(ROOT, folder, "README.md")).read()
    scripts = [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, folder, "*.py"))]
    scripts += [os.path.basename(p) for p in glob.glob(os.path.join(ROOT, folder, "*.sh"))]
    assert scripts
    for name in scripts:
        assert f"| `{name}` |" in index, f"{folder}/{name} is not in {folder}/README.md"
        assert f"{folder}/{name}" in index, f"{folder}/README.md gives no example of {name}"


def test_studies_are_not_in_tools():
    """Drivers of the docs' studies and probes live in studies/, not among the product tools."""
    study_names = ("benchmark_kd", "distill_cost", "overfit_batch", "detrex_dab_detr")
    for path in glob.glob(os.path.join(ROOT, "tools", "*.py")):
        name = os.path.basename(path)[:-3]
        assert name not in study_names and not name.startswith("probe_"), path
