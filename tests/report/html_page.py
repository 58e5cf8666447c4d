"""Reading a rendered HTML report back: its charts' figures, its timelines' payloads and its
packed plotly.js, decoded as the page's script decodes them."""

from __future__ import annotations

import base64
import gzip
import json
import re
from typing import Any

_PLOT = re.compile(r'vpmu\.plot\(\s*"([^"]+)",\s*')
_BLOB = re.compile(r'<script type="application/octet-stream" id="([^"]+)">([^<]*)</script>')
_TIMELINE = re.compile(r'vpmu\.timeline\(\s*"([^"]+)",\s*"([^"]+)",\s*')


def unpack(packed: str) -> bytes:
    """A packed payload's bytes (base64, then gzip)."""
    return gzip.decompress(base64.b64decode(packed))


def blobs(page: str) -> dict[str, str]:
    """The page's packed payloads by element id."""
    return dict(_BLOB.findall(page))


def figures(page: str) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    """Each plain chart's traces and layout, by div id, decoded from its ``vpmu.plot`` call."""
    decoder, out = json.JSONDecoder(), {}
    for m in _PLOT.finditer(page):
        data, end = decoder.raw_decode(page, m.end())
        layout, _ = decoder.raw_decode(page, re.compile(r",\s*").match(page, end).end())
        out[m.group(1)] = (data, layout)
    return out


def payloads(page: str) -> dict[str, dict[str, Any]]:
    """Each timeline's payload by div id, its delta-coded times made absolute (ns)."""
    packed, out = blobs(page), {}
    for div_id, data_id in ((m.group(1), m.group(2)) for m in _TIMELINE.finditer(page)):
        payload = json.loads(unpack(packed[data_id]))
        for trace in payload["segs"] + payload["marks"]:
            trace["t"] = absolute(trace["t"])
        out[div_id] = payload
    return out


def absolute(deltas: list[int]) -> list[int]:
    """Delta-coded times as times."""
    out, t = [], 0
    for d in deltas:
        t += d
        out.append(t)
    return out


def timeline_layouts(page: str) -> dict[str, dict[str, Any]]:
    """Each timeline's layout, by div id."""
    decoder = json.JSONDecoder()
    return {m.group(1): decoder.raw_decode(page, m.end())[0] for m in _TIMELINE.finditer(page)}


def trace_names(page: str) -> set[str]:
    """The names of every trace on the page, the timelines' included."""
    return ({t.get("name") for data, _ in figures(page).values() for t in data}
            | {t["name"] for p in payloads(page).values() for t in p["segs"] + p["marks"]})


def hover_texts(page: str) -> set[str]:
    """Every point's hover text on the page, the timelines' included."""
    return ({text for data, _ in figures(page).values() for t in data
             for text in (t.get("text") or []) if isinstance(text, str)}
            | {text for p in payloads(page).values() for t in p["segs"] + p["marks"]
               for text in t["text"]})


def chart_ids(page: str) -> list[str]:
    """The ids of the page's plotly divs, in order."""
    return re.findall(r'<div id="([^"]+)" class="plotly-graph-div"', page)
