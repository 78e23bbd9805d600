"""The lab: a real multi-node Corosync/Pacemaker cluster in namespaces on one machine."""
