"""Celery mode: the app and its settings, the one task, the outbox sender, worker nodes and their supervisor.

Nothing here decides anything: tasks carry a stage run id and call the same executor as in-process mode.
"""
