"""deploy/k8s/: every manifest is valid Kubernetes, and agrees with the service it runs.

The kustomizations (base, GPU overlay, and the overlay with each optional component) are
built by ``tests/kustomize_lite.py`` and every object is validated against the official
Kubernetes OpenAPI schemas bundled by ``kubernetes-validate`` (strict: unknown fields
fail), for the oldest and newest Kubernetes versions we claim. KEDA's ScaledObject is a
custom resource with no bundled schema: it is checked against the subset of KEDA's
documented spec that the manifest uses (``SCALED_OBJECT_SCHEMA`` below). Then the values
are read beside the service's own settings: probe paths and port, the grace period above
preStop + ``SHUTDOWN_GRACE_SECONDS`` + uvicorn's shutdown timeout, the cache volume
larger than ``VOICE_CACHE_MAX_BYTES``, the metrics the autoscalers query.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from app.config import Settings
from app.main import create_app
from app.observability.metrics import Metrics
from tests.kustomize_lite import Manifest, build, load_yaml_documents, merge

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
VERSIONS = ("1.29.0", "1.37.0")
# app/__main__.py gives uvicorn this much after the drain (checked against its source).
UVICORN_GRACEFUL_SHUTDOWN_S = 5
# Environment variables in the ConfigMap that libraries read (documented in .env.example).
LIBRARY_ENV = {"HF_HOME", "HF_HUB_OFFLINE", "TQDM_DISABLE"}

SCALED_OBJECT_SCHEMA: dict[str, Any] = {
    # From keda.sh/docs (ScaledObject spec and the Prometheus scaler), the fields used here.
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["scaleTargetRef", "triggers"],
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"type": "string"},
                        "apiVersion": {"type": "string"},
                    },
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "advanced": {
                    "type": "object",
                    "properties": {
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "properties": {"behavior": {"type": "object"}},
                        }
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            # KEDA reads trigger metadata as strings only.
                            "metadata": {
                                "type": "object",
                                "required": ["serverAddress", "query", "threshold"],
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}

BUILDS = {
    "base": lambda: build(K8S / "base"),
    "gpu": lambda: build(K8S / "overlays" / "gpu"),
    "gpu+hpa+ingress": lambda: _overlay_with(["hpa-custom-metric", "ingress"]),
}


def _overlay_with(components: list[str]) -> list[Manifest]:
    """The GPU overlay with other components in place of KEDA (what a user would do)."""
    objects = [o for o in build(K8S / "overlays" / "gpu") if o["kind"] != "ScaledObject"]
    for name in components:
        for obj in build(K8S / "components" / name):
            obj["metadata"]["namespace"] = "tts"
            objects.append(obj)
    return objects


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def validate(obj: Manifest, version: str) -> None:
    if obj["kind"] == "ScaledObject":
        jsonschema.validate(obj, SCALED_OBJECT_SCHEMA)
    else:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_every_built_object_is_valid_kubernetes(name: str, version: str) -> None:
    objects = BUILDS[name]()
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= {
        o["kind"] for o in objects
    }
    for obj in objects:
        validate(obj, version)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_file_is_valid_on_its_own(version: str) -> None:
    """Files outside any kustomization (the Secret example) are checked too."""
    checked = 0
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or path.name == "prometheus-adapter-rules.yaml":
            continue
        for doc in load_yaml_documents(path):
            if _is_patch(path):
                continue  # validated after merging (above)
            validate(doc, version)
            checked += 1
    assert checked >= 9


def _is_patch(path: Path) -> bool:
    return path.parent.name == "gpu" and path.name != "hf-cache-pvc.yaml"


def test_validation_catches_a_misspelt_field() -> None:
    """The check is real: a typo in a probe (an unknown field) fails strict validation."""
    deployment = one(build(K8S / "base"), "Deployment")
    broken = merge(deployment, {"spec": {"template": {"spec": {"containers": [
        {"name": "tts", "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"},
                                           "periodSecond": 2}}
    ]}}}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def settings_from(objects: list[Manifest]) -> Settings:
    data = dict(one(objects, "ConfigMap")["data"])
    fields = {name.upper() for name in Settings.model_fields}
    unknown = set(data) - fields - LIBRARY_ENV
    assert not unknown, f"ConfigMap keys that no setting reads: {sorted(unknown)}"
    values = {k.lower(): v for k, v in data.items() if k in fields}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def container(objects: list[Manifest]) -> dict[str, Any]:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.mark.parametrize("name", ["base", "gpu"])
def test_probes_grace_and_prestop_match_the_service(name: str) -> None:
    objects = BUILDS[name]()
    settings = settings_from(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    tts = container(objects)
    ports = {p["name"]: p["containerPort"] for p in tts["ports"]}
    assert ports["http"] == settings.port

    app_paths = set(create_app(settings).openapi()["paths"])
    probes = {kind: tts[kind]["httpGet"] for kind in
              ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/ready"  # 503 when full or draining
    assert probes["livenessProbe"]["path"] == "/health"
    for probe in probes.values():
        assert probe["path"] in app_paths and probe["port"] in ("http", settings.port)

    main_source = (ROOT / "app" / "__main__.py").read_text()
    assert f"timeout_graceful_shutdown={UVICORN_GRACEFUL_SHUTDOWN_S}" in main_source
    command = tts["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop_s = float(command[1])
    grace = pod["terminationGracePeriodSeconds"]
    needed = (pre_stop_s + settings.shutdown_deregister_seconds
              + settings.shutdown_grace_seconds + UVICORN_GRACEFUL_SHUTDOWN_S)
    assert grace > needed, f"grace {grace}s must exceed {needed}s"
    # Readiness notices a full replica within a couple of seconds.
    readiness = tts["readinessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 5


@pytest.mark.parametrize("name", ["base", "gpu"])
def test_pod_security_volumes_and_wiring(name: str) -> None:
    objects = BUILDS[name]()
    settings = settings_from(objects)
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    tts = container(objects)

    uid = int(re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))  # type: ignore[union-attr]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert tts["securityContext"]["allowPrivilegeEscalation"] is False
    assert tts["resources"]["requests"] and tts["resources"]["limits"]
    sources = {next(iter(s)) : next(iter(s.values()))["name"] for s in tts["envFrom"]}
    assert sources == {"configMapRef": "telephony-tts-config",
                       "secretRef": "telephony-tts-secrets"}

    mounts = {m["mountPath"]: m["name"] for m in tts["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    cache = volumes[mounts[str(settings.voice_cache_dir)]]
    limit = cache["emptyDir"]["sizeLimit"]
    assert limit.endswith("Gi")
    assert int(limit[:-2]) * 2**30 > settings.voice_cache_max_bytes * 1.2

    labels = pod.get("labels") or deployment["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_gpu_overlay_requests_a_gpu_and_a_model_cache() -> None:
    objects = BUILDS["gpu"]()
    settings = settings_from(objects)
    assert settings.tts_engine == "chatterbox"
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    tts = container(objects)
    assert tts["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] and pod["tolerations"]
    hf_home = one(objects, "ConfigMap")["data"]["HF_HOME"]
    mounts = {m["mountPath"]: m["name"] for m in tts["volumeMounts"]}
    volume = {v["name"]: v for v in pod["volumes"]}[mounts[hf_home]]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert one(objects, "PersistentVolumeClaim")["metadata"]["name"] == claim
    assert tts["image"].startswith("ghcr.io/") and ":" in tts["image"]
    assert all(o["metadata"].get("namespace") == "tts" for o in objects)
    # The base's settings that the overlay did not change are still there.
    assert settings.shutdown_grace_seconds == 20


def test_autoscalers_query_metrics_the_service_exports() -> None:
    metrics = Metrics()
    metrics.bind(slots_in_use=lambda: 1, slots_max=lambda: 8, queue_depth=lambda: 0,
                 draining=lambda: 0.0)
    exported = set(re.findall(r"^(tts_\w+)", metrics.render().decode(), re.MULTILINE))
    scaled = one(BUILDS["gpu"](), "ScaledObject")
    query = scaled["spec"]["triggers"][0]["metadata"]["query"]
    deployment = one(BUILDS["gpu"](), "Deployment")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    rules = yaml.safe_load((K8S / "components" / "hpa-custom-metric" /
                            "prometheus-adapter-rules.yaml").read_text())
    adapter_query = rules["rules"]["custom"][0]["metricsQuery"]
    for text in (query, adapter_query):
        used = set(re.findall(r"\b(tts_\w+)\{", text))
        assert used == {"tts_slots_in_use", "tts_slots_max"} and used <= exported
    hpa = one(BUILDS["gpu+hpa+ingress"](), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == (
        rules["rules"]["custom"][0]["name"]["as"]
    )
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]


def test_ingress_routes_the_api_but_not_metrics_or_ready() -> None:
    ingress = one(BUILDS["gpu+hpa+ingress"](), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    routed = [(p["path"], p["pathType"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]]

    def is_routed(path: str) -> bool:
        return any(path == p or (kind == "Prefix" and path.startswith(p.rstrip("/") + "/"))
                   for p, kind in routed)

    app_paths = set(create_app(Settings(_env_file=None)).openapi()["paths"])  # type: ignore[call-arg]
    private = {"/metrics", "/ready"}
    for path in app_paths - private:
        assert is_routed(path.replace("{voice_id}", "x")), path
    assert not any(is_routed(p) for p in private)
    assert is_routed("/ws/synthesize-stream") and is_routed("/ws/synthesize")


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
@pytest.mark.parametrize("directory", ["base", "overlays/gpu"])
def test_lite_build_equals_kubectl_kustomize(directory: str) -> None:
    """Where the real kustomize exists (kubectl's), the test loader builds the same thing."""
    out = subprocess.run(["kubectl", "kustomize", str(K8S / directory)], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    real = [d for d in yaml.safe_load_all(out) if d]

    def key(o: Manifest) -> tuple[str, str]:
        return (o["kind"], o["metadata"]["name"])

    assert sorted(real, key=key) == sorted(build(K8S / directory), key=key)
