"""kopf's two peering kinds (several operator replicas, one acting) (pure)."""

from __future__ import annotations

from kaci.crds.schema import (
    Schema,
)

PEERING_GROUP = "kopf.dev"


def peering_crd(*, clusterwide: bool) -> Schema:
    """kopf's peering kind, which kopf reads but does not install: ClusterKopfPeering
    (cluster-scoped, for an operator watching every namespace) or KopfPeering (in each
    watched namespace). Operators sharing one such object see each other's keep-alives
    in its status and only the highest priority acts (`python -m kaci.operator --peering`).

    The shape is what kopf writes: status maps each operator's identity to its
    priority, lifetime and last keep-alive; kopf merges and deletes entries with merge
    patches of the whole object. No status subresource on purpose: other kopf-based
    operators in a cluster may have installed these CRDs first (Helm then keeps theirs,
    which have none), and kopf patches the main object when there is none, so the
    operator's RBAC (patch on the resource) fits either way. Labelled part-of kopf, not
    kaci: removing kaci's CRDs must not remove what other operators may share.
    """
    kind, plural = ("ClusterKopfPeering", "clusterkopfpeerings")
    if not clusterwide:
        kind, plural = ("KopfPeering", "kopfpeerings")
    peer: Schema = {
        "type": "object",
        "description": "One operator's keep-alive.",
        "properties": {
            "priority": {"type": "integer", "description": "The highest live priority acts."},
            "lifetime": {
                "type": "integer",
                "description": "Seconds after lastseen at which the operator counts as dead.",
            },
            "lastseen": {"type": "string", "description": "Time of the last keep-alive."},
        },
        # Fields a later kopf may add (kopf's Peer accepts unknown ones).
        "x-kubernetes-preserve-unknown-fields": True,
    }
    root: Schema = {
        "type": "object",
        "description": "A peering neighbourhood of kopf operators; operators with the same "
        "peering name see each other here.",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "status": {
                "type": "object",
                "description": "Operator identity -> its keep-alive (written by kopf).",
                "additionalProperties": peer,
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{PEERING_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "kopf"},
        },
        "spec": {
            "group": PEERING_GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "scope": "Cluster" if clusterwide else "Namespaced",
            "versions": [
                {
                    # The version kopf looks for (kopf.dev/v1).
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
