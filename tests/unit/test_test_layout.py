"""The test tree collects as one session (`./dev test`): pytest's default import
mode refuses two test modules of the same name in different folders (no
__init__.py), so a clash would only show when every suite runs together."""

import collections
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_no_two_test_modules_share_a_name():
    seen = collections.defaultdict(list)
    for path in (ROOT / "tests").rglob("test_*.py"):
        seen[path.name].append(str(path.relative_to(ROOT)))
    assert not {name: paths for name, paths in seen.items() if len(paths) > 1}
