"""Validation of rendered manifests as the cluster would see them.

Built-in kinds are checked against the Kubernetes 1.30 JSON schemas (strict: unknown fields fail) from
kubernetes-validate. Flux, kustomize, Config Connector and External Secrets kinds are checked against the parts of
their published CRD schemas that we use (kustomize.toolkit.fluxcd.io/v1, kustomize.config.k8s.io/v1beta1,
iam/container/compute.cnrm.cloud.google.com/v1beta1, external-secrets.io/v1): required fields, types, enums, the
one-of of Config Connector's references, and no unknown spec fields.
"""

from __future__ import annotations

import jsonschema

KUBERNETES_VERSION = "1.30.0"
_DURATION = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253}
_METADATA = {"type": "object", "required": ["name"], "properties": {
    "name": _NAME, "namespace": _NAME,
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}}}}
_REF = {"type": "object", "properties": {"name": {"type": "string"}, "namespace": {"type": "string"},
                                         "external": {"type": "string"}, "kind": {"type": "string"},
                                         "apiVersion": {"type": "string"}}, "additionalProperties": False}

# A Config Connector reference as its CRDs write it: a Config Connector object by `name` (and `namespace`), or one
# made elsewhere by `external`, never both.
_CC_REF = {"type": "object", "additionalProperties": False,
           "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "external": {"type": "string"}},
           "oneOf": [{"required": ["name"], "not": {"required": ["external"]}},
                     {"required": ["external"],
                      "not": {"anyOf": [{"required": ["name"]}, {"required": ["namespace"]}]}}]}



def _cc_ref_to(external: str) -> dict:
    """A Config Connector reference whose `external` takes the form its CRD names: a bare resource name, or a
    path (`projects/.../regions/.../routers/...`)."""
    return {**_CC_REF, "properties": {**_CC_REF["properties"], "external": {"type": "string", "pattern": external}}}


_GCP_NAME = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
_ROUTER_PATH = r"^projects/[^/]+/regions/[^/]+/routers/[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
_K8S_NAME = {"type": "string", "minLength": 1, "maxLength": 253,
             "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"}


def _resource(spec: dict | None, **top: dict) -> dict:
    properties = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": _METADATA, **top}
    required = ["apiVersion", "kind", "metadata"]
    if spec is not None:
        properties["spec"] = spec
        required.append("spec")
    return {"type": "object", "required": required, "properties": properties, "additionalProperties": False}


