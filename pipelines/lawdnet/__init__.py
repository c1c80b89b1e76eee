"""lawdnet: training data for LawDNet (a DINet descendant) from each twin's talking video.

Per twin (`preprocess`): th's video, audio and landmark stages, then `lawdnet_audio` (one timeline for frames and
sound, the cut 16 kHz audio and per-frame audio features) and `lawdnet_face` (an OpenFace-style landmark CSV and
416x320 aligned face crops with their landmarks). Across twins (`dataset`): DINet's `training_data` folders and
its training JSON. See docs/datasets/lawdnet.md.
"""
