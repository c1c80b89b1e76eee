"""bilayer: training data for the Fast Bi-layer head avatar model (Zakharov et al., 2020), per twin and per dataset.

Per twin (`preprocess`): th's `video` and `landmarks` stages, then `frames`, which keeps every n-th frame with a
usable face as a 256x256 face crop with its 68 keypoints and a person mask (`bilayer/samples.npz`). Per dataset
(`dataset`): those samples laid out as the VoxCeleb2 tree the bi-layer training code reads,
`[imgs|keypoints|segs]/[train|test]/PERSON_ID/VIDEO_ID/SEQUENCE_ID/FRAME_NUM[.jpg|.npy|.png]`.
See docs/datasets/bilayer.md.
"""