SCHEMAS: dict[tuple[str, str], dict] = {
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): _resource({
        "type": "object", "required": ["interval", "prune", "sourceRef"], "additionalProperties": False,
        "properties": {
            "interval": _DURATION, "retryInterval": _DURATION, "timeout": _DURATION,
            "path": {"type": "string"}, "prune": {"type": "boolean"}, "wait": {"type": "boolean"},
            "force": {"type": "boolean"}, "suspend": {"type": "boolean"}, "targetNamespace": {"type": "string"},
            "serviceAccountName": {"type": "string"},
            "dependsOn": {"type": "array", "items": {"type": "object", "required": ["name"],
                                                     "additionalProperties": False,
                                                     "properties": {"name": _NAME, "namespace": _NAME,
                                                                    "readyExpr": {"type": "string"}}}},
            "healthChecks": {"type": "array"}, "patches": {"type": "array"}, "postBuild": {"type": "object"},
            # A remote cluster: a kubeconfig Secret, or (Flux 2.7) a ConfigMap naming a cloud provider's cluster.
            "kubeConfig": {"type": "object", "additionalProperties": False, "minProperties": 1, "maxProperties": 1,
                           "properties": {
                               "secretRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                             "properties": {"name": _NAME, "key": {"type": "string"}}},
                               "configMapRef": {"type": "object", "required": ["name"],
                                                "additionalProperties": False, "properties": {"name": _NAME}}}},
            "decryption": {"type": "object"},
            "deletionPolicy": {"enum": ["MirrorPrune", "Delete", "WaitForTermination", "Orphan"]},
            "sourceRef": {"type": "object", "required": ["kind", "name"], "additionalProperties": False,
                          "properties": {"kind": {"enum": ["OCIRepository", "GitRepository", "Bucket",
                                                           "ExternalArtifact"]},
                                         "name": _NAME, "namespace": _NAME, "apiVersion": {"type": "string"}}}}}),
    ("source.toolkit.fluxcd.io/v1", "Bucket"): _resource({
        "type": "object", "required": ["bucketName", "endpoint", "interval"], "additionalProperties": False,
        "properties": {
            "provider": {"enum": ["generic", "aws", "gcp", "azure"]}, "bucketName": {"type": "string"},
            "endpoint": {"type": "string"}, "prefix": {"type": "string"}, "interval": _DURATION,
            "timeout": _DURATION, "ignore": {"type": "string"}, "region": {"type": "string"},
            "insecure": {"type": "boolean"}, "suspend": {"type": "boolean"},
            "secretRef": {"type": "object"}, "certSecretRef": {"type": "object"}, "proxySecretRef": {"type": "object"},
            "serviceAccountName": {"type": "string"}, "sts": {"type": "object"}}}),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"): {
        "type": "object", "required": ["apiVersion", "kind"], "additionalProperties": False, "properties": {
            "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"}, "kind": {"const": "Kustomization"},
            "resources": {"type": "array", "items": {"type": "string"}}, "namespace": {"type": "string"},
            "labels": {"type": "array"}, "patches": {"type": "array"}, "components": {"type": "array"}}},
    ("iam.cnrm.cloud.google.com/v1beta1", "IAMServiceAccount"): _resource({
        "type": "object", "additionalProperties": False, "properties": {
            "displayName": {"type": "string", "maxLength": 100}, "description": {"type": "string"},
            "disabled": {"type": "boolean"}, "resourceID": {"type": "string"}}}),
    ("iam.cnrm.cloud.google.com/v1beta1", "IAMPolicyMember"): _resource({
        "type": "object", "required": ["resourceRef", "role"], "additionalProperties": False,
        "oneOf": [{"required": ["member"]}, {"required": ["memberFrom"]}],
        "properties": {"member": {"type": "string", "pattern": "^(serviceAccount|user|group|domain):"},
                       "memberFrom": {"type": "object"}, "role": {"type": "string", "pattern": "^roles/"},
                       "condition": {"type": "object"},
                       "resourceRef": {**_REF, "required": ["kind"]}}}),
    ("container.cnrm.cloud.google.com/v1beta1", "ContainerCluster"): _resource({
        "type": "object", "required": ["location"], "additionalProperties": False, "properties": {
            "location": {"type": "string"}, "initialNodeCount": {"type": "integer", "minimum": 0},
            "releaseChannel": {"type": "object", "required": ["channel"],
                               "properties": {"channel": {"enum": ["RAPID", "REGULAR", "STABLE", "EXTENDED",
                                                                   "UNSPECIFIED"]}}},
            "minMasterVersion": {"type": "string"}, "networkRef": _REF, "subnetworkRef": _REF,
            "resourceID": {"type": "string", "maxLength": 40},
            "masterAuthorizedNetworksConfig": {"type": "object", "additionalProperties": False, "properties": {
                "cidrBlocks": {"type": "array", "items": {
                    "type": "object", "required": ["cidrBlock"], "additionalProperties": False,
                    "properties": {"cidrBlock": {"type": "string"}, "displayName": {"type": "string"}}}},
                "gcpPublicCidrsAccessEnabled": {"type": "boolean"}}},
            "privateClusterConfig": {"type": "object", "properties": {
                "enablePrivateNodes": {"type": "boolean"}, "enablePrivateEndpoint": {"type": "boolean"},
                "masterIpv4CidrBlock": {"type": "string"}}, "additionalProperties": False},
            "ipAllocationPolicy": {"type": "object", "properties": {
                "clusterSecondaryRangeName": {"type": "string"}, "servicesSecondaryRangeName": {"type": "string"},
                "clusterIpv4CidrBlock": {"type": "string"}, "servicesIpv4CidrBlock": {"type": "string"}},
                "additionalProperties": False},
            "workloadIdentityConfig": {"type": "object", "required": ["workloadPool"],
                                       "properties": {"workloadPool": {"type": "string"}}},
            "networkingMode": {"enum": ["VPC_NATIVE", "ROUTES"]},
            "datapathProvider": {"enum": ["DATAPATH_PROVIDER_UNSPECIFIED", "LEGACY_DATAPATH", "ADVANCED_DATAPATH"]},
            "enableShieldedNodes": {"type": "boolean"}, "loggingService": {"type": "string"},
            "nodeConfig": {"type": "object", "additionalProperties": False, "properties": {
                "serviceAccountRef": _REF, "machineType": {"type": "string"},
                "oauthScopes": {"type": "array", "items": {"type": "string"}},
                "workloadMetadataConfig": {"type": "object", "properties": {
                    "mode": {"enum": ["MODE_UNSPECIFIED", "GCE_METADATA", "GKE_METADATA"]}}}}},
            "monitoringService": {"type": "string"}}}),
    ("container.cnrm.cloud.google.com/v1beta1", "ContainerNodePool"): _resource({
        "type": "object", "required": ["clusterRef", "location"], "additionalProperties": False, "properties": {
            "location": {"type": "string"}, "clusterRef": _REF, "initialNodeCount": {"type": "integer"},
            "nodeCount": {"type": "integer"}, "resourceID": {"type": "string", "maxLength": 40},
            "autoscaling": {"type": "object", "properties": {"minNodeCount": {"type": "integer", "minimum": 0},
                                                             "maxNodeCount": {"type": "integer", "minimum": 1},
                                                             "totalMinNodeCount": {"type": "integer", "minimum": 0},
                                                             "totalMaxNodeCount": {"type": "integer", "minimum": 1},
                                                             "locationPolicy": {"enum": ["BALANCED", "ANY"]}},
                            "additionalProperties": False},
            "management": {"type": "object", "properties": {"autoRepair": {"type": "boolean"},
                                                            "autoUpgrade": {"type": "boolean"}},
                           "additionalProperties": False},
            "nodeConfig": {"type": "object", "additionalProperties": False, "properties": {
                "machineType": {"type": "string"}, "diskSizeGb": {"type": "integer", "minimum": 10},
                "diskType": {"enum": ["pd-standard", "pd-ssd", "pd-balanced"]},
                "workloadMetadataConfig": {"type": "object", "properties": {
                    "mode": {"enum": ["MODE_UNSPECIFIED", "GCE_METADATA", "GKE_METADATA"]}}},
                "shieldedInstanceConfig": {"type": "object", "properties": {
                    "enableSecureBoot": {"type": "boolean"}, "enableIntegrityMonitoring": {"type": "boolean"}}},
                "oauthScopes": {"type": "array", "items": {"type": "string"}}, "serviceAccountRef": _REF,
                "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}),
    # Config Connector's Compute Engine kinds (compute.cnrm.cloud.google.com/v1beta1 CRDs): a hybrid tenant's VPN.
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeExternalVPNGateway"): _resource({
        "type": "object", "additionalProperties": False, "properties": {
            "description": {"type": "string"}, "resourceID": {"type": "string"},
            "redundancyType": {"enum": ["FOUR_IPS_REDUNDANCY", "SINGLE_IP_INTERNALLY_REDUNDANT",
                                        "TWO_IPS_REDUNDANCY"]},
            "interface": {"type": "array", "items": {"type": "object", "additionalProperties": False, "properties": {
                "id": {"type": "integer"}, "ipAddress": {"type": "string"}}}}}}),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeVPNTunnel"): _resource({
        "type": "object", "required": ["region", "sharedSecret"], "additionalProperties": False, "properties": {
            "description": {"type": "string"}, "ikeVersion": {"type": "integer"}, "peerIp": {"type": "string"},
            "localTrafficSelector": {"type": "array", "items": {"type": "string"}},
            "remoteTrafficSelector": {"type": "array", "items": {"type": "string"}},
            "peerExternalGatewayInterface": {"type": "integer"}, "peerExternalGatewayRef": _CC_REF,
            "peerGCPGatewayRef": _CC_REF, "region": {"type": "string"}, "resourceID": {"type": "string"},
            "routerRef": _cc_ref_to(_ROUTER_PATH), "targetVPNGatewayRef": _CC_REF,
            "vpnGatewayInterface": {"type": "integer"},
            "vpnGatewayRef": _CC_REF,
            "sharedSecret": {"type": "object", "additionalProperties": False, "properties": {
                "value": {"type": "string"},
                "valueFrom": {"type": "object", "additionalProperties": False, "properties": {
                    "secretKeyRef": {"type": "object", "required": ["key", "name"], "additionalProperties": False,
                                     "properties": {"key": {"type": "string"}, "name": {"type": "string"}}}}}}}}}),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeRouterInterface"): _resource({
        "type": "object", "required": ["region", "routerRef"], "additionalProperties": False, "properties": {
            "interconnectAttachmentRef": _CC_REF, "ipRange": {"type": "string"}, "privateIpAddressRef": _CC_REF,
            "redundantInterfaceRef": _CC_REF, "region": {"type": "string"}, "resourceID": {"type": "string"},
            "routerRef": _cc_ref_to(_GCP_NAME), "subnetworkRef": _CC_REF, "vpnTunnelRef": _CC_REF}}),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeRouterPeer"): _resource({
        "type": "object", "required": ["peerAsn", "region", "routerInterfaceRef", "routerRef"],
        "additionalProperties": False, "properties": {
            "advertiseMode": {"type": "string"}, "advertisedGroups": {"type": "array", "items": {"type": "string"}},
            "advertisedIpRanges": {"type": "array", "items": {
                "type": "object", "required": ["range"], "additionalProperties": False,
                "properties": {"description": {"type": "string"}, "range": {"type": "string"}}}},
            "advertisedRoutePriority": {"type": "integer"},
            "bfd": {"type": "object", "required": ["sessionInitializationMode"], "additionalProperties": False,
                    "properties": {"minReceiveInterval": {"type": "integer"},
                                   "minTransmitInterval": {"type": "integer"}, "multiplier": {"type": "integer"},
                                   "sessionInitializationMode": {"type": "string"}}},
            "enable": {"type": "boolean"}, "enableIpv6": {"type": "boolean"},
            "ipAddress": {"type": "object", "additionalProperties": False,
                          "properties": {"external": {"type": "string"}}},
            "ipv6NexthopAddress": {"type": "string"}, "peerAsn": {"type": "integer"},
            "peerIpAddress": {"type": "string"}, "peerIpv6NexthopAddress": {"type": "string"},
            "region": {"type": "string"}, "resourceID": {"type": "string"}, "routerApplianceInstanceRef": _CC_REF,
            "routerInterfaceRef": _CC_REF, "routerRef": _cc_ref_to(_GCP_NAME)}}),
    # External Secrets Operator (external-secrets.io/v1 CRDs): the ExternalSecret that makes a hybrid tenant's
    # tunnel keys a Kubernetes Secret, and the platform's SecretStore it reads Secret Manager through.
    ("external-secrets.io/v1", "ExternalSecret"): _resource({
        "type": "object", "additionalProperties": False, "properties": {
            "data": {"type": "array", "items": {
                "type": "object", "required": ["remoteRef", "secretKey"], "additionalProperties": False,
                "properties": {
                    "secretKey": {"type": "string", "minLength": 1, "maxLength": 253, "pattern": r"^[-._a-zA-Z0-9]+$"},
                    "sourceRef": {"type": "object"},
                    "remoteRef": {"type": "object", "required": ["key"], "additionalProperties": False, "properties": {
                        "key": {"type": "string"}, "version": {"type": "string"}, "property": {"type": "string"},
                        "conversionStrategy": {"enum": ["Default", "Unicode"]},
                        "decodingStrategy": {"enum": ["Auto", "Base64", "Base64URL", "None"]},
                        "metadataPolicy": {"enum": ["None", "Fetch"]},
                        "nullBytePolicy": {"enum": ["Ignore", "Fail"]}}}}}},
            "dataFrom": {"type": "array", "items": {"type": "object"}},
            "refreshInterval": {"type": "string"},
            "refreshPolicy": {"enum": ["CreatedOnce", "Periodic", "OnChange"]},
            "secretStoreRef": {"type": "object", "additionalProperties": False, "properties": {
                "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}, "name": _K8S_NAME}},
            "syncWindows": {"type": "object"},
            "target": {"type": "object", "additionalProperties": False, "properties": {
                "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                "deletionPolicy": {"enum": ["Delete", "Merge", "Retain"]},
                "immutable": {"type": "boolean"}, "name": _K8S_NAME, "template": {"type": "object"},
                "manifest": {"type": "object"}}}}}),
    ("external-secrets.io/v1", "SecretStore"): _resource({
        "type": "object", "required": ["provider"], "additionalProperties": False, "properties": {
            "conditions": {"type": "array"}, "controller": {"type": "string"},
            "refreshInterval": {"type": ["integer", "string"]}, "retrySettings": {"type": "object"},
            "provider": {"type": "object", "minProperties": 1, "maxProperties": 1, "properties": {
                "gcpsm": {"type": "object", "additionalProperties": False, "properties": {
                    "auth": {"type": "object"}, "location": {"type": "string"}, "projectID": {"type": "string"},
                    "secretVersionSelectionPolicy": {"type": "string"}}}}}}}),
}


class InvalidManifest(ValueError):
    pass


# The spec fields Config Connector refuses to change on an existing object (its CRDs mark them "Immutable.", and its
# webhook deny-immutable-field-updates enforces them), for the Compute Engine kinds a hybrid tenant's VPN is made of.
IMMUTABLE: dict[tuple[str, str], tuple[str, ...]] = {
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeExternalVPNGateway"): (
        "description", "interface", "redundancyType", "resourceID"),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeVPNTunnel"): (
        "description", "ikeVersion", "localTrafficSelector", "peerExternalGatewayInterface", "peerIp", "region",
        "remoteTrafficSelector", "resourceID", "sharedSecret", "vpnGatewayInterface"),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeRouterInterface"): ("ipRange", "region", "resourceID"),
    ("compute.cnrm.cloud.google.com/v1beta1", "ComputeRouterPeer"): ("region", "resourceID"),
}


