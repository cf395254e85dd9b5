"""Every report validates against the published JSON Schema, and the schema is strict."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from capabilities import catalogue, ladder, model, schema
from capabilities.render import json_doc
from csi_vm import errors

Report = model.DriverReport | model.MatrixReport


def test_schema_is_valid_draft_2020_12() -> None:
    document = schema.load()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["$defs"]["schemaName"]["const"] == model.SCHEMA


def test_every_report_validates(any_report: Report) -> None:
    schema.validate(model.to_json_dict(any_report))
    # And what a consumer reads back from the JSON output.
    schema.validate(json.loads(json_doc.render(any_report)))


def test_every_catalogue_row_validates_alone(catalogue_report: model.MatrixReport) -> None:
    for row in catalogue_report.rows:
        schema.validate(model.to_json_dict(row))


def test_enumerations_follow_the_code() -> None:
    defs = schema.load()["$defs"]
    assert defs["featureKey"]["enum"] == [str(f) for f in model.Feature]
    plan = defs["plan"]["properties"]
    assert list(plan) == list(ladder.OPERATIONS)
    for op, rungs in ladder.LADDERS.items():
        strategies = plan[op]["allOf"][1]["properties"]["strategy"]["enum"]
        assert strategies == [r.strategy for r in rungs] + ["unavailable"]
    assert defs["gapCounts"]["propertyNames"]["enum"] == [g.key for g in catalogue.GAPS]
    assert set(defs["feature"]["properties"]) == set(model.FeatureResult.model_fields)
    assert set(defs["driverInfo"]["properties"]) == set(model.DriverInfo.model_fields)
    report_fields = {"schema" if k == "schema_" else k for k in model.DriverReport.model_fields}
    assert set(defs["driverReport"]["properties"]) == report_fields


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _drop(path: list[str | int]) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return change


BROKEN_DRIVER = {
    "wrong-schema": (_set(["schema"], "csi-vm.capabilities/v0"), "schema"),
    "unknown-mode": (_set(["mode"], "guessed"), "mode"),
    "unknown-feature": (_set(["features", "teleport"], {}), "features"),
    "feature-not-bool": (_set(["features", "snapshot", "verified"], "yes"), "snapshot/verified"),
    "feature-extra-field": (_set(["features", "snapshot", "color"], "red"), "snapshot"),
    "feature-missing-field": (_drop(["features", "snapshot", "evidence"]), "snapshot"),
    "negative-seconds": (_set(["features", "clone", "seconds"], -1), "clone/seconds"),
    "unknown-operation": (_set(["plan", "vm_teleport"], {}), "plan"),
    "strategy-of-other-ladder": (_set(["plan", "vm_snapshot", "strategy"], "csi-clone"), "plan"),
    "extra-top-level": (_set(["extra"], 1), "top level"),
    "missing-driver": (_drop(["driver"]), "top level"),
    "empty-label": (_set(["driver", "label"], ""), "driver/label"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_DRIVER), ids=sorted(BROKEN_DRIVER))
def test_broken_driver_reports_are_rejected_with_the_place(
    name: str, limited: model.DriverReport
) -> None:
    change, where = BROKEN_DRIVER[name]
    data = copy.deepcopy(model.to_json_dict(limited))
    change(data)
    with pytest.raises(
        errors.InvalidInput, match=r"does not match csi-vm\.capabilities/v1"
    ) as info:
        schema.validate(data)
    assert where in str(info.value)


BROKEN_MATRIX = {
    "unknown-kind": (_set(["kind"], "galaxy"), "kind"),
    "bad-row": (_set(["rows", 1, "features", "clone", "declared"], 3), "rows/1/features/clone"),
    "percent-over-100": (_set(["totals", "lacking_percent", "snapshot"], 120), "totals"),
    "unknown-gap": (_set(["totals", "lacking", "teleport"], 1), "totals/lacking"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_MATRIX), ids=sorted(BROKEN_MATRIX))
def test_broken_matrix_reports_are_rejected_with_the_place(
    name: str, matrix: model.MatrixReport
) -> None:
    change, where = BROKEN_MATRIX[name]
    data = copy.deepcopy(model.to_json_dict(matrix))
    change(data)
    with pytest.raises(errors.InvalidInput) as info:
        schema.validate(data)
    assert where in str(info.value)


def test_many_problems_are_summarised(limited: model.DriverReport) -> None:
    data: dict[str, Any] = copy.deepcopy(model.to_json_dict(limited))
    for feature in model.Feature:
        data["features"][feature]["seconds"] = "slow"
    with pytest.raises(errors.InvalidInput, match=r"and 14 more"):
        schema.validate(data)


@pytest.mark.parametrize("data", [[], "report", None], ids=["list", "string", "null"])
def test_non_objects_are_rejected(data: Any) -> None:
    with pytest.raises(errors.InvalidInput, match="JSON object"):
        schema.validate(data)
