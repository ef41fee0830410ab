#!/usr/bin/env python3
"""Lints and renders the lagwatch Helm chart with real Helm (Helm v4's Go SDK,
through the helm-python-sdk package: no helm binary needed).

    scripts/helm-render.py [--values FILE]... [--set K=V]... [--name N] [--namespace NS]
        prints the rendered manifests as one multi-document YAML stream
    scripts/helm-render.py --lint [--values FILE]...
        runs `helm lint --strict`; exit 1 on any warning or error

With a helm binary you get the same with `helm template` / `helm lint --strict`.
"""
import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "lagwatch"


def main() -> int:
    try:
        import helm_python as helm
        import yaml
    except ImportError as e:
        print(f"{e}: install it with `pip3 install helm-python-sdk pyyaml` "
              "(scripts/test-env.sh does)", file=sys.stderr)
        return 2
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--values", action="append", default=[])
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--name", default="lagwatch")
    p.add_argument("--namespace", default="monitoring")
    p.add_argument("--lint", action="store_true")
    a = p.parse_args()
    values = {}
    for f in a.values:
        values = deep_merge(values, yaml.safe_load(pathlib.Path(f).read_text()) or {})
    for s in a.set:
        values = deep_merge(values, helm.parse_set_string(s))
    if a.lint:
        report = helm.lint(str(CHART), values, strict=True, namespace=a.namespace)
        problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2]
        problems += [{"severity": 3, "path": "", "error": e} for e in report.get("errors", [])]
        for m in problems:
            print(f"lint: {m.get('path', '')}: {m.get('error')}", file=sys.stderr)
        return 1 if problems else 0
    chart = helm.Chart.load(str(CHART))
    try:
        rendered = chart.render(values, name=a.name, namespace=a.namespace, is_install=True)
    except helm.HelmError as e:
        print(f"helm: {e}", file=sys.stderr)
        return 1
    for path in sorted(rendered):
        text = rendered[path]
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        sys.stdout.write(f"---\n# Source: {path}\n{text.strip()}\n")
    return 0


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


if __name__ == "__main__":
    sys.exit(main())