def immutable_changes(live: dict, document: dict) -> list[str]:
    """The immutable fields `document` would change on the object as it is (`live`), as `spec.<field>`."""
    fields = IMMUTABLE.get((document.get("apiVersion"), document.get("kind")), ())
    before, after = live.get("spec") or {}, document.get("spec") or {}
    return [f"spec.{field}" for field in fields if before.get(field) != after.get(field)]


def validate(document: dict) -> None:
    """Raises InvalidManifest saying what is wrong with one object."""
    if not isinstance(document, dict) or "apiVersion" not in document or "kind" not in document:
        raise InvalidManifest("not a Kubernetes object: apiVersion and kind are required")
    key = (document["apiVersion"], document["kind"])
    name = f"{document['kind']}/{(document.get('metadata') or {}).get('name', '?')}"
    if key in SCHEMAS:
        try:
            jsonschema.validate(document, SCHEMAS[key])
        except jsonschema.ValidationError as error:
            raise InvalidManifest(f"{name}: {error.message} at {'/'.join(map(str, error.absolute_path))}") from None
        return
    import kubernetes_validate

    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise InvalidManifest(f"{name}: {error.message}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise InvalidManifest(f"{name}: no schema for {key[0]} {key[1]} in Kubernetes {KUBERNETES_VERSION}") from None
