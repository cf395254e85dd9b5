"""The report as YAML: the same data and keys as the JSON form."""

from __future__ import annotations

import yaml

from capabilities import model


def render(report: model.DriverReport | model.MatrixReport) -> str:
    # sort_keys=False keeps report order (features in `model.Feature` order).
    text: str = yaml.safe_dump(
        model.to_json_dict(report), sort_keys=False, allow_unicode=True, width=100
    )
    return text
