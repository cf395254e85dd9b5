"""The report as JSON: the documented, versioned schema (``schema/report-v1.json``)."""

from __future__ import annotations

import json

from capabilities import model


def render(report: model.DriverReport | model.MatrixReport) -> str:
    # ensure_ascii=False keeps driver names readable; the output is UTF-8.
    return json.dumps(model.to_json_dict(report), indent=2, ensure_ascii=False) + "\n"
