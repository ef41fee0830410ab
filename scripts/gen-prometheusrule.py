#!/usr/bin/env python3
"""Generates deploy/kubernetes/base/prometheusrule.yaml from alerts/lagwatch.rules.yml.

The rule file is the one source; the PrometheusRule is derived from it. Run after
changing the rules:  scripts/gen-prometheusrule.py
With --check, exits 1 when the committed file is out of date (tests use it).
"""
import pathlib
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "alerts" / "lagwatch.rules.yml"
TARGET = ROOT / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"


def render() -> str:
    rules = yaml.safe_load(SOURCE.read_text())
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "lagwatch"},
        "spec": rules,
    }
    header = (
        "# GENERATED from alerts/lagwatch.rules.yml by scripts/gen-prometheusrule.py.\n"
        "# Do not edit: change the rules file and run the script.\n"
    )
    return header + yaml.safe_dump(resource, sort_keys=False, width=1000)


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run scripts/gen-prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
