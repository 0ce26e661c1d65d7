"""Re-audits on a schedule (issue 4): one dispatcher, any number of workers, one lease.

- clock: injected time; due: when an asset is due; windows: maintenance windows; ratelimit: pacing
  of new connections (all pure, tested without sleeping);
- lease: one active scheduler per database; jobs: APScheduler wiring and the job wrapper;
- worker: claims and audits; service: the `inventory scheduler` process.

The database rules (claims, interruptions, staleness, windows) are in inventory.services.
"""
