"""JUnit XML, so CI systems show failures natively: a run as one testcase per case and grader,
a comparison as one testcase per grader plus one per regressed case."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

from ..analysis.compare import Comparison
from ..analysis.summary import RunSummary
from ..store.records import CaseRow
from .wording import p_value

# Characters XML 1.0 cannot carry, even escaped: C0 controls but tab/newline/return, lone
# surrogates, U+FFFE/U+FFFF. A model output may hold any of them; they are shown as \xNN.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: object) -> str:
    return _XML_ILLEGAL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", str(text))


def render_junit(summary: RunSummary, rows: Iterable[CaseRow]) -> str:
    run = summary.run
    suite = ET.Element("testsuite", name=xml_safe(run.suite), id=run.id)
    if summary.warnings:
        properties = ET.SubElement(suite, "properties")
        for warning in summary.warnings:
            ET.SubElement(properties, "property", name="warning", value=xml_safe(warning))
    tests = failures = errors = 0
    for row in rows:
        for score in row.scores:
            tests += 1
            name = row.case_id if row.epoch == 0 else f"{row.case_id}#epoch{row.epoch}"
            case = ET.SubElement(
                suite,
                "testcase",
                classname=xml_safe(f"{run.suite}.{score.grader}"),
                name=xml_safe(name),
            )
            if score.error:
                errors += 1
                node = ET.SubElement(case, "error", message=xml_safe(score.error[:500]))
                node.text = xml_safe(score.error)
            elif not score.passed:
                failures += 1
                message = xml_safe((score.explanation or "failed")[:500])
                node = ET.SubElement(case, "failure", message=message)
                node.text = xml_safe(f"output:\n{row.output}\n\nexplanation:\n{score.explanation}")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    root = ET.Element("testsuites", name="evalbatch")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_comparison_junit(cmp: Comparison) -> str:
    suite = ET.Element("testsuite", name=xml_safe(f"compare {cmp.base['suite']}"))
    regressed = {(c.case_id, c.epoch, c.grader): c for c in cmp.cases if c.change == "regressed"}
    tests = 0
    for g in cmp.graders:
        tests += 1
        case = ET.SubElement(suite, "testcase", classname="evalbatch.compare", name=g.grader)
        if g.verdict == "regressed":
            ET.SubElement(
                case,
                "failure",
                message=f"{g.grader} regressed: {g.diff * 100:+.1f}pp, p={p_value(g.p_adjusted)}",
            )
    for (case_id, epoch, grader), d in regressed.items():
        tests += 1
        name = case_id if epoch == 0 else f"{case_id}#epoch{epoch}"
        case = ET.SubElement(
            suite, "testcase", classname=f"evalbatch.compare.{grader}", name=xml_safe(name)
        )
        message = xml_safe((d.new_explanation or "regressed")[:500])
        node = ET.SubElement(case, "failure", message=message)
        node.text = xml_safe(f"base output:\n{d.base_output}\n\nnew output:\n{d.new_output}")
    suite.set("tests", str(tests))
    suite.set("failures", str(sum(1 for _ in suite.iter("failure"))))
    root = ET.Element("testsuites", name="evalbatch")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
