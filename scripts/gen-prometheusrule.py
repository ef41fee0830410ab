#!/usr/bin/env python3
"""Renders lagwatch's alert rules for your environment, and generates
deploy/kubernetes/base/prometheusrule.yaml from alerts/lagwatch.rules.yml.

alerts/lagwatch.rules.yml is the one source; its links use the defaults below.
    scripts/gen-prometheusrule.py           # write the committed PrometheusRule and the chart's copy
    scripts/gen-prometheusrule.py --check   # exit 1 when it is out of date (tests)
Rendered for your setup, to stdout or --out:
    scripts/gen-prometheusrule.py --rules \\
        --selector 'job="lagwatch",namespace="monitoring"' \\
        --grafana-url https://grafana.example.org \\
        --runbook-url https://wiki.example.org/lagwatch/runbooks
  --rules          a plain Prometheus rule file (default: a PrometheusRule)
  --selector S     label matchers added to every metric of every expression
                   (default: none; `up` is selected with job="lagwatch")
  --grafana-url U  base of every dashboard_url (default: the placeholder below)
  --runbook-url U  page of every runbook_url; the alert's anchor is appended
  --label K=V      a label on the PrometheusRule (kube-prometheus-stack selects
                   rules by `release`); repeatable
"""
import argparse
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE = ROOT / "alerts" / "lagwatch.rules.yml"
TARGET = ROOT / "deploy" / "kubernetes" / "base" / "prometheusrule.yaml"
# The Helm chart renders its PrometheusRule from a copy of the source.
CHART_COPY = ROOT / "deploy" / "helm" / "lagwatch" / "files" / "lagwatch.rules.yml"
# The links alerts/lagwatch.rules.yml is written with.
GRAFANA_URL = "https://grafana.example.com"
RUNBOOK_URL = "https://github.com/lagwatch/lagwatch/blob/main/docs/runbooks.md"
UP_SELECTOR = 'job="lagwatch"'
METRIC = re.compile(r"\b(lagwatch_[a-z0-9_]+)\b(\{)?")


class Dumper(yaml.SafeDumper):
    """Multi-line strings (expressions) as literal blocks, as a person writes them."""


def _str(dumper, value):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)


def select(expr: str, selector: str) -> str:
    """Adds `selector` to every lagwatch metric of `expr`, and makes it the
    selector of `up`."""
    if not selector:
        return expr

    def add(m):
        name, brace = m.group(1), m.group(2)
        return f"{name}{{{selector}," if brace else f"{name}{{{selector}}}"

    expr = METRIC.sub(add, expr)
    return expr.replace(f"up{{{UP_SELECTOR}}}", f"up{{{selector}}}")


def rules(selector="", grafana_url=GRAFANA_URL, runbook_url=RUNBOOK_URL) -> dict:
    spec = yaml.safe_load(SOURCE.read_text())
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule["expr"] = select(rule["expr"], selector)
            a = rule.get("annotations", {})
            if "dashboard_url" in a:
                a["dashboard_url"] = a["dashboard_url"].replace(GRAFANA_URL, grafana_url.rstrip("/"), 1)
            if "runbook_url" in a:
                a["runbook_url"] = a["runbook_url"].replace(RUNBOOK_URL, runbook_url, 1)
    return spec


def render(spec: dict, labels: dict, plain: bool) -> str:
    if plain:
        header = "# Rendered from alerts/lagwatch.rules.yml by scripts/gen-prometheusrule.py.\n"
        return header + yaml.dump(spec, Dumper=Dumper, sort_keys=False, width=1000)
    metadata = {"name": "lagwatch"}
    if labels:
        metadata["labels"] = labels
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": spec,
    }
    header = (
        "# GENERATED from alerts/lagwatch.rules.yml by scripts/gen-prometheusrule.py.\n"
        "# Do not edit: change the rules file and run the script.\n"
    )
    return header + yaml.dump(resource, Dumper=Dumper, sort_keys=False, width=1000)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true")
    p.add_argument("--rules", action="store_true")
    p.add_argument("--selector", default="")
    p.add_argument("--grafana-url", default=GRAFANA_URL)
    p.add_argument("--runbook-url", default=RUNBOOK_URL)
    p.add_argument("--label", action="append", default=[])
    p.add_argument("--out")
    a = p.parse_args()
    labels = {}
    for kv in a.label:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"--label {kv!r}: expected KEY=VALUE")
        labels[k] = v
    custom = a.rules or a.selector or a.grafana_url != GRAFANA_URL or a.runbook_url != RUNBOOK_URL or labels
    text = render(rules(a.selector, a.grafana_url, a.runbook_url), labels, a.rules)
    if a.check:
        stale = [
            path
            for path, want in ((TARGET, text), (CHART_COPY, SOURCE.read_text()))
            if not path.exists() or path.read_text() != want
        ]
        for path in stale:
            print(f"{path} is out of date: run scripts/gen-prometheusrule.py", file=sys.stderr)
        return 1 if stale else 0
    if a.out:
        pathlib.Path(a.out).write_text(text)
    elif custom:
        sys.stdout.write(text)
    else:
        TARGET.write_text(text)
        CHART_COPY.parent.mkdir(parents=True, exist_ok=True)
        CHART_COPY.write_text(SOURCE.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
