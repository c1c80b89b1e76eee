"""th neural engine: FaceFormer (audio to FLAME vertices), face-vid2vid and BFv2v warping.

Every module loads the public checkpoint layouts exactly (model-facts.md); nothing is downloaded.
"""
