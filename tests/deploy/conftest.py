import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_helpers as h  # noqa: E402


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict]]:
    """Every kustomization under k8s/, rendered by kustomize_lite."""
    return {rel: h.render(rel) for rel in h.KUSTOMIZATIONS}


@pytest.fixture(scope="session")
def base(rendered) -> list[dict]:
    return rendered["k8s/base"]


@pytest.fixture(scope="session")
def all_workloads(rendered) -> list[tuple[str, dict]]:
    return [(rel, w) for rel, res in rendered.items() for w in h.workloads(res)]
