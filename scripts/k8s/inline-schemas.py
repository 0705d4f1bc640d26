"""Core Kubernetes JSON schemas for kubeconform, offline.

kubernetes-validate ships strict schemas whose $refs point into a shared _definitions.json, which
kubeconform reports as "could not find schema". This writes each schema standalone: the definitions
it reaches, copied into its own $defs, and its references made local.

Usage: python inline-schemas.py <major.minor, e.g. 1.37> <out dir>
Writes <out dir>/v<major.minor>.0-standalone-strict/<kind>-<group>-<version>.json, kubeconform's layout.
"""

import json
import os
import sys

import kubernetes_validate

version, out = sys.argv[1], sys.argv[2]
source = os.path.join(
    os.path.dirname(kubernetes_validate.__file__), "kubernetes-json-schema", f"v{version}.0-local-strict"
)
target = os.path.join(out, f"v{version}.0-standalone-strict")
os.makedirs(target, exist_ok=True)
with open(os.path.join(source, "_definitions.json")) as f:
    definitions = json.load(f)["$defs"]
# The schemas refer to the shared file; the shared file's definitions refer to one another locally.
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")


def localize(node, reached):
    """Rewrites references to local ones, collecting the names of the definitions they reach."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        prefix = next((p for p in PREFIXES if isinstance(ref, str) and ref.startswith(p)), None)
        if prefix:
            name = ref[len(prefix):]
            node["$ref"] = f"#/$defs/{name}"
            reached.add(name)
        for value in node.values():
            localize(value, reached)
    elif isinstance(node, list):
        for value in node:
            localize(value, reached)


for name in sorted(os.listdir(source)):
    if name.startswith("_") or name == "all.json" or not name.endswith(".json"):
        continue
    with open(os.path.join(source, name)) as f:
        schema = json.load(f)
    reached = set()
    localize(schema, reached)
    defs, pending = {}, list(reached)
    while pending:
        ref = pending.pop()
        if ref in defs:
            continue
        definition = json.loads(json.dumps(definitions[ref]))
        more = set()
        localize(definition, more)
        defs[ref] = definition
        pending.extend(more - defs.keys())
    if defs:
        schema["$defs"] = defs
    schema.pop("$id", None)
    with open(os.path.join(target, name), "w") as f:
        json.dump(schema, f)
