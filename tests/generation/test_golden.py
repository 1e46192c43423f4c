"""The generator's output for small specs equals the committed golden files."""

import pytest

from tests.support.golden import SPECS, committed, generated


@pytest.mark.parametrize("name", sorted(SPECS))
def test_output_matches_the_golden_files(name: str) -> None:
    expected, actual = committed(name), generated(name)
    assert sorted(actual) == sorted(expected), "files differ: run `make golden` and review"
    for path, content in actual.items():
        assert content == expected[path], f"{name}/{path} differs: run `make golden` and review"
