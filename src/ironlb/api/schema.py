"""Building blocks of the OpenAPI v3 schemas of IronLB's CRDs.

Every schema here is *structural* (each node has a type) and every string, list and map that a
CEL rule reads carries maxLength / maxItems / maxProperties: the API server estimates the cost of
each rule from those bounds when the CRD is created and rejects rules that could cost too much.
"""

from __future__ import annotations

from typing import Any

from ironlb.api import constants

Schema = dict[str, Any]

# Kubernetes name limits (k8s.io/apimachinery/pkg/util/validation).
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
LABEL_KEY_MAX = 317  # optional DNS-1123 subdomain prefix (253) + "/" + name (63)
LABEL_VALUE_MAX = 63
# The label-value rule on matchExpressions values runs up to MAX_SELECTORS x MAX_MATCH_EXPRESSIONS x
# MAX_SELECTOR_VALUES times per selector list: these bounds keep its estimated cost within the API
# server's per-rule limit, and doubling any one of the three makes it refuse the CRD
# (docs/design.md, "Measurements behind the code").
MAX_SELECTORS = 8
MAX_MATCH_LABELS = 32
MAX_MATCH_EXPRESSIONS = 16
MAX_SELECTOR_VALUES = 64

LABEL_KEY_HELP = (
    "a label key is a name of at most 63 characters (letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit), optionally prefixed by a DNS subdomain and '/', e.g. "
    "'app.kubernetes.io/name'"
)
LABEL_VALUE_HELP = (
    "a label value is empty or at most 63 characters (letters, digits, '-', '_' and '.', starting and "
    "ending with a letter or digit)"
)


class CEL(str):
    """A CEL expression: written to YAML as a literal block, so it reads like code."""


def cel_string(template: str, **exprs: str) -> str:
    """A CEL string expression from a template: ``{name}`` stands for the CEL expression
    ``exprs[name]`` and everything else is literal text, e.g.
    ``cel_string("'{v}' is bad", v="self")`` gives ``"'" + self + "' is bad"``."""
    parts: list[str] = []
    text = template
    while text:
        start = text.find("{")
        if start < 0:
            parts.append(_cel_literal(text))
            break
        end = text.index("}", start)
        if start:
            parts.append(_cel_literal(text[:start]))
        parts.append(exprs[text[start + 1:end]])
        text = text[end + 1:]
    return " + ".join(parts) if parts else '""'


