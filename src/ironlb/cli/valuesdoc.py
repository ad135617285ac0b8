"""The Helm values reference (a Markdown table), generated from charts/ironlb/values.schema.json into
docs/operations.md, between the BEGIN and END markers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- values-reference:begin -->", "<!-- values-reference:end -->"


def _rows(schema: dict[str, Any], defaults: Any, prefix: str, defs: dict[str, Any]) -> list[str]:
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            prop = {**defs[prop["$ref"].rsplit("/", 1)[1]], **{k: v for k, v in prop.items() if k != "$ref"}}
        key = f"{prefix}{name}"
        default = defaults.get(name) if isinstance(defaults, dict) else None
        if prop.get("type") == "object" and prop.get("properties"):
            rows += _rows(prop, default or {}, f"{key}.", defs)
            continue
        kind = prop.get("type", "")
        if "enum" in prop:
            kind += " (" + " \\| ".join(str(e) for e in prop["enum"]) + ")"
        if "minimum" in prop or "maximum" in prop:
            kind += f" [{prop.get('minimum', '')}..{prop.get('maximum', '')}]"
        shown = json.dumps(default) if default not in (None, "", {}, []) else "`" + json.dumps(default) + "`"
        shown = shown if shown.startswith("`") else f"`{shown}`"
        rows.append(f"| `{key}` | {kind} | {shown} | {prop.get('description', '')} |")
    return rows


def render(chart: Path) -> str:
    """The Markdown table for a chart directory."""
    import yaml

    schema = json.loads((chart / "values.schema.json").read_text())
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    lines = ["| value | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join(lines + _rows(schema, defaults, "", schema.get("definitions", {})))


def update_doc(doc: Path, chart: Path) -> bool:
    """Rewrite the values section of a Markdown document; True if it changed."""
    text = doc.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{render(chart)}\n{END}{tail}"
    if new != text:
        doc.write_text(new)
        return True
    return False
