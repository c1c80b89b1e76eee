"""facesync: speech to facial landmarks. Its training data are one-second windows of a twin's 68 landmarks per
frame (pose) paired with the exact 16 kHz audio of those frames.

Two pipelines (see `docs/datasets/facesync.md`):
    preprocess  per twin: 25 fps video, 16 kHz audio, landmarks (th's stages), then `track`: landmarks and audio
                on one timeline, pose normalised, every window validated (`facesync/track.npz`, `validation.json`)
    dataset     many twins: validated windows cut into `train/` and `val/` samples, `lm_mean.npy`/`lm_std.npy`
                from the training split, `manifest.json`
"""
