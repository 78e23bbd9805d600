"""testkit.timeline: a failover's events and shares read from a Pacemaker log."""
# ruff: noqa: E501  (Pacemaker log lines, as Pacemaker writes them)

from __future__ import annotations

import time

from testkit import timeline

LOG = """\
Dec 06 11:22:09.103 node2 pacemaker-controld  [56] (update_peer_state_iter) \tnotice: Node node1 state is now lost | nodeid=1
Dec 06 11:22:09.263 node2 pacemaker-schedulerd[55] (pcmk__log_transition_summary) \twarning: Calculated transition 0 (with warnings), saving inputs
Dec 06 11:22:10.455 node2 pacemaker-fenced    [52] (log_async_result) \tnotice: Operation 'off' [527] targeting node1 using fence-heuristics returned 0 | call 8
Dec 06 11:22:11.987 node2 pacemaker-fenced    [52] (log_async_result) \tnotice: Operation 'off' [547] targeting node1 using fence-node1 returned 0 | call 8
Dec 06 11:22:12.115 node2 pacemaker-controld  [56] (handle_fence_notification) \tnotice: Peer node1 was terminated (reboot) by node2 on behalf of pacemaker-controld.56@node2: OK
Dec 06 11:22:12.131 node2 pacemaker-controld  [56] (execute_rsc_action) \tnotice: Initiating start operation cat1-db_start_0 locally on node2 | action 21
Dec 06 11:22:12.200 node2 pacemaker-controld  [56] (execute_rsc_action) \tnotice: Initiating start operation dir1-ip_start_0 locally on node2 | action 22
Dec 06 11:22:12.300 node2 pacemaker-controld  [56] (log_executor_event) \tnotice: Result of start operation for dir1-ip on node2: ok | CIB update 80
Dec 06 11:22:13.131 node2 pacemaker-controld  [56] (log_executor_event) \tnotice: Result of start operation for cat1-db on node2: ok | CIB update 99
Dec 06 11:22:13.200 node2 pacemaker-controld  [56] (execute_rsc_action) \tnotice: Initiating notify operation cat1-db_post_notify_promote_0 locally on node2 | action 30
Dec 06 11:22:13.250 node2 pacemaker-controld  [56] (log_executor_event) \tnotice: Result of notify operation for cat1-db on node2: ok | CIB update 100
Dec 06 11:22:13.300 node2 pacemaker-controld  [56] (execute_rsc_action) \tnotice: Initiating start operation dir1-dir_start_0 locally on node2 | action 39
Dec 06 11:22:13.200 node2 pacemaker-controld  [56] (execute_rsc_action) \tnotice: Initiating monitor operation dir1-ip_monitor_10000 locally on node2 | action 23
"""


def test_events_and_operations_are_read_relative_to_the_crash() -> None:
    crash = time.mktime(time.strptime("2026 Dec 06 11:22:07", "%Y %b %d %H:%M:%S"))
    tl = timeline.parse(LOG, crash)
    assert round(tl.lost or 0, 3) == 2.103 and round(tl.fenced or 0, 3) == 5.115
    assert [d for d, _ in tl.fence_steps] == ["fence-heuristics", "fence-node1"]
    ops = {(op.resource, op.action): op for op in tl.operations}
    assert round(ops[("cat1-db", "start")].seconds, 3) == 1.0
    assert ops[("cat1-db", "notify")].end is not None  # a notification is cat1-db's too
    assert ops[("dir1-dir", "start")].end is None  # still running when the log was read
    assert not [op for op in tl.operations if op.action == "monitor"]
    # The director answered at 6.4 s: its start counts until then; dir1-ip ran beside the
    # database's start (off the path); the database's start and notify are the database's.
    shares = tl.shares(("cat1-db", "dir1-ip", "dir1-dir"), 6.4)
    assert round(shares["database"], 2) == 1.05 and round(shares["ours"], 2) == 0.1
    assert "IP" not in shares
    assert round(sum(shares.values()), 6) == 6.4
    lines = timeline.render(tl, {"director": 6.4})
    assert lines[-1].endswith("** director answers from the client")
