"""The ``lbr`` section: where LBR stacks were saved, restored and reset, how often and at
what cost (seed 002's question, docs/sources.md), from ``LbrContext`` records; who held each CPU's
LBR and what that did to the guests' and the host's records, from ``LbrOwner`` and ``LbrRead``.

Keys (the section is null when no LBR was used):

- ``saves``, ``restores``, ``resets``: how many, in all;
- ``cycles``, ``time_ns``: what they took, in all;
- ``by_why``: per cause ("thread-switch", "vm-transition", a mediated switch point, and
  "host-task-switch" for perf's reset when a host LBR user's CPU switches tasks): ``saves``,
  ``restores``, ``resets``, ``msrs`` (the MSR accesses), ``cycles``, and
  ``cycles_per_guest_s``: cycles per second of guest execution (the vCPUs' guest-user and
  guest-kernel time);
- ``guests``: per vCPU (``vm/vcpuN``) whose guest recorded: ``recording_ns`` (guest time with
  its LBR enabled), ``availability`` (the fraction of that time the LBR was the guest's: the
  rest it recorded into a stack the host held), ``records`` (taken in guest mode), ``lost``
  (of those, taken into a stack the guest did not hold), ``polluted`` (host-mode records
  taken into a stack the guest held: what it later reads as its own);
- ``host``: ``samples`` of host LBR events, ``samples_without_stack`` (a guest held the LBR),
  ``guest_records_seen`` (guest-mode records in the stacks the host read: a leak, listed in
  ``leaks`` with path "lbr"), ``refused`` (a host LBR event found a guest holding the LBR)
  and ``preempted`` (a guest took it from a host LBR event);
- ``guest_refused`` (a guest LBR event found the host holding it and went to ERROR) and
  ``guest_reclaimed`` (the host took it from a guest's event, which went to ERROR).
"""

from __future__ import annotations

from typing import Any, ClassVar

from vpmu.metrics.units import ns
from vpmu.trace import LbrContext, LbrOwner, LbrRead

OPS = {"save": "saves", "restore": "restores", "reset": "resets"}
"""``LbrContext.op`` -> the row's count."""
CLAIMS = ("host-refused", "host-preempted", "guest-refused", "guest-reclaimed")
"""``LbrOwner.why`` values that are decided claims (counted)."""


class LbrSwitches:
    """Saves and restores of guest LBR stacks, by save point."""

    TOTALS: ClassVar[tuple[str, ...]] = ("rows", "cost_ps")
    """Its fields, all sums (``vpmu.metrics.period.Totals``)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, int]] = {}
        """why -> {saves, restores, msrs, cycles}."""
        self.cost_ps = 0

    def feed(self, r: LbrContext) -> None:
        """Count one save or restore."""
        row = self.rows.get(r.why)
        if row is None:
            row = self.rows[r.why] = {"saves": 0, "restores": 0, "resets": 0, "msrs": 0,
                                      "cycles": 0}
        row[OPS[r.op]] += 1
        row["msrs"] += r.msrs
        row["cycles"] += r.cycles
        self.cost_ps += r.cost_ps

    def section(self, guest_ps: int) -> dict[str, Any]:
        """The switch counts, given the vCPUs' guest time (zeros when there were none)."""
        by_why = {why: {**row, "cycles_per_guest_s": round(row["cycles"] * 10**12 / guest_ps, 1)
                        if guest_ps else None}
                  for why, row in sorted(self.rows.items())}
        return {**{key: sum(r[key] for r in self.rows.values()) for key in OPS.values()},
                "cycles": sum(r["cycles"] for r in self.rows.values()),
                "time_ns": ns(self.cost_ps), "by_why": by_why}


class LbrUse:
    """Who held the LBR and what each side's records became."""

    TOTALS: ClassVar[tuple[str, ...]] = ("guests", "host", "claims")

    def __init__(self) -> None:
        self.guests: dict[str, dict[str, int]] = {}
        """vCPU -> {recording_ps, held_ps, records, lost, polluted}."""
        self.host = {"samples": 0, "samples_without_stack": 0, "guest_records_seen": 0}
        self.claims = dict.fromkeys(CLAIMS, 0)

    def owner(self, r: LbrOwner) -> None:
        """A stretch of one CPU's LBR ended (or a claim was decided)."""
        if r.why in self.claims:
            self.claims[r.why] += 1
        if not r.guest or not (r.guest_ps or r.guest_records or r.host_records):
            return
        row = self.guests.get(r.guest)
        if row is None:
            row = self.guests[r.guest] = dict.fromkeys(
                ("recording_ps", "held_ps", "records", "lost", "polluted"), 0)
        held = r.held_by == "guest"
        row["recording_ps"] += r.guest_ps
        row["held_ps"] += r.guest_ps if held else 0
        row["records"] += r.guest_records
        row["lost"] += 0 if held else r.guest_records
        row["polluted"] += r.host_records if held else 0

    def read(self, r: LbrRead) -> None:
        """A host sample of an LBR event."""
        self.host["samples"] += 1
        self.host["samples_without_stack"] += r.records < 0
        self.host["guest_records_seen"] += r.guest_records

    @property
    def used(self) -> bool:
        """Any LBR stretch with records or recording time, any claim or host read."""
        return bool(self.guests) or any(self.host.values()) or any(self.claims.values())

    def section(self) -> dict[str, Any]:
        """The ``guests``, ``host`` and claim keys of the section."""
        guests = {g: {"recording_ns": ns(row["recording_ps"]),
                      "availability": round(row["held_ps"] / row["recording_ps"], 4)
                      if row["recording_ps"] else None,
                      "records": row["records"], "lost": row["lost"],
                      "polluted": row["polluted"]}
                  for g, row in sorted(self.guests.items())}
        c = self.claims
        return {"guests": guests,
                "host": {**self.host, "refused": c["host-refused"],
                         "preempted": c["host-preempted"]},
                "guest_refused": c["guest-refused"], "guest_reclaimed": c["guest-reclaimed"]}


def lbr_section(switches: LbrSwitches, use: LbrUse, guest_ps: int) -> dict[str, Any] | None:
    """The whole section (null when no LBR stack was switched and no LBR was held)."""
    if not switches.rows and not use.used:
        return None
    return {**switches.section(guest_ps), **use.section()}
