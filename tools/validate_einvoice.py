"""Runs the official e-invoice validation artefacts, offline, over billing's UBL (a development tool; `make test`
does not run it, and the project's own tests never need these repositories).

    .venv/bin/python -m tools.validate_einvoice [FILE.xml ...] [--keep DIR]

Without files it builds the UBL of every document in tests/einvoice_fixtures.py (and its member-state
variants). Each document goes through:
1. the UBL 2.1 XML schema (OASIS, `xsd/maindoc/UBL-{Invoice,CreditNote}-2.1.xsd`), with lxml;
2. the EN 16931 UBL validation XSLT as published (ConnectingEurope/eInvoicing-EN16931, `ubl/xslt/`);
3. the Peppol BIS Billing 3.0 schematron (OpenPEPPOL/peppol-bis-invoice-3, `rules/sch/PEPPOL-EN16931-UBL.sch`,
   which holds the Dutch rules NL-R-*), compiled to XSLT with SchXslt2's `transpile.xsl` (schxslt/schxslt2).
XSLT runs on SaxonC-HE (`saxonche`). It prints every failed assertion with its flag (fatal or warning) and exits
non-zero when any is fatal.

Where the artefacts come from: each of `--en16931`, `--peppol`, `--schxslt2`, `--ubl-schemas` is a checkout or a
bare git directory (read at `HEAD`, or at `--ubl-schemas-commit` for the schemas, whose repository moved on to UBL
2.5). The defaults are the mirrors under /work/.mirror (owner+name/repo), or EINVOICE_ARTEFACTS/owner+name.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIRRORS = Path(os.environ.get("EINVOICE_ARTEFACTS", "/work/.mirror"))
UBL_21_COMMIT = "d6bae4f2a964afda667771d7e47d168c3f443817"  # kduvekot/ubl-release-package with xsd/ of UBL 2.1
SVRL = "http://purl.oclc.org/dsdl/svrl"
RULE_PREFIX = re.compile(r"^\[[A-Z0-9-]+\]-?\s*")  # the rule id the message repeats


class Source:
    """Files of a checkout, or of a bare git directory at a commit."""

    def __init__(self, path: Path, commit: str = "HEAD"):
        self.path, self.commit = path, commit
        self.bare = not (path / ".git").exists() and (path / "HEAD").is_file() and (path / "objects").is_dir()

    def read(self, name: str) -> bytes:
        if not self.bare:
            return (self.path / name).read_bytes()
        return subprocess.run(["git", "--git-dir", str(self.path), "show", f"{self.commit}:{name}"], check=True,
                              capture_output=True).stdout

    def export(self, folder: str, target: Path) -> Path:
        """The folder as files on disk (XSD imports and XSLT includes resolve relative to them)."""
        if not self.bare:
            return self.path / folder
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "--git-dir", str(self.path), "archive", self.commit, folder], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return target / folder

    def describe(self) -> str:
        if not self.bare:
            return str(self.path)
        commit = subprocess.run(["git", "--git-dir", str(self.path), "rev-parse", self.commit], check=True,
                                capture_output=True, text=True).stdout.strip()
        return f"{self.path} @ {commit[:12]}"


def _default(name: str) -> Path:
    return MIRRORS / name / "repo" if (MIRRORS / name / "repo").exists() else MIRRORS / name


def fixture_documents() -> dict[str, bytes]:
    sys.path[:0] = [str(ROOT), str(ROOT / "functions" / "billing"), str(ROOT / "shared")]
    from billing import ubl
    from tests import einvoice_fixtures

    meters = einvoice_fixtures.PRICES["meters"]
    documents = {**einvoice_fixtures.documents(), **einvoice_fixtures.member_state_variants()}
    return {f"{name}.xml": ubl.build(document, meters) for name, document in documents.items()}


class Validators:
    def __init__(self, args: argparse.Namespace, work: Path):
        from saxonche import PySaxonProcessor

        self.processor = PySaxonProcessor(license=False)
        self.xslt = self.processor.new_xslt30_processor()
        en16931, peppol, schxslt2 = Source(args.en16931), Source(args.peppol), Source(args.schxslt2)
        schemas = Source(args.ubl_schemas, args.ubl_schemas_commit)
        print("EN 16931:", en16931.describe())
        print("Peppol BIS 3:", peppol.describe())
        print("SchXslt2:", schxslt2.describe())
        print("UBL 2.1 schemas:", schemas.describe())

        en_xslt = work / "EN16931-UBL-validation.xslt"
        en_xslt.write_bytes(en16931.read("ubl/xslt/EN16931-UBL-validation.xslt"))
        sch = work / "PEPPOL-EN16931-UBL.sch"
        sch.write_bytes(peppol.read("rules/sch/PEPPOL-EN16931-UBL.sch"))
        transpile = work / "transpile.xsl"
        transpile.write_bytes(schxslt2.read("src/main/resources/content/transpile.xsl"))
        peppol_xslt = work / "PEPPOL-EN16931-UBL.xsl"
        self.xslt.transform_to_file(source_file=str(sch), stylesheet_file=str(transpile),
                                    output_file=str(peppol_xslt))
        self.stylesheets = {"EN16931": self.xslt.compile_stylesheet(stylesheet_file=str(en_xslt)),
                            "PEPPOL": self.xslt.compile_stylesheet(stylesheet_file=str(peppol_xslt))}

        from lxml import etree

        xsd = schemas.export("xsd", work / "ubl")
        self.schemas = {root: etree.XMLSchema(etree.parse(str(xsd / "maindoc" / f"UBL-{root}-2.1.xsd")))
                        for root in ("Invoice", "CreditNote")}

    def run(self, path: Path) -> list[tuple[str, str, str, str]]:
        """(validator, flag, rule id, text) for every failed assertion or schema error."""
        from lxml import etree

        findings = []
        tree = etree.parse(str(path))
        schema = self.schemas[etree.QName(tree.getroot()).localname]
        if not schema.validate(tree):
            findings += [("XSD", "fatal", f"line {error.line}", error.message) for error in schema.error_log]
        for name, stylesheet in self.stylesheets.items():
            report = etree.fromstring(stylesheet.transform_to_string(source_file=str(path)).encode())
            for failed in report.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
                text = " ".join("".join(failed.itertext()).split())
                findings.append((name, failed.get("flag") or "fatal", failed.get("id") or "", text))
        return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="UBL files (default: every fixture document)")
    parser.add_argument("--en16931", type=Path, default=_default("ConnectingEurope+eInvoicing-EN16931"))
    parser.add_argument("--peppol", type=Path, default=_default("OpenPEPPOL+peppol-bis-invoice-3"))
    parser.add_argument("--schxslt2", type=Path, default=_default("schxslt+schxslt2"))
    parser.add_argument("--ubl-schemas", type=Path, default=_default("kduvekot+ubl-release-package"))
    parser.add_argument("--ubl-schemas-commit", default=UBL_21_COMMIT)
    parser.add_argument("--keep", type=Path, help="write the fixtures' UBL to this folder")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        if args.files:
            files = args.files
        else:
            target = args.keep or work / "documents"
            target.mkdir(parents=True, exist_ok=True)
            files = []
            for name, content in fixture_documents().items():
                (target / name).write_bytes(content)
                files.append(target / name)
        validators = Validators(args, work)
        fatal = 0
        for path in files:
            findings = validators.run(path)
            errors = [finding for finding in findings if finding[1] == "fatal"]
            fatal += len(errors)
            print(f"{path.name}: {len(errors)} fatal, {len(findings) - len(errors)} warnings")
            for validator, flag, rule, text in findings:
                message = RULE_PREFIX.sub("", text)[:300]
                print(f"  {flag:7} {validator:8} {rule:14} {message}")
        print(f"{len(files)} documents, {fatal} fatal errors")
        return 1 if fatal else 0


if __name__ == "__main__":
    sys.exit(main())