def _cel_literal(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rule(expr: str, message: str, message_expression: str | None = None, *, field_path: str | None = None,
         reason: str | None = None) -> Schema:
    """One x-kubernetes-validations entry. `message` is always set: it is the fallback when
    `messageExpression` cannot be evaluated, and what `kubectl explain` readers see."""
    out: Schema = {"rule": CEL(expr), "message": message}
    if message_expression is not None:
        out["messageExpression"] = CEL(message_expression)
    if field_path is not None:
        out["fieldPath"] = field_path
    if reason is not None:
        out["reason"] = reason
    return out


def string(description: str, *, max_length: int, min_length: int | None = None, **extra: Any) -> Schema:
    out: Schema = {"type": "string", "description": description}
    if min_length is not None:
        out["minLength"] = min_length
    out["maxLength"] = max_length
    out.update(extra)
    return out


def string_set(description: str, item: Schema, *, max_items: int, min_items: int | None = None) -> Schema:
    """A list of unique strings (duplicates are rejected by the API server)."""
    out: Schema = {"type": "array", "description": description}
    if min_items is not None:
        out["minItems"] = min_items
    out["maxItems"] = max_items
    out["items"] = item
    out["x-kubernetes-list-type"] = "set"
    return out


def _formatted(description: str, max_length: int, cel_format: str, what: str, short: str, detail: str) -> Schema:
    """A string checked with one of CEL's Kubernetes formats; the message quotes the bad value."""
    return string(
        description, max_length=max_length,
        **{"x-kubernetes-validations": [rule(
            f"!format.{cel_format}().validate(self).hasValue()",
            f"not a valid {what}: {short}",
            cel_string(f"'{{v}}' is not a valid {what}: {detail}", v="self"),
        )]},
    )


# CEL format, length limit, what it is called, what it may hold, and the wording of its description.
_DNS_NAMES = {
    "label": ("dns1123Label", DNS1123_LABEL_MAX, "a DNS-1123 label", "lowercase letters, digits and '-'",
              "a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)"),
    "subdomain": ("dns1123Subdomain", DNS1123_SUBDOMAIN_MAX, "a DNS-1123 subdomain", "lowercase letters, digits, "
                  "'-' and '.'", "a Kubernetes object name (DNS-1123 subdomain, at most 253 characters)"),
}


def _dns_name(what: str, kind: str) -> Schema:
    cel_format, max_length, called, chars, described = _DNS_NAMES[kind]
    return _formatted(f"{what}: {described}.", max_length, cel_format, what, f"it must be {called}",
                      f"it must consist of {chars}, and start and end with a letter or digit ({called})")


def dns_label(what: str) -> Schema:
    """A DNS-1123 label, such as a namespace name."""
    return _dns_name(what, "label")


def dns_subdomain(what: str) -> Schema:
    """A DNS-1123 subdomain: the default name format of Kubernetes objects, custom ones included."""
    return _dns_name(what, "subdomain")


def _label_value(description: str) -> Schema:
    return _formatted(description, LABEL_VALUE_MAX, "labelValue", "label value", LABEL_VALUE_HELP, LABEL_VALUE_HELP)


def label_selector(description: str) -> Schema:
    """metav1.LabelSelector, validated like the built-in one wherever CEL can afford it."""
    requirement: Schema = {
        "type": "object",
        "description": "A label selector requirement: a key, an operator and (for In and NotIn) values.",
        "required": ["key", "operator"],
        "properties": {
            "key": string(
                "The label key the requirement applies to.", min_length=1, max_length=LABEL_KEY_MAX,
                **{"x-kubernetes-validations": [rule(
                    "!format.qualifiedName().validate(self).hasValue()",
                    f"not a valid label key: {LABEL_KEY_HELP}",
                    cel_string(f"'{{v}}' is not a valid label key: {LABEL_KEY_HELP}", v="self"),
                )]},
            ),
            "operator": {
                "type": "string",
                "description": "How the key relates to the values: In, NotIn, Exists or DoesNotExist.",
                "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                "maxLength": 12,
            },
            "values": {
                "type": "array",
                "description": "The values for In and NotIn (at least one); must be empty for Exists and "
                               "DoesNotExist.",
                "maxItems": MAX_SELECTOR_VALUES,
                "items": _label_value("A label value."),
                "x-kubernetes-list-type": "atomic",
            },
        },
        "x-kubernetes-validations": [
            rule(
                "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
                "operators In and NotIn need at least one value in 'values'",
                cel_string("operator {op} needs at least one value in 'values' (key '{key}'); use Exists to "
                           "match any value", op="self.operator", key="self.key"),
            ),
            rule(
                "!(self.operator in ['Exists', 'DoesNotExist'])"
                " || !has(self.values) || size(self.values) == 0",
                "operators Exists and DoesNotExist take no values",
                cel_string("operator {op} must not have 'values' (key '{key}'); remove them, or use In / "
                           "NotIn to match specific values", op="self.operator", key="self.key"),
            ),
        ],
    }
    return {
        "type": "object",
        "description": description + " An empty selector ({}) matches everything. matchLabels and "
                                     "matchExpressions are ANDed.",
        "properties": {
            "matchLabels": {
                "type": "object",
                "description": "Labels that must all be present with exactly these values.",
                "maxProperties": MAX_MATCH_LABELS,
                "additionalProperties": _label_value("The value the label must have."),
                # No messageExpression: naming the bad key means building a string from a map key,
                # whose size the API server cannot bound, and it then refuses the CRD as too costly.
                "x-kubernetes-validations": [rule(
                    "self.all(k, !format.qualifiedName().validate(k).hasValue())",
                    f"a key in matchLabels is not a valid label key: {LABEL_KEY_HELP}",
                )],
            },
            "matchExpressions": {
                "type": "array",
                "description": "Requirements that must all hold.",
                "maxItems": MAX_MATCH_EXPRESSIONS,
                "items": requirement,
                "x-kubernetes-list-type": "atomic",
            },
        },
        "x-kubernetes-map-type": "atomic",
    }


def label_selectors(description: str) -> Schema:
    """A list of label selectors, ORed: an object is selected when any one of them matches."""
    return {
        "type": "array",
        "description": description + " An object matches the list when it matches any of the selectors.",
        "maxItems": MAX_SELECTORS,
        "items": label_selector("A label selector."),
        "x-kubernetes-list-type": "atomic",
    }


def conditions() -> Schema:
    """status.conditions: the standard metav1.Condition list, one entry per type."""
    condition: Schema = {
        "type": "object",
        "description": "Condition (metav1.Condition): one aspect of the object's current state.",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": string(
                "Type of the condition, in CamelCase (e.g. Invalid, Overlapping, Announced).",
                max_length=316,
                pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
            ),
            "status": {"type": "string", "description": "True, False or Unknown.",
                       "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {
                "type": "integer", "format": "int64", "minimum": 0,
                "description": "The .metadata.generation the condition was set for.",
            },
            "lastTransitionTime": {
                "type": "string", "format": "date-time",
                "description": "When the condition last changed from one status to another.",
            },
            "reason": string(
                "A programmatic identifier, in CamelCase, of the reason for the condition's last transition.",
                min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            ),
            "message": string("A human readable message about the transition.", max_length=32768),
        },
    }
    return {
        "type": "array",
        "description": "The latest observations of the object's state.",
        "maxItems": 32,
        "items": condition,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


def object_root(kind_description: str, spec: Schema | None, status: Schema) -> Schema:
    """The top-level schema of a custom resource: apiVersion, kind, metadata, spec, status (without a spec, the
    object is all status, and status is what it requires)."""
    properties: Schema = {
        "apiVersion": {"type": "string", "description": "APIVersion of this representation."},
        "kind": {"type": "string", "description": "Kind of this representation."},
        "metadata": {"type": "object"},
    }
    if spec is not None:
        properties["spec"] = spec
    properties["status"] = status
    return {
        "type": "object",
        "description": kind_description,
        "required": ["spec" if spec is not None else "status"],
        "properties": properties,
    }


def interface_name(description: str) -> Schema:
    """A network device name as the kernel takes it (an interface, a VLAN, a VRF): 1-15 characters."""
    return {
        "type": "string",
        "description": description,
        "minLength": 1,
        "maxLength": 15,
        "x-kubernetes-validations": [rule(
            "!self.matches('[/:[:space:]]') && self != '.' && self != '..'",
            "not a valid network interface name: it must not contain '/', ':' or whitespace, nor be '.' "
            "or '..'",
            cel_string("'{v}' is not a valid network interface name: it must not contain '/', ':' or "
                       "whitespace, nor be '.' or '..'", v="self"),
        )],
    }


def column(name: str, type_: str, path: str, description: str, priority: int = 0) -> Schema:
    """One additionalPrinterColumns entry."""
    out: Schema = {"name": name, "type": type_, "jsonPath": path, "description": description}
    if priority:
        out["priority"] = priority
    return out


AGE_COLUMN = column("Age", "date", ".metadata.creationTimestamp", "Time since the object was created.")


def crd(kind: str, plural: str, singular: str, short_names: tuple[str, ...], schema: Schema,
        columns: list[Schema]) -> dict[str, Any]:
    """A cluster-scoped CRD of IronLB's group with one version, served and stored, and a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{constants.GROUP}",
            "labels": {"app.kubernetes.io/name": "ironlb", "app.kubernetes.io/part-of": "ironlb"},
        },
        "spec": {
            "group": constants.GROUP,
            "scope": "Cluster",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": singular,
                "shortNames": list(short_names),
                "categories": [constants.CATEGORY],
            },
            "versions": [{
                "name": constants.VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
            }],
        },
    }
