"""`bacula-ha status`: one view of a Bacula site in its cluster (placement, health, jobs, sync)."""
