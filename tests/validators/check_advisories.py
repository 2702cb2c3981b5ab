"""Validates the published OSV and CSAF 2.0 documents with tools that share no code with the service.

    check_advisories.py osv FILE_OR_URL...     (each an OSV document or a JSON array of them)
    check_advisories.py csaf FILE_OR_URL...    (each a CSAF 2.0 document)
    check_advisories.py env                    (only checks that the pinned validators are installed)

OSV: the OSV JSON schema (schemas/osv/schema.json), with formats checked, by jsonschema.
CSAF: the CSAF 2.0 JSON schema (schemas/csaf/, the CVSS schemas it refers to resolved locally),
with formats checked, by jsonschema; then the CSAF 2.0 strict schema and every mandatory test of
section 6.1 (the profile tests of 6.1.27 among them) by the BSI's csaf-validator-lib under Node
(csaf_mandatory.mjs), installed from package.json and package-lock.json beside this file into
the folder EDL_CSAF_VALIDATOR_DIR names, by default the virtualenv's `node` folder.

On success it prints a JSON summary of what it read (so the caller can tell it validated the
documents it meant to) and exits 0. It exits 1 listing every problem found, 2 on wrong usage,
and 3 when the validators are not installed as pinned.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE / "schemas"
INVALID, USAGE, ENVIRONMENT = 1, 2, 3
CSAF_LIB = "@secvisogram/csaf-validator-lib"


def node_dir():
    return Path(os.environ.get("EDL_CSAF_VALIDATOR_DIR") or Path(sys.prefix) / "node")


def check_environment():
    """The pinned Python packages, and Node with the pinned csaf-validator-lib, or exit 3."""
    sys.path.insert(0, str(HERE))
    import check_feeds

    check_feeds.check_environment()
    pinned = json.loads((HERE / "package.json").read_text(encoding="utf-8"))["dependencies"][CSAF_LIB]
    installed_file = node_dir() / "node_modules" / CSAF_LIB / "package.json"
    try:
        installed = json.loads(installed_file.read_text(encoding="utf-8"))["version"]
    except (OSError, ValueError, KeyError):
        installed = None
    problems = []
    if shutil.which("node") is None:
        problems.append("node is not on the PATH")
    if installed != pinned:
        problems.append(
            f"{CSAF_LIB}@{pinned} is not installed in {node_dir()} (installed: {installed or 'none'})"
        )
    if problems:
        print("validators not installed as pinned: " + "; ".join(problems), file=sys.stderr)
        sys.exit(ENVIRONMENT)


def read(source):
    if source.startswith(("http://", "https://")):
        with urllib.request.urlopen(source, timeout=30) as response:  # noqa: S310 - the caller's URL
            return response.read()
    return Path(source).read_bytes()


def load_json(source, problems):
    try:
        return json.loads(read(source))
    except (OSError, ValueError) as error:
        problems.append(f"{source}: not readable as JSON: {error}")
        return None


def schema_errors(validator, document, where):
    return [
        f"{where}: {'/'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


# ---------------------------------------------------------------------------------------------
# OSV


def check_osv(sources):
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / "osv" / "schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    problems, summaries = [], []
    for source in sources:
        data = load_json(source, problems)
        if data is None:
            continue
        documents = data if isinstance(data, list) else [data]
        ids = []
        for index, document in enumerate(documents):
            where = f"{source}[{index}]" if isinstance(data, list) else source
            problems.extend(schema_errors(validator, document, where))
            if not isinstance(document, dict):
                continue
            ids.append(document.get("id"))
            # What the schema leaves to prose: an entry is not its own alias, and it was not
            # modified before it was published.
            if document.get("id") in (document.get("aliases") or []):
                problems.append(f"{where}: the id is listed among its own aliases")
            published, modified = document.get("published"), document.get("modified")
            if published and modified and modified < published:
                problems.append(f"{where}: modified {modified} is before published {published}")
            summaries.append(
                {
                    "id": document.get("id"),
                    "schema_version": document.get("schema_version"),
                    "published": published,
                    "modified": modified,
                    "summary": document.get("summary"),
                    "severity": document.get("severity"),
                    "affected": document.get("affected"),
                    "references": document.get("references"),
                }
            )
        if len(set(ids)) != len(ids):
            problems.append(f"{source}: entries share an id: {ids}")
    return problems, {"documents": summaries}


# ---------------------------------------------------------------------------------------------
# CSAF 2.0


def csaf_validator():
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    def resource(name):
        return Resource.from_contents(json.loads((SCHEMAS / "csaf" / name).read_text(encoding="utf-8")))

    # The CSAF schema refers to FIRST's CVSS schemas by their web addresses, and those schemas
    # name themselves with a query string added; both resolve to the local copies.
    resources = []
    for version in ("2.0", "3.0", "3.1"):
        cvss = resource(f"cvss-v{version}.json")
        resources.append((f"https://www.first.org/cvss/cvss-v{version}.json", cvss))
        if cvss.id():
            resources.append((cvss.id(), cvss))
    registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / "csaf" / "csaf_json_schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(
        schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def mandatory_tests(path):
    """The BSI library's verdict: its strict schema and every CSAF 2.0 mandatory test."""
    run = subprocess.run(
        ["node", str(HERE / "csaf_mandatory.mjs"), str(node_dir() / "node_modules"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        result = json.loads(run.stdout)
    except ValueError:
        return [f"csaf-validator-lib did not run (exit {run.returncode}): {run.stderr.strip()}"], None
    problems = []
    for test in result.get("failed", []):
        for error in test.get("errors") or [{"instancePath": "", "message": "failed"}]:
            problems.append(
                f"csaf-validator-lib {test['name']}: {error.get('instancePath') or '(root)'}: {error.get('message')}"
            )
    return problems, result


def check_csaf(sources):
    import tempfile

    validator = csaf_validator()
    problems, summaries = [], []
    for source in sources:
        document = load_json(source, problems)
        if document is None:
            continue
        problems.extend(schema_errors(validator, document, source))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "document.json"
            path.write_text(json.dumps(document), encoding="utf-8")
            found, result = mandatory_tests(path)
        problems.extend(f"{source}: {p}" for p in found)
        if not isinstance(document, dict):
            continue
        doc = document.get("document", {})
        tracking = doc.get("tracking", {})
        summaries.append(
            {
                "category": doc.get("category"),
                "csaf_version": doc.get("csaf_version"),
                "title": doc.get("title"),
                "publisher": doc.get("publisher"),
                "tracking": {
                    key: tracking.get(key)
                    for key in ("id", "status", "version", "initial_release_date", "current_release_date")
                },
                "references": doc.get("references"),
                "product_tree": document.get("product_tree"),
                "vulnerabilities": document.get("vulnerabilities"),
                "library_tests_run": result.get("tests") if result else 0,
                "warnings": result.get("warnings") if result else [],
            }
        )
    return problems, {"documents": summaries}


def main(argv):
    if argv[1:] == ["env"]:
        check_environment()
        return 0
    if len(argv) < 3 or argv[1] not in ("osv", "csaf"):
        print(__doc__, file=sys.stderr)
        return USAGE
    check_environment()
    check = check_osv if argv[1] == "osv" else check_csaf
    problems, summary = check(argv[2:])
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return INVALID
    print(json.dumps(summary, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
