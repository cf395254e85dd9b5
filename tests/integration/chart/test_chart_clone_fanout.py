"""The CsiVMClone CRD's fan-out fields: count and nameTemplate, checked by its schema.

The schema is the chart's generated openAPIV3Schema, applied with jsonschema
(OpenAPI's keywords used here are JSON Schema's). What the schema cannot say
(targetVMName and count together, names a template gives) the controller
refuses; see tests/unit/controller/test_fake_api_clone_fanout.py.
"""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml

from tests.integration.chart import conftest as chart

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def _schema() -> dict[str, Any]:
    crd = next(c for c in chart.crds() if c["spec"]["names"]["kind"] == "CsiVMClone")
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _clone(**spec: object) -> dict[str, Any]:
    example = yaml.safe_load((chart.CHART / "examples" / "csivmclone-fanout.yaml").read_text())
    example["spec"] = {"sourceVMName": "web", **spec}
    return example  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "spec",
    [
        {"targetVMName": "web-copy"},
        {"count": 100, "nameTemplate": "lab-{i}"},
        {"count": 1, "nameTemplate": "lab-{i:03}"},
        {"count": 1000, "nameTemplate": "{i}.lab-{i:04}"},
    ],
    ids=["one-target", "template", "padded", "most-and-twice"],
)
def test_clone_schema_takes(spec: dict[str, object]) -> None:
    jsonschema.validate(_clone(**spec), _schema())


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"count": 0, "nameTemplate": "lab-{i}"}, "less than the minimum"),
        ({"count": 1001, "nameTemplate": "lab-{i}"}, "greater than the maximum"),
        ({"count": 3, "nameTemplate": "lab"}, "does not match"),
        ({"count": 3, "nameTemplate": "lab-{n}"}, "does not match"),
        ({"count": 3, "nameTemplate": "lab-{i:3}"}, "does not match"),
        ({"count": 3, "nameTemplate": "lab-{i}-{x}"}, "does not match"),
        ({"count": "3", "nameTemplate": "lab-{i}"}, "is not of type 'integer'"),
    ],
    ids=["zero", "over-the-most", "no-field", "other-field", "unpadded-width", "extra-braces",
         "count-as-text"],
)  # fmt: skip
def test_clone_schema_refuses(spec: dict[str, object], message: str) -> None:
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(_clone(**spec), _schema())


def test_clone_schema_still_needs_the_source() -> None:
    obj = _clone(count=2, nameTemplate="lab-{i}")
    del obj["spec"]["sourceVMName"]
    with pytest.raises(jsonschema.ValidationError, match="'sourceVMName' is a required property"):
        jsonschema.validate(obj, _schema())
