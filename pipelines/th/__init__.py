"""th: the mesh-driving talking head.

Preprocess (`pipelines.th.preprocess`) turns a twin's uploads into canonical media, one stage per kind:

    audio  raw audio -> audio/audio.wav                     16 kHz mono PCM16
    video  raw video -> video/video.mp4 (+ video/audio.wav)  25 fps constant H.264, upright (+ its sound)
    image  raw image -> image/image.png                     RGB, EXIF orientation applied

Later stages (face tracking, landmarks, crops, FLAME fitting) read these files, never the raw uploads.
"""
