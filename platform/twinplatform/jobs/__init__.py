"""The job engine: submit jobs, claim stages under a lease, run them, commit outputs exactly once.

One executor (`executor.execute_stage`) serves every mode: the in-process driver (`inline.run_job_inline`)
calls it in a loop; a Celery worker calls it for one stage run per task message. The database is the record:
states, leases, attempts and an append-only event log.
"""
