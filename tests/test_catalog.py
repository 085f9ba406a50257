import pytest

from bayesmetal.catalog import check_poolable, get_cycle, pooled_weight_factor
from bayesmetal.errors import ConfigError


def test_file_names_follow_nhanes_conventions():
    assert get_cycle("2017-2018").file_name("DEMO") == "DEMO_J.XPT"
    assert get_cycle("2017-2020").file_name("DEMO") == "P_DEMO.XPT"
    assert get_cycle("2011-2012").file_name("COT") == "COTNAL_G.XPT"
    assert get_cycle("2013-2014").file_name("COT") == "COT_H.XPT"
    assert get_cycle("2017-2020").file_name("COT") == "P_COT.XPT"


def test_pooled_weights_divide_by_number_of_two_year_cycles():
    cycles = check_poolable(["2011-2012", "2013-2014", "2015-2016"])
    assert [pooled_weight_factor(c, cycles) for c in cycles] == pytest.approx([1 / 3] * 3)


def test_pooled_weights_use_survey_years_with_the_prepandemic_release():
    cycles = check_poolable(["2013-2014", "2017-2020"])
    factors = [pooled_weight_factor(c, cycles) for c in cycles]
    assert factors == pytest.approx([2 / 5.2, 3.2 / 5.2])
    assert sum(factors) == pytest.approx(1.0)


def test_overlapping_and_unknown_cycles_are_refused():
    with pytest.raises(ConfigError, match="overlapping"):
        check_poolable(["2017-2018", "2017-2020"])
    with pytest.raises(ConfigError, match="2019-2020"):
        get_cycle("2019-2020")
    with pytest.raises(ConfigError, match="twice"):
        check_poolable(["2013-2014", "2013-2014"])
