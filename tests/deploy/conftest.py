import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_helpers as h  # noqa: E402


@pytest.fixture(scope="session")
def rendered_text() -> dict[str, str]:
    """Every kustomization under k8s/ as the pinned `kubectl kustomize` prints it."""
    return {rel: h.kustomize(h.REPO / rel) for rel in h.KUSTOMIZATIONS}


@pytest.fixture(scope="session")
def rendered(rendered_text) -> dict[str, list[dict]]:
    """The same, parsed: each kustomization's resources in kubectl's output order."""
    return {rel: h.parse_documents(text) for rel, text in rendered_text.items()}


@pytest.fixture(scope="session")
def base(rendered) -> list[dict]:
    return rendered["k8s/base"]


@pytest.fixture(scope="session")
def all_workloads(rendered) -> list[tuple[str, dict]]:
    return [(rel, w) for rel, res in rendered.items() for w in h.workloads(res)]
