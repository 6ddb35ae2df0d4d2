"""The cost line: what the price table says, added up; never a guess for what it does not know."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from lab import cost
from lab.config import parse_config

CONFIG = (Path(__file__).resolve().parent.parent / "configs" / "lab.yaml").read_text()


def test_the_shipped_table_is_dated_sourced_and_covers_the_default_lab():
    table = cost.price_table()
    assert table.date and "aws.amazon.com" in table.source
    seoul = table.regions["ap-northeast-2"]
    assert {"t3.large", "t3.medium"} <= set(seoul.instances) and {"gp2", "gp3"} <= set(seoul.volumes)
    for region in table.regions.values():  # a t3 size costs twice the one below it, as AWS prices them
        assert region.instances["t3.large"] == pytest.approx(2 * region.instances["t3.medium"])


def test_the_default_lab_costs_what_the_table_says_per_hour_and_per_day():
    spec = parse_config(CONFIG, "configs/lab.yaml")
    usage = cost.usage_of_spec(spec)
    assert usage.instances == Counter({"t3.large": 1, "t3.medium": 2})
    assert usage.volume_gb == Counter({"gp3": 3 * 20 + 4 * 10}) and usage.public_ips == 3
    seoul = cost.price_table().regions["ap-northeast-2"]
    expected = (seoul.instances["t3.large"] + 2 * seoul.instances["t3.medium"] + 100 * seoul.volumes["gp3"] / 730
                + 3 * cost.price_table().public_ipv4_per_hour)
    estimate = cost.estimate(usage, "ap-northeast-2")
    assert estimate.per_hour == pytest.approx(expected)
    assert estimate.per_day == pytest.approx(24 * expected)
    line = estimate.line()
    assert f"${expected:.3f}/hour" in line and f"${24 * expected:.2f}/day" in line and "ap-northeast-2" in line
    assert "\n" not in line


@pytest.mark.parametrize("region, kind, missing", [
    ("ap-northeast-2", "t3.nano", "t3.nano in ap-northeast-2"),
    ("mars-north-1", "t3.large", "region mars-north-1"),
])
def test_a_type_or_region_not_in_the_table_reads_price_unknown(region, kind, missing):
    estimate = cost.estimate(cost.Usage(Counter({kind: 1}), Counter({"gp3": 20}), 1), region)
    assert estimate.per_hour is None and estimate.per_day is None
    assert estimate.line().startswith("cost: price unknown (") and missing in estimate.line()
    assert "$" not in estimate.line() and estimate.so_far(5) == "unknown"


def test_the_update_script_reads_the_price_list_apis_on_demand_price():
    """scripts/update_prices.py is never run here (it needs AWS): its parser reads the API's documented shape."""
    import importlib.util
    import json

    path = Path(__file__).resolve().parent.parent / "scripts" / "update_prices.py"
    spec = importlib.util.spec_from_file_location("update_prices", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    item = json.dumps({"product": {"sku": "ABC"}, "terms": {"OnDemand": {"ABC.JRTCKXETXF": {"priceDimensions": {
        "ABC.JRTCKXETXF.6YS6EN2CT7": {"unit": "Hrs", "pricePerUnit": {"USD": "0.0520000000"}}}}}}})
    assert module.usd_per_unit(item) == 0.052
