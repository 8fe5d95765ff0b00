"""One formatting for numbers: the same value reads the same in tables, cards and views."""
import math

from core import fmt


def test_percent_count_duration_size_and_missing():
    assert fmt.pct(0.955) == "95.50%" and fmt.pct(0.955, 1) == "95.5%"
    assert fmt.count(93322) == "93,322" and fmt.count(7.0) == "7"
    assert [fmt.duration(s) for s in (9.4, 65, 3725)] == ["9 s", "1 min 05 s", "1 h 02 min"]
    sizes = [fmt.size(b) for b in (512, 368_965, 8_401_397, 12_000_000)]
    assert sizes == ["512 B", "369 kB", "8.4 MB", "12 MB"]
    for missing in (None, math.nan):
        assert {fmt.pct(missing), fmt.count(missing), fmt.duration(missing), fmt.size(missing),
                fmt.number(missing)} == {fmt.MISSING}
