"""The ``--set`` port against the real helm: ``helm template --set`` is the oracle.

The chart (``tests/fixtures/helmdump.py``) dumps ``{{ toJson .Values }}``. Each batch passes
many expressions as separate ``--set`` / ``--set-string`` flags in one helm run (helm parses
each flag with ``ParseInto`` on the same map, in order: --set before --set-string), the
expressions of a batch using disjoint top-level keys so they cannot interact; kubegate's parser
does the same and the maps must be equal. Errors cannot be batched: one helm run each, and only
a few.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from kubegate.errors import RenderError
from kubegate.render.helm.strvals import parse_into, parse_into_string
from tests.fixtures.helmdump import dump_chart, rendered_values, template

# Each string is one --set flag; top-level keys are unique across the list.
SET_CASES = [
    "s1=1,s2=2",
    "m.a.b=x,m.a.c=y,m.z=0",
    "l1[0]=a,l1[2]=c",
    "l2[1][0]=x,l2[1][2]=y",
    "l3[0].name=a,l3[0].v=1,l3[1].name=b",
    "l4={a,b,c}",
    "l5={1,true,null,007, x }",
    "l6={}",
    "l7={a,b}l7b=2",
    "e1=a\\,b",
    "e2\\.x=1,e2b\\=k=v",
    "e3=a\\=b,e3b=a=b",
    "e4=x\\\\y,e4b=\\{notalist}",
    "e5[\\1]=z",
    "t1=TRUE,t2=False,t3=nULL,t4=0,t5=00,t6=-12,t7=+7,t8=1.5,t9=1e3",
    "t10=9223372036854775807,t11=9223372036854775808,t12=-9223372036854775808",
    "t13=0x1f,t14=fal\u017fe,t15=,t16=-0,t17=+012,t18=1_000,t19=\u0663",
    "u1=\u00fcn\u00efcode,\u043a\u043b\u044e\u0447=\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435",
    "q1=a b c,q2= spaced ",
    "d1.",
    "[0]=x",
    ".d2=1",
    "lz[0]",
    "lq[0].b=",
    "lr[0].b=,lr2=1",
    "mx.a=1,mx.a=2,mx.b.c=3",
    "ov[0]=a,ov[0]=b,ov[3]=d",
    "lm[1].x=1,lm[0].y=2",
    "lm2[1]=5,lm2[1].x=1",
    "lm3[0][1]=a,lm3[0][0]=b",
    "n1=null,n2.x=null",
    "lastcomma=1,",
    "br={a,b},brx=1",
    "deep.a.b.c.d.e.f.g=1",
    "colon=a:b,slash=a/b,star=*,hash=#x,quote='q',dq=\"d\"",
    "idx[007]=x,idx2[+1]=y",
    "nl[0]=null,nl[1]={null,NULL}",
    "big[65536]=end",
    # 30 dots: exactly MaxNestedNameLevel.
    ".".join(f"n{i}" for i in range(31)) + "=deepest",
]
SET_STRING_CASES = [
    "ss1=1,ss2=true,ss3=null,ss4=007",
    "ss5={1,true}",
    "ss6[1]=2,ss7.a=false",
    "ss8=",
]
# Keys the chart's values.yaml sets, then overridden or deleted by --set.
DEFAULTS = {
    "keep": 1,
    "drop": "x",
    "list": [1, 2, 3],
    "nested": {"a": 1, "b": ["x", "y"], "c": {"d": True}},
}
OVERRIDE_CASES = [
    "drop=null",
    "list[1]=x",
    "nested.a=2,nested.c.e=3",
    "nested.b[2]=z",
    "extra={1,2}",
]
# Parsed in place into an existing map (helm: `-f base.json --set ...`), as helm-controller
# does with the values composed so far.
BASE = {
    "list": [1, 2, 3],
    "maps": [{"a": 1}, {"b": 2}],
    "m": {"x": 1, "y": {"z": 2}},
    "n": None,
    "s": "text",
}
INPLACE_CASES = [
    "list[1]=x",
    "maps[1].c=3,maps[0]=first",
    "m.y.w=4,m.x=null",
    "s=other",
]
ERROR_CASES = [
    "e=1,,f=2",
    "novalue",
    "a[x]=1",
    "a[-1]=1",
    "a[65537]=1",
    "a[0]x=1",
    "a={b,c",
    "ma.b=1,ma[0]=2",
    "ml[0]=1,ml.b=2",
    "ns=null,ns.b=1",
    "l[0]=s,l[0][1]=t",
    # 31 dots: one more than MaxNestedNameLevel.
    ".".join(f"k{i}" for i in range(32)) + "=1",
]


@pytest.fixture(scope="module")
def charts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("charts")
    return {
        "empty": dump_chart(base / "empty", {}),
        "defaults": dump_chart(base / "defaults", DEFAULTS),
    }


def _flags(flag: str, cases: list[str]) -> list[str]:
    return [part for case in cases for part in (flag, case)]


def test_set_and_set_string_match_helm(charts: dict[str, Path]) -> None:
    ours: dict[str, Any] = {}
    for case in SET_CASES:
        parse_into(case, ours)
    for case in SET_STRING_CASES:
        parse_into_string(case, ours)
    theirs = rendered_values(
        charts["empty"], *_flags("--set", SET_CASES), *_flags("--set-string", SET_STRING_CASES)
    )
    assert theirs == ours
    # Spot checks that the batch really exercised what it claims.
    assert ours["t10"] == 9223372036854775807
    assert ours["t11"] == "9223372036854775808"
    assert ours["t14"] is False
    assert ours["l6"] == [""]
    assert ours["lz"] == []
    assert ours["lq"] == []
    assert ours["ss5"] == ["1", "true"]
    assert len(ours["big"]) == 65537


def test_overriding_chart_defaults_matches_helm(charts: dict[str, Path], tmp_path: Path) -> None:
    ours: dict[str, Any] = {}
    for case in OVERRIDE_CASES:
        parse_into(case, ours)
    values_file = tmp_path / "ours.json"
    values_file.write_text(json.dumps(ours))
    # Helm coalesces --set values and a -f file with the chart defaults the same way, so the
    # parsed map handed over as a file must render exactly like the --set flags.
    theirs = rendered_values(charts["defaults"], *_flags("--set", OVERRIDE_CASES))
    assert rendered_values(charts["defaults"], "-f", str(values_file)) == theirs
    assert "drop" not in theirs
    assert theirs["list"] == [None, "x"]


def test_parse_into_existing_values_matches_helm(charts: dict[str, Path], tmp_path: Path) -> None:
    base_file = tmp_path / "base.json"
    base_file.write_text(json.dumps(BASE))
    ours = copy.deepcopy(BASE)
    for case in INPLACE_CASES:
        parse_into(case, ours)
    theirs = rendered_values(charts["empty"], "-f", str(base_file), *_flags("--set", INPLACE_CASES))
    assert theirs == ours
    assert ours["maps"] == ["first", {"b": 2, "c": 3}]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_match_helm(charts: dict[str, Path], case: str) -> None:
    done = template(charts["empty"], "--set", case)
    assert done.returncode != 0, f"helm accepted {case!r}: {done.stdout}"
    with pytest.raises(RenderError) as caught:
        parse_into(case, {})
    assert "\n" not in caught.value.diagnostics()
