"""pipelines: models as stage graphs; pure compute over local files.

Nothing here knows about databases, queues, buckets or the CLI: the platform (`twinplatform`) downloads a stage's
declared inputs to local paths, calls `Stage.run`, and uploads the declared outputs.
"""
