import ast
from pathlib import Path

import pytest

from tools import registry
from tools.package import package

ROOT = Path(__file__).resolve().parents[2]


def entry_points(main_py: Path) -> set[str]:
    """Functions of `main_py` registered with functions-framework (`@functions_framework[.aio].<signature>`)."""
    tree = ast.parse(main_py.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and any(ast.unparse(decorator).startswith("functions_framework.") for decorator in node.decorator_list)}


def test_every_registered_entry_point_is_a_function_of_its_main():
    shipped = registry.load()
    for deployment in shipped.deployments:
        assert deployment.entry_point in entry_points(ROOT / deployment.source / "main.py"), deployment.name


def test_the_shipped_registry_names_the_contracts_topics_and_buckets():
    shipped = registry.load()
    assert {"auth-events", "billing-events", "tenant-events", "provisioning-events"} <= set(shipped.topics)
    assert set(shipped.buckets) == {"INVOICE_BUCKET", "MANIFEST_BUCKET"}
    assert "SIGNING_KEY_SECRET" in shipped.secrets


def document(**deployment) -> dict:
    entry = {"name": "auth", "source": "functions/auth", "entry_point": "auth_http", **deployment}
    return {"topics": ["auth-events"], "secrets": {"SIGNING_KEY_SECRET": "auth-signing-key"}, "deployments": [entry]}


@pytest.mark.parametrize("change, message", [
    ({"topic": "nope-events"}, "topic 'nope-events' is not in the registry's topics"),
    ({"source": "functions/missing"}, "needs main.py and requirements.txt"),
    ({"entry_point": "auth-http"}, "is not a Python function name"),
    ({"secrets": ["OTHER"]}, "secret 'OTHER' is not in the registry's secrets"),
    ({"name": "Auth"}, "must match"),
    ({"trigger": "http"}, "unknown keys: trigger"),
])
def test_registry_mistakes_are_named(change, message):
    with pytest.raises(registry.RegistryError, match=message):
        registry.parse(document(**change), ROOT)


def test_duplicate_deployment_names_are_refused():
    doc = document()
    doc["deployments"].append(dict(doc["deployments"][0]))
    with pytest.raises(registry.RegistryError, match="duplicate deployment names: auth"):
        registry.parse(doc, ROOT)


def test_a_valid_event_deployment_parses():
    parsed = registry.parse(document(name="auth-key-rotation", topic="auth-events", secrets=["SIGNING_KEY_SECRET"]),
                            ROOT)
    deployment = parsed.deployment("auth-key-rotation")
    assert deployment.signature_type == "cloudevent"
    assert deployment.cloud_name("dev") == "energent-auth-key-rotation-dev"


def test_packaging_adds_the_shared_library_beside_main(tmp_path):
    out = package(ROOT / "functions" / "auth", tmp_path / "auth")
    assert (out / "main.py").read_text() == (ROOT / "functions/auth/main.py").read_text()
    assert (out / "requirements.txt").is_file()
    assert (out / "energent_shared" / "guard.py").is_file()
    assert not list(out.rglob("__pycache__"))


def test_packaging_refuses_a_checked_in_copy_of_the_shared_library(tmp_path):
    source = tmp_path / "fn"
    (source / "energent_shared").mkdir(parents=True)
    (source / "main.py").write_text("")
    (source / "requirements.txt").write_text("")
    with pytest.raises(FileExistsError):
        package(source, tmp_path / "out")


def test_every_function_requires_what_the_shared_library_imports():
    for requirements in ROOT.glob("functions/*/requirements.txt"):
        names = {line.split("==")[0].split("[")[0].strip().lower() for line in requirements.read_text().splitlines()
                 if line.strip() and not line.startswith("#")}
        assert {"functions-framework", "cloudevents"} <= names, requirements


# What a function's code reaches for, lazily or through the shared library, and the package that brings it.
CLIENT_PACKAGES = {"from google.cloud import compute_v1": "google-cloud-compute",
                   "clients.secret_manager": "google-cloud-secret-manager",
                   "clients.firestore": "google-cloud-firestore", "clients.storage": "google-cloud-storage",
                   "clients.publisher": "google-cloud-pubsub", "events.publish": "google-cloud-pubsub"}


def test_every_function_requires_the_clients_its_code_uses():
    """A client imported only when a request needs it fails in the cloud, not in tests (the test venv has every
    package): each function's requirements name the package of every client its code reaches."""
    for requirements in ROOT.glob("functions/*/requirements.txt"):
        names = {line.split("==")[0].strip().lower() for line in requirements.read_text().splitlines()
                 if line.strip() and not line.startswith("#")}
        code = "".join(path.read_text() for path in requirements.parent.rglob("*.py"))
        needed = {package for use, package in CLIENT_PACKAGES.items() if use in code}
        assert needed <= names, (requirements, needed - names)


def test_a_deployment_s_account_may_use_firestore_exactly_when_its_code_can():
    """Least privilege: `firestore: false` in the registry (no roles/datastore.user) for a function whose
    requirements bring no Firestore client, and only for such a function."""
    for deployment in registry.load().deployments:
        requirements = ROOT / deployment.source / "requirements.txt"
        names = {line.split("==")[0].strip().lower() for line in requirements.read_text().splitlines()
                 if line.strip() and not line.startswith("#")}
        assert ("google-cloud-firestore" in names) == deployment.firestore, deployment.name
