"""perceptalign: the SpecVQGAN-style video-to-audio dataset model (seed 004, PerceptAlign).

Per twin (`preprocess`): the video at 21.5 fps with its sound at 22050 Hz, cut by `pipelines.media.timeline` into
10 s chunks, each with a SpecVQGAN mel spectrogram and denseflow-style 8-bit optical flow. Across twins
(`dataset`): the seed's folder layout (features/, videos/, audio/, frames/, flow/) and train/valid/test lists.
See docs/datasets/perceptalign.md.
"""
