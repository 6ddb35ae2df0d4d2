#!/usr/bin/env python3
"""Write lab/data/prices.yaml anew from the AWS Price List API (your AWS credentials; no cost).

    .venv/bin/python scripts/update_prices.py [--region R ...] [--type T ...]

The lab's cost lines come from a table shipped with the project, so that `lab up` can say
what a lab costs before it creates anything, without credentials for the Pricing API and
without a network round trip. This script is how that table is kept true: it asks the
Price List API (pricing.us-east-1.amazonaws.com) for the on-demand Linux price of each
instance type and the GB-month price of gp2/gp3 in each region, and writes the file with
today's date. It is never run by the tests or CI (they never reach AWS).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import yaml

TABLE = Path(__file__).resolve().parent.parent / "lab" / "data" / "prices.yaml"
SOURCE = ("AWS Price List API (pricing:GetProducts, service AmazonEC2: on-demand, Linux, shared tenancy; "
          "EBS storage gp2/gp3); public IPv4 from https://aws.amazon.com/vpc/pricing/")


def usd_per_unit(price_item: str) -> float:
    """The on-demand USD price of one Price List product (the JSON text GetProducts returns)."""
    product = json.loads(price_item)
    for term in product["terms"]["OnDemand"].values():
        for dimension in term["priceDimensions"].values():
            return float(dimension["pricePerUnit"]["USD"])
    raise ValueError(f"no on-demand price in {product['product'].get('sku')}")


def _one(pricing, filters: dict[str, str]) -> float | None:
    answer = pricing.get_products(ServiceCode="AmazonEC2", MaxResults=10, Filters=[
        {"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in filters.items()])
    prices = [usd_per_unit(item) for item in answer["PriceList"]]
    return prices[0] if len(set(prices)) == 1 else None  # none, or ambiguous: leave it out, never guess


def instance_price(pricing, region: str, kind: str) -> float | None:
    return _one(pricing, {"regionCode": region, "instanceType": kind, "operatingSystem": "Linux",
                          "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used",
                          "licenseModel": "No License required"})


def volume_price(pricing, region: str, kind: str) -> float | None:
    return _one(pricing, {"regionCode": region, "productFamily": "Storage", "volumeApiName": kind})


def main(argv: list[str] | None = None) -> int:
    current = yaml.safe_load(TABLE.read_text())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", action="append", help="default: the regions in the table now")
    parser.add_argument("--type", action="append", help="default: the types in the table now")
    args = parser.parse_args(argv)
    import boto3

    pricing = boto3.client("pricing", region_name="us-east-1")
    regions = args.region or sorted(current["regions"])
    kinds = args.type or sorted({k for r in current["regions"].values() for k in r["instances"]})
    table = {"date": date.today().isoformat(), "source": SOURCE,
             "public_ipv4_per_hour": current["public_ipv4_per_hour"], "regions": {}}
    for region in regions:
        instances = {k: p for k in kinds if (p := instance_price(pricing, region, k)) is not None}
        volumes = {k: p for k in ("gp2", "gp3") if (p := volume_price(pricing, region, k)) is not None}
        table["regions"][region] = {"instances": instances, "volumes": volumes}
        print(f"{region}: {len(instances)} instance types, {len(volumes)} volume types", file=sys.stderr)
    header = "".join(line + "\n" for line in TABLE.read_text().splitlines() if line.startswith("#"))
    TABLE.write_text(header + yaml.safe_dump(table, sort_keys=False))
    print(f"wrote {TABLE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
